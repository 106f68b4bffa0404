// The one place that turns a device choice into a decoder: parses "cpu" / "cuda" / "cuda:N" and the
// CUDA backend option, checks that the device exists, opens the right VideoDecoder for a file
// (CPU libav, NVDEC, or the hybrid cpu->cuda path; Note [CUDA backend choice]) and allocates batch
// memory on the device (BatchMemory). Without CUDA in the build, "cuda" raises CudaUnavailable.
//
// Owns nothing global; BatchMemory owns its streams and pools. Functions are thread-safe;
// BatchMemory::allocate and hand_off may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "av/frame_stash.h"
#include "decode/decoder_cache.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs {

// Note [CUDA backend choice]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// device="cuda" decodes with one of two backends, chosen per file by `cuda_backend`:
//   "nvdec"     NVDEC only. A stream NVDEC cannot decode on this GPU raises CudaUnavailableError
//               naming the file, codec, GPU and reason.
//   "cpu->cuda" the hybrid path for every file (cuda/hybrid_decoder.h, Note [Hybrid path]): CPU
//               decode, GPU colour conversion. Needs the driver, not libnvcuvid.
//   "auto"      (default) NVDEC when this GPU's NVDEC decodes the stream; when NVDEC reports that it
//               cannot (codec, bit depth, chroma format or size: AV1 on H100/H200, A100, Turing),
//               the hybrid path. This rule is the only routing; it is never silent: the decoder's
//               backend() says "cpu->cuda" and backend_note() why, the decoder cache and decode stage
//               count files and frames per backend in stats(), and the Python layer logs each
//               distinct note once per process. A missing driver, libnvcuvid or device is a setup
//               error, not a capability: it always raises, whatever the backend.
// A stream neither backend can take raises CudaUnavailableError with both reasons.
enum class CudaBackend : int { kAuto = 0, kNvdec = 1, kHybrid = 2 };

// "cpu", "cuda" (= cuda:0) or "cuda:N"; InvalidInput listing the allowed forms otherwise.
DecodeDevice parse_decode_device(const std::string& text);
// "auto", "nvdec" or "cpu->cuda"; InvalidInput listing them otherwise.
CudaBackend parse_cuda_backend(const std::string& text);

// Nothing for the CPU; for CUDA, CudaUnavailable with the reason (built without CUDA, no driver,
// no device N) unless the device is usable.
void require_device(const DecodeDevice& device);

struct DecoderOptions {
  DecodeDevice device;
  int threads = 1;                          // CPU decoder threads (cpu and cpu->cuda)
  CudaBackend cuda_backend = CudaBackend::kAuto;
  uintptr_t consumer_stream = 0;            // CUDA: stream get_frames_at hands frames to
  // CPU device: the byte budget the decoders' frame stashes share (Note [Frame stash] in
  // av/frame_stash.h); null keeps no decoded frames.
  std::shared_ptr<av::FrameStashBudget> stash;
};

// Opens `source` (a path, or a ByteSource's episode segment) on `options.device`. Throws the
// decoders' errors (FileNotFound, InvalidInput, CudaUnavailable).
std::unique_ptr<VideoDecoder> open_decoder(const VideoSource& source, const DecoderOptions& options);

// A DecoderCache factory that opens with `options`.
DecoderFactory decoder_factory(DecoderOptions options);

// Batch memory on a device, ready for any decoder (and any thread) to write:
//   cpu: 64-byte aligned host memory, or pinned host memory (reused by size) when `pinned`;
//   cuda: the device's stream-ordered pool; a block is freed on the stream that consumed it.
// For CUDA, decoders write on their own streams and join their work into join_stream();
// hand_off(s) makes stream s wait for everything joined so far (no host wait).
class BatchMemory {
 public:
  // Throws CudaUnavailable (CUDA device or pinned memory without a usable driver).
  BatchMemory(const DecodeDevice& device, bool pinned);
  ~BatchMemory();
  BatchMemory(const BatchMemory&) = delete;
  BatchMemory& operator=(const BatchMemory&) = delete;

  std::shared_ptr<uint8_t> allocate(size_t bytes, uintptr_t consumer_stream);
  uintptr_t join_stream() const;
  void hand_off(uintptr_t consumer_stream);
  const DecodeDevice& device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  struct Cuda;
  DecodeDevice device_;
  bool pinned_;
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace lrs
