// DecodeStage: decodes whole batches' camera frames in the training process, on a pool of C++
// threads, ahead of the consumer, into one contiguous buffer per camera on the decode device
// (host, pinned host, or GPU). DataLoader workers cannot own CUDA (they are forked), so with GPU
// decode they emit each sample's tabular part plus its frame requests, and this stage fills the
// batch's camera tensors (Note [Decode stage]).
//
// Owns its threads, a DecoderCache of the device's decoders and the batch memory. Thread-safe:
// submit/take/stats may be called from any thread; jobs never call back into the caller.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "decode/decoder_cache.h"
#include "decode/decoder_factory.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs {

// Note [Decode stage]
// ~~~~~~~~~~~~~~~~~~~
// A batch arrives as frame requests: for every (camera, sample) exactly one request naming the
// video (a file, or a ByteSource's episode segment) and frames_per_sample timestamps. submit()
// allocates one [B * T, 3, H, W] buffer of the batch's dtype per camera on the device and queues the
// requests; `threads` threads take them in submission order,
// lease a decoder of the file from the cache (up to `threads` decoders per file, so requests for
// episodes of one file decode in parallel, as in DataLoader workers) and write the frames into
// the request's T slots (VideoDecoder::decode_into, Note [Batch fill]: the one way every backend
// writes caller memory, uint8 or float32 = uint8 / 255 as Note [Float frames] says). take(ticket) waits for a
// batch and returns its buffers, or rethrows the first error of its requests (naming the file).
// Bounded: submit() blocks while max_batches_ahead batches are submitted and not taken, so decoding
// runs ahead of the consumer by that many batches and no further.
// CUDA: decoders write on their own streams and join into the batch memory's join stream; take()
// makes the consumer stream (BatchRequest::cuda_stream) wait for the batch, without a host wait, and
// the batch's memory is freed on that stream when its tensors are dropped (Note [Device buffer pool]).
// The order of batches, and of samples within a batch, is the caller's: the stage changes no value
// (CPU: bitwise the frames a CpuVideoDecoder returns for the same request, in the same dtype).

struct CameraShape {
  int64_t frames_per_sample = 1;  // T
  int height = 0;
  int width = 0;
};

struct FrameRequest {
  int camera = 0;      // index into BatchRequest::cameras
  int64_t sample = 0;  // 0 <= sample < batch_size
  VideoSource source;
  std::vector<double> timestamps_s;  // frames_per_sample of them
};

struct BatchRequest {
  int64_t batch_size = 0;
  std::vector<CameraShape> cameras;
  std::vector<FrameRequest> requests;
  double tolerance_s = 1e-4;
  PixelType dtype = PixelType::kUInt8;
  uintptr_t cuda_stream = 0;  // CUDA: the consumer stream (a CUstream; 0 = legacy default)
};

struct DecodeStageOptions {
  DecoderOptions decoder;         // device, CPU threads per decoder, CUDA backend
  int threads = 4;                // decode threads of the stage
  int max_batches_ahead = 2;      // submitted, not yet taken
  int64_t cache_capacity = 128;   // open decoders
  int64_t cache_max_bytes = 0;    // their estimated memory (0 = count only)
  bool pin_memory = false;        // CPU device: pinned host batches
};

struct DecodeStageStats {
  int64_t batches_submitted = 0;
  int64_t batches_taken = 0;
  int64_t requests_done = 0;
  int64_t frames = 0;                          // frames written (requests x T)
  std::map<std::string, int64_t> frames_by_backend;
  double decode_seconds = 0;                   // summed over threads
  double take_wait_seconds = 0;                // take() waiting for a batch
  double submit_wait_seconds = 0;              // submit() waiting for room (the consumer is slower)
  DecoderCacheStats cache;
};

class DecodeStage {
 public:
  // Throws InvalidInput (bad options) or CudaUnavailable (device not usable).
  explicit DecodeStage(DecodeStageOptions options);
  ~DecodeStage();  // stops the threads after the requests they are decoding
  DecodeStage(const DecodeStage&) = delete;
  DecodeStage& operator=(const DecodeStage&) = delete;

  // Queues a batch; returns its ticket. Throws InvalidInput when the requests do not cover every
  // (camera, sample) exactly once with frames_per_sample timestamps each.
  int64_t submit(BatchRequest batch);
  // The batch's buffers, one per camera ([B * T, 3, H, W] on the device). Rethrows the first
  // decode error of the batch. Throws InvalidInput for an unknown or already taken ticket.
  std::vector<FrameBatch> take(int64_t ticket);
  DecodeStageStats stats() const;
  const DecodeDevice& device() const { return options_.decoder.device; }

 private:
  struct Pending;
  struct Job {
    std::shared_ptr<Pending> batch;
    size_t request;
  };
  void run();
  void decode(const Job& job);

  DecodeStageOptions options_;
  DecoderCache cache_;
  BatchMemory memory_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;  // jobs_ non-empty or stopping_
  std::condition_variable batch_done_;  // a batch finished, or one was taken (room to submit)
  std::deque<Job> jobs_;
  std::map<int64_t, std::shared_ptr<Pending>> pending_;
  int64_t next_ticket_ = 0;
  bool stopping_ = false;
  DecodeStageStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace lrs
