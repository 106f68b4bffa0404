// NvdecVideoDecoder: decodes one H.264 / HEVC / AV1 video (a file, or an episode segment fetched as
// byte ranges: Note [Episode segments] in av/demuxer.h) on the GPU with NVDEC (nvcuvid, loaded at
// run time) and converts frames with our colour kernel, uint8 or float32 (Note [Float frames]),
// straight into a pooled device buffer (a [T, 3, H, W] FrameBatch with device kCUDA) or into the
// caller's memory on that GPU (decode_into; Note [Frame choice] and Note [Batch fill], as the CPU
// decoder).
//
// Owns its demuxer (av/demuxer.h, with the Annex B bitstream filter), nvcuvid parser and decoder, a
// stream, and shares the device's primary context and buffer pool. Not thread-safe: one caller at a time (DecoderCache
// leases). CUDA types stay in the .cpp (pimpl), so including this needs no CUDA headers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/errors.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs::cuda {

struct DeviceFill;

// Note [Stream handoff]
// ~~~~~~~~~~~~~~~~~~~~~
// Decoding and conversion run on the decoder's own non-blocking stream. A batch is handed to a
// consumer stream (e.g. torch.cuda.current_stream().cuda_stream; 0 = the legacy default stream,
// which is PyTorch's default): we record an event after the last kernel and make the consumer
// stream wait on it, without blocking the host. The batch's memory is freed on that consumer stream
// (Note [Device buffer pool]). Mapped NVDEC surfaces are unmapped only after the kernel reading
// them has finished (stream synchronise per frame): safe first; a GPU session should measure
// whether unmapping stream-ordered is allowed and faster.

// Note [NVDEC capability check]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// At open, cuvidGetDecoderCaps is asked about this stream's codec, bit depth, chroma format and
// coded size on this GPU. When NVDEC cannot decode it (AV1 on Hopper, A100 and Turing; sizes out of
// range; 4:2:2/4:4:4) the constructor throws NvdecUnsupported (a CudaUnavailable) naming the file,
// the codec, the GPU and the reason. There is no CPU fallback in this class: whether the hybrid path
// (CPU decode -> GPU colour kernel) takes such a file instead is decided, and reported, by
// decode/decoder_factory.h (Note [CUDA backend choice]).

// NVDEC on this GPU cannot decode this stream (codec, bit depth, chroma format or size); the
// driver and libnvcuvid themselves work. Other CudaUnavailable errors mean they do not.
// what() is "<file>: <reason><advice>"; reason() alone names GPU, codec and cause (no file), so a
// backend choice made because of it can be reported once per cause (Note [CUDA backend choice]).
class NvdecUnsupported : public CudaUnavailable {
 public:
  NvdecUnsupported(const std::string& path, std::string reason, const std::string& advice = {})
      : CudaUnavailable(path + ": " + reason + advice), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

struct NvdecOptions {
  int device_index = 0;
  uintptr_t consumer_stream = 0;  // CUstream the frames are handed to (Note [Stream handoff])
};

class NvdecVideoDecoder final : public VideoDecoder {
 public:
  // Throws FileNotFound / InvalidInput (bad file), CudaUnavailable (no driver, no NVDEC) or
  // NvdecUnsupported (NVDEC cannot decode this stream on this GPU; Note [NVDEC capability check]).
  explicit NvdecVideoDecoder(VideoSource source, NvdecOptions options = {});
  ~NvdecVideoDecoder() override;
  NvdecVideoDecoder(const NvdecVideoDecoder&) = delete;
  NvdecVideoDecoder& operator=(const NvdecVideoDecoder&) = delete;

  const StreamInfo& info() const override;
  FrameBatch get_frames_at(std::span<const double> timestamps_s, double tolerance_s,
                           PixelType dtype = PixelType::kUInt8) override;
  // Destinations must be this GPU's memory (InvalidInput otherwise).
  void decode_into(std::span<const double> timestamps_s, double tolerance_s, const FrameDestinations& out) override;
  DecoderStats stats() const override;
  const std::vector<double>& frame_times() const override;
  std::string backend() const override { return "nvdec"; }

  // The stream later batches are handed to (Note [Stream handoff]).
  void set_consumer_stream(uintptr_t stream) override;

 private:
  struct Impl;
  DeviceFill device_fill() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lrs::cuda
