// HybridVideoDecoder ("cpu->cuda"): decodes one video (a file, or a ByteSource's episode segment) on
// CPU threads with libavcodec (dav1d for AV1)
// and converts on the GPU: each picture's planar YUV is packed into pinned host memory, copied to
// the GPU asynchronously and turned into RGB (uint8, or float32 = uint8 / 255: Note [Float frames])
// by our colour kernel, straight into the caller's (decode_into) or a pooled (get_frames_at) device
// buffer. For GPUs whose NVDEC cannot decode a stream (AV1 on Hopper, A100, Turing).
//
// Owns a CpuVideoDecoder, a ring of pinned staging slots, a device YUV buffer, a stream and the
// colour kernel; shares the device's primary context and buffer pool. Not thread-safe: one caller
// at a time (DecoderCache leases). CUDA types stay in the .cpp (pimpl).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs::cuda {

struct DeviceFill;

// Note [Hybrid path]
// ~~~~~~~~~~~~~~~~~~
// H100/H200, A100 and Turing have no AV1 in NVDEC, and AV1 is LeRobot's default codec. Decoding on
// the CPU and uploading RGB would move 3 bytes per pixel as uint8 (12 as float32) over PCIe and
// spend CPU time on the colour conversion; instead dav1d's planar 4:2:0 picture (1.5 bytes per pixel
// at 8 bits) crosses, and the GPU converts:
//   CPU thread: dav1d decode -> pack Y, Cb, Cr tightly into pinned staging slot k
//               (av/planar_yuv.h) -> cuMemcpyHtoDAsync -> event k
//   GPU stream: copy -> planar colour kernel (colour_math.h, the same math as NVDEC's kernel) ->
//               the destination slice; the consumer stream waits on an event (Note [Stream handoff]).
// The ring has kStagingSlots slots, so the CPU decodes and packs the next pictures while earlier
// copies are in flight; slot k is reused only after its event says its copy finished. Colour matrix
// and range come from each decoded picture, as in the CPU path, so frames equal the CPU decoder's
// within Note [Colour conversion parity]'s tolerance (planar and semi-planar share the chroma rule).
// Planar 4:2:0 at 8 to 16 bits only: other formats raise CudaUnavailable naming the file.

struct HybridOptions {
  int device_index = 0;
  int threads = 1;                // libavcodec / dav1d threads for the CPU half
  uintptr_t consumer_stream = 0;  // for get_frames_at (Note [Stream handoff])
  std::string note;               // why this backend (Note [CUDA backend choice]); "" when asked for
};

class HybridVideoDecoder final : public VideoDecoder {
 public:
  // Throws FileNotFound / InvalidInput (bad file) and CudaUnavailable (no driver or device, or a
  // pixel format the planar kernel does not take), each naming the file.
  explicit HybridVideoDecoder(VideoSource source, HybridOptions options = {});
  ~HybridVideoDecoder() override;
  HybridVideoDecoder(const HybridVideoDecoder&) = delete;
  HybridVideoDecoder& operator=(const HybridVideoDecoder&) = delete;

  const StreamInfo& info() const override;
  FrameBatch get_frames_at(std::span<const double> timestamps_s, double tolerance_s,
                           PixelType dtype = PixelType::kUInt8) override;
  // Destinations must be this GPU's memory (InvalidInput otherwise).
  void decode_into(std::span<const double> timestamps_s, double tolerance_s, const FrameDestinations& out) override;
  DecoderStats stats() const override;
  const std::vector<double>& frame_times() const override;
  std::string backend() const override { return "cpu->cuda"; }
  std::string backend_note() const override;
  void set_consumer_stream(uintptr_t stream) override;
  int64_t memory_bytes() const override;

 private:
  struct Impl;
  DeviceFill device_fill() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lrs::cuda
