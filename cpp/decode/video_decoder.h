// The decoder interface shared by the CPU (libav), GPU (NVDEC) and hybrid (CPU decode -> GPU colour)
// backends, the frame batch they return and the caller-owned memory they write into.
//
// A VideoDecoder opens one video once and returns the frames nearest to requested presentation
// timestamps, in request order, as RGB CHW frames (see Note [Frame choice]): either a new
// contiguous batch [T, 3, H, W] on the decoder's device (get_frames_at) or written into memory the
// caller owns (decode_into: host memory for the CPU backend, the GPU's memory for the CUDA ones;
// e.g. the slots of a larger batch), as uint8 or float32 (Note [Float frames]). A decoder is NOT
// thread-safe: one thread uses it at a time (the DecoderCache hands out exclusive leases).
// FrameBatch is an immutable owning buffer, safe to share between threads once built.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lrs {

// Note [Frame choice]
// ~~~~~~~~~~~~~~~~~~~
// LeRobot maps a query timestamp t to the frame whose presentation time is nearest to t and
// rejects the query when |pts - t| >= tolerance_s (FrameTimestampError naming the file, the
// query and the nearest frame). We follow that exactly, on the stream's real pts table (built by
// a demux-only scan at open), not on round(t * fps): this stays right for streams whose first pts
// is not 0 and for variable frame rate. Timestamps are relative to the stream start as LeRobot
// writes them (first frame at pts 0).

// Note [Float frames]
// ~~~~~~~~~~~~~~~~~~~
// LeRobot trains on float32 frames in [0, 1], made as `frames.type(torch.float32) / 255`. A decoder
// asked for PixelType::kFloat32 writes those values itself, in the same pass that splits swscale's
// packed RGB24 into planes (av/planar_pack.h): each value is float(v) / 255.0f, an IEEE division,
// which is what torch's division computes (v * (1.0f / 255) differs in 126 of the 256 values). So
// float frames equal the uint8 frames divided by 255 bit for bit, without a uint8 batch, a second
// pass over it and a second allocation.

enum class DeviceKind : int { kCPU = 1, kCUDA = 2 };  // values equal DLPack's kDLCPU / kDLCUDA

// Element type of decoded frames (Note [Float frames]).
enum class PixelType : int { kUInt8 = 0, kFloat32 = 1 };

constexpr int64_t pixel_bytes(PixelType type) { return type == PixelType::kFloat32 ? 4 : 1; }
const char* pixel_type_name(PixelType type);

// Owning, contiguous RGB frames [T, 3, H, W] in CHW order on a device.
struct FrameBatch {
  int64_t num_frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  PixelType dtype = PixelType::kUInt8;
  DeviceKind device = DeviceKind::kCPU;
  int device_index = 0;
  uint8_t* data = nullptr;         // points into the storage held by `owner` (bytes)
  std::shared_ptr<void> owner;     // releases the storage (host buffer, pooled CUDA block, ...)

  int64_t frame_bytes() const { return 3 * height * width * pixel_bytes(dtype); }
  int64_t size_bytes() const { return num_frames * frame_bytes(); }
};

// The address of each frame of `batch`, in order: the destinations decode_into fills it through.
std::vector<uint8_t*> frame_slots(const FrameBatch& batch);

// A device frames live on: the host, or GPU `index` ("cpu" / "cuda:N").
struct DecodeDevice {
  DeviceKind kind = DeviceKind::kCPU;
  int index = 0;
  std::string str() const;  // "cpu" or "cuda:N"
  bool operator==(const DecodeDevice& o) const { return kind == o.kind && (kind == DeviceKind::kCPU || index == o.index); }
};

// Caller-owned memory that decode_into writes: one frame [3, height, width] of `dtype` per
// requested timestamp, at frames[i] (anywhere, e.g. the slots of a larger batch; they must not
// overlap), on `device` (host pointers, or device pointers of that GPU). height and width are what
// the caller allocated for; a decoder whose stream has another size, or that writes another
// device's memory, throws InvalidInput instead of writing. CUDA backends write on their own stream
// and make `cuda_stream` (a CUstream; 0 = the legacy default stream) wait for those writes without
// blocking the host (Note [Stream handoff] in cuda/nvdec_decoder.h); host backends ignore it.
struct FrameDestinations {
  std::span<uint8_t* const> frames;
  PixelType dtype = PixelType::kUInt8;
  int64_t height = 0;
  int64_t width = 0;
  DecodeDevice device;
  uintptr_t cuda_stream = 0;
};

