// decode_files: one sample's (or one batch's) frames from several video files, written into
// caller-owned memory (host, or the cache's GPU), through one DecoderCache, by up to `parallelism`
// threads at once.
//
// Requests of the same video (VideoSource::key) are merged into one decoder call (one lease, frames decoded in
// presentation order, each distinct frame once). Different files decode in parallel: the calling
// thread takes files too, and helper threads exist only for the call (Note [Decode parallelism]).
// Thread-safe as far as the cache is (it is).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "decode/decoder_cache.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs {

// Note [Decode parallelism]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Decoding cameras in parallel shortens one sample's latency only when cores are idle; on a machine
// whose cores are already busy with other DataLoader workers, extra threads only contend (and
// evict each other's caches). So the caller chooses `parallelism` from the cores it may use and how
// many consumers share them (lerobot_stream.decoding.decode_parallelism); 1 decodes file after
// file on the calling thread. A file is never split across threads: its decoder is not
// thread-safe and its frames are cheapest decoded in order by one decoder.

// Frames of one video (a file or an episode segment): destinations[i] receives the frame nearest
// timestamps_s[i].
struct FileRequest {
  VideoSource source;
  std::vector<double> timestamps_s;
  std::vector<uint8_t*> destinations;
  int64_t height = 0;  // what each destination was allocated for (checked against the stream)
  int64_t width = 0;
};

// Decodes every request into destinations of `dtype` on `device` (each decoder's decode_into; CUDA
// backends hand their writes to `cuda_stream`). Throws the first failure (in request order) after
// all threads finished: the decoders' own errors, or InvalidInput for a request whose counts or
// sizes do not agree.
void decode_files(DecoderCache& cache, std::span<const FileRequest> requests, double tolerance_s, PixelType dtype,
                  int parallelism, const DecodeDevice& device = {}, uintptr_t cuda_stream = 0);

}  // namespace lrs
