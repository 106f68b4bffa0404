// RAII owners for the driver-API objects the GPU decode path uses: the device's primary context
// (shared with PyTorch), making it current on this thread, streams, events, a stream-ordered
// device memory pool whose blocks back FrameBatch (Note [Device buffer pool]), and page-locked
// (pinned) host memory.
//
// Each wrapper owns exactly its handle. PrimaryContext, CudaStream and CudaEvent: use from one
// thread at a time. DevicePool and allocate_pinned_host: thread-safe (the driver's pools are), and a
// block they hand out may be released from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cuda/cuda_api.h"
#include "decode/video_decoder.h"

namespace lrs::cuda {

// Note [Device buffer pool]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// Batches are allocated with cuMemAllocFromPoolAsync from a pool of our own (not the device's
// default pool, which PyTorch's cudaMallocAsync backend may tune), with the release threshold set
// to "keep everything", so after warm-up no batch costs a cudaMalloc/cudaFree. A block is freed
// with cuMemFreeAsync on the *consumer's* stream (the stream the frames were handed to, see
// Note [Stream handoff]), so the pool cannot give the memory to the next batch before the
// consumer's queued work on it has run.

class PrimaryContext {
 public:
  explicit PrimaryContext(int device_index);  // retains; throws CudaUnavailable / Error
  ~PrimaryContext();
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;
  CUcontext get() const { return context_; }
  CUdevice device() const { return device_; }
  int index() const { return index_; }

 private:
  int index_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
};

// Makes a context current on this thread for the scope (push / pop).
class ScopedContext {
 public:
  explicit ScopedContext(CUcontext context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
};

class CudaStream {
 public:
  CudaStream();  // non-blocking stream in the current context
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  CUstream get() const { return stream_; }

 private:
  CUstream stream_ = nullptr;
};

class CudaEvent {
 public:
  CudaEvent();  // timing disabled
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  CUevent get() const { return event_; }

 private:
  CUevent event_ = nullptr;
};

class DevicePool : public std::enable_shared_from_this<DevicePool> {
 public:
  // Keeps `context` alive as long as any block is outstanding.
  explicit DevicePool(std::shared_ptr<PrimaryContext> context);
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // `bytes` of device memory, ordered on `stream`; the returned owner frees it on `release_stream`
  // (Note [Device buffer pool]). The owner may be dropped from any thread.
  std::shared_ptr<uint8_t> allocate(size_t bytes, CUstream stream, CUstream release_stream);

  std::shared_ptr<PrimaryContext> context() const { return context_; }

  // The process-wide pool of device `device_index` (created on first use, shared by every decoder
  // and decode stage on it while any holds it). Throws CudaUnavailable.
  static std::shared_ptr<DevicePool> for_device(int device_index);

 private:
  std::shared_ptr<PrimaryContext> context_;
  CUmemoryPool pool_ = nullptr;
};

// A new [num_frames, 3, H, W] batch of `dtype` (H, W: `info`'s) on the pool's device, allocated
// ordered on `stream` and freed on `release_stream`: what the CUDA backends' get_frames_at decode
// into. The pool's context must be current.
FrameBatch allocate_device_batch(DevicePool& pool, int64_t num_frames, const StreamInfo& info, PixelType dtype,
                                 CUstream stream, CUstream release_stream);

// "GPU <index> (<name>)", e.g. "GPU 0 (NVIDIA H200)", for messages. Throws CudaUnavailable.
std::string device_label(int device_index);

// Page-locked host memory (cuMemHostAlloc, portable to every context). Copies from it to the GPU
// run asynchronously; torch sees a tensor on it as pinned. cuMemHostAlloc costs milliseconds, so
// blocks come back to the pool when their last owner drops them and are handed out again for the
// same size (batches of one shape recur); at most `max_cached_bytes` wait idle, beyond that a
// returned block is freed. Thread-safe; blocks may be dropped from any thread, also after the pool.
class PinnedHostPool {
 public:
  // Throws CudaUnavailable (no driver / no device).
  explicit PinnedHostPool(size_t max_cached_bytes);
  ~PinnedHostPool();
  PinnedHostPool(const PinnedHostPool&) = delete;
  PinnedHostPool& operator=(const PinnedHostPool&) = delete;

  std::shared_ptr<uint8_t> allocate(size_t bytes);  // throws Error when cuMemHostAlloc fails

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace lrs::cuda
