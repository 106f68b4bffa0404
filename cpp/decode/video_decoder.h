// The decoder interface shared by the CPU (libav), GPU (NVDEC) and hybrid (CPU decode -> GPU colour)
// backends, the frame batch they return and the destination they can write into.
//
// A VideoDecoder opens one file once and returns the frames nearest to requested presentation
// timestamps, in request order, as one contiguous uint8 RGB batch [T, 3, H, W] (see
// Note [Frame choice]), or writes them into memory the caller owns (get_frames_into: the decode
// stage fills one slice of a whole batch per request). A decoder is NOT thread-safe: one thread uses it at a time (the
// DecoderCache hands out exclusive leases). FrameBatch is an immutable owning buffer, safe to
// share between threads once built.
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

enum class DeviceKind : int { kCPU = 1, kCUDA = 2 };  // values equal DLPack's kDLCPU / kDLCUDA

// Owning, contiguous uint8 RGB frames [T, 3, H, W] in CHW order on a device.
struct FrameBatch {
  int64_t num_frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  DeviceKind device = DeviceKind::kCPU;
  int device_index = 0;
  uint8_t* data = nullptr;         // points into the storage held by `owner`
  std::shared_ptr<void> owner;     // releases the storage (host buffer, pooled CUDA block, ...)

  int64_t frame_bytes() const { return 3 * height * width; }
  int64_t size_bytes() const { return num_frames * frame_bytes(); }
};

// Memory a decoder writes frames into: `frame_bytes()` per frame, back to back, in request order.
// CUDA destinations are written on the decoder's own stream; `cuda_stream` (a CUstream, 0 = the
// legacy default stream) is made to wait for those writes without blocking the host (Note [Stream
// handoff] in cuda/nvdec_decoder.h).
struct FrameDestination {
  DeviceKind device = DeviceKind::kCPU;
  int device_index = 0;
  uint8_t* data = nullptr;
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

struct DecoderStats {
  int64_t frames_requested = 0;  // timestamps asked for
  int64_t frames_decoded = 0;    // frames that came out of the codec (incl. ones skipped over)
  int64_t seeks = 0;             // keyframe seeks (each flushes the codec)
  int64_t packets_read = 0;
};

class VideoDecoder {
 public:
  virtual ~VideoDecoder() = default;
  virtual const StreamInfo& info() const = 0;
  // Frames nearest to `timestamps_s` (seconds from stream start), in request order; duplicates
  // allowed. Throws FrameTimestampError when a query has no frame within tolerance_s.
  virtual FrameBatch get_frames_at(std::span<const double> timestamps_s, double tolerance_s) = 0;
  // The same frames written to `out` (its device must be this decoder's: InvalidInput otherwise).
  virtual void get_frames_into(std::span<const double> timestamps_s, double tolerance_s,
                               const FrameDestination& out) = 0;
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