struct StreamInfo {
  std::string path;
  std::string codec;          // libav codec name: "av1", "h264", "hevc", ...
  std::string pixel_format;   // decoded (software) pixel format, e.g. "yuv420p"
  std::string color_space;    // e.g. "bt709", "bt470bg", "unknown"
  std::string color_range;    // "tv" (limited), "pc" (full) or "unknown"
  int width = 0;              // display size
  int height = 0;
  double fps = 0.0;           // average frame rate
  int64_t num_frames = 0;
  int64_t num_keyframes = 0;
  double duration_s = 0.0;    // last pts - first pts + 1/fps
};

// What random access really costs (Note [Seeking] in av/cpu_decoder.h). Counters only grow.
struct DecoderStats {
  int64_t frames_requested = 0;    // timestamps asked for
  int64_t frames_decoded = 0;      // frames that came out of the codec (incl. ones skipped over)
  int64_t keyframes_decoded = 0;   // of frames_decoded, keyframes (the costly ones at small GOPs)
  int64_t frames_converted = 0;    // frames colour-converted into an output (distinct per request)
  int64_t frames_reused = 0;       // requests served without decoding (repeats, the held frame)
  int64_t frames_from_stash = 0;   // requests served from the frame stash (Note [Frame stash])
  int64_t frames_stashed = 0;      // decoded frames kept in the stash for a later request
  int64_t frames_decoded_ahead = 0;  // of frames_decoded, decoded only to be kept (decode-ahead)
  int64_t seeks = 0;               // keyframe seeks
  int64_t flushes = 0;             // codec flushes (every seek flushes; nothing else does)
  int64_t forward_gop_skips = 0;   // GOP boundaries crossed by decoding forward instead of seeking
  int64_t packets_read = 0;
  int64_t decode_ns = 0;           // wall time reading packets and decoding, all frames
  int64_t keyframe_decode_ns = 0;  // of decode_ns, the time that produced keyframes
  int64_t convert_ns = 0;          // wall time colour-converting into outputs

  DecoderStats& operator+=(const DecoderStats& o);
  DecoderStats& operator-=(const DecoderStats& o);
};

class VideoDecoder {
 public:
  virtual ~VideoDecoder() = default;
  virtual const StreamInfo& info() const = 0;
  // Frames nearest to `timestamps_s` (seconds from stream start), in request order, in a new batch
  // of `dtype` on the decoder's device; duplicates allowed. Throws FrameTimestampError when a query
  // has no frame within tolerance_s. Host backends allocate the batch and call decode_into; device
  // backends override (device memory from their pool, handed to the consumer stream).
  virtual FrameBatch get_frames_at(std::span<const double> timestamps_s, double tolerance_s,
                                   PixelType dtype = PixelType::kUInt8);
  // The same frames written into caller-owned memory (one destination per timestamp, Note [Batch
  // fill] in decode/batch_fill.h). Throws InvalidInput when the destinations do not fit the stream
  // (count, height, width, alignment) or lie on another device than the decoder writes.
  virtual void decode_into(std::span<const double> timestamps_s, double tolerance_s,
                           const FrameDestinations& out) = 0;
  virtual DecoderStats stats() const = 0;
  // Presentation time (seconds) of every frame, ascending.
  virtual const std::vector<double>& frame_times() const = 0;
  // Which backend decodes this stream: "cpu", "nvdec" or "cpu->cuda" (hybrid).
  virtual std::string backend() const = 0;
  // CUDA backends: the stream later get_frames_at batches are handed to (a CUstream; Note [Stream
  // handoff]). The CPU backend ignores it.
  virtual void set_consumer_stream(uintptr_t /*stream*/) {}
  // Why this backend was chosen when a rule chose it (Note [CUDA backend choice] in
  // decode/decoder_factory.h); "" when the caller asked for it by name.
  virtual std::string backend_note() const { return {}; }
  // Estimated host memory this open decoder holds (codec reference frames, staging buffers):
  // what the DecoderCache's byte bound counts. The default assumes libavcodec's frame pool of about
  // 10 yuv420p frames of the stream's size, which is what dav1d/h264/hevc decoders keep at 1 thread.
  virtual int64_t memory_bytes() const {
    const int64_t frame = static_cast<int64_t>(info().width) * info().height * 3 / 2;
    return 10 * frame + 3 * static_cast<int64_t>(info().width) * info().height;
  }
};

}  // namespace lrs
