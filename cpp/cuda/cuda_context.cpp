#include "cuda/cuda_context.h"

#include <cstring>
#include <limits>
#include <mutex>
#include <vector>
#include <string>

#include "common/errors.h"
#include "cuda/cuda_loader.h"

namespace lrs::cuda {

PrimaryContext::PrimaryContext(int device_index) : index_(device_index) {
  const DriverApi& api = driver_api();
  int count = 0;
  check_cuda(api.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (device_index < 0 || device_index >= count) {
    throw CudaUnavailable("no CUDA device " + std::to_string(device_index) + " (this machine has " +
                          std::to_string(count) + ")");
  }
  check_cuda(api.cuDeviceGet(&device_, device_index), "cuDeviceGet");
  check_cuda(api.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
}

PrimaryContext::~PrimaryContext() { driver_api().cuDevicePrimaryCtxRelease(device_); }

ScopedContext::ScopedContext(CUcontext context) {
  check_cuda(driver_api().cuCtxPushCurrent(context), "cuCtxPushCurrent");
}

ScopedContext::~ScopedContext() {
  CUcontext popped = nullptr;
  driver_api().cuCtxPopCurrent(&popped);
}

CudaStream::CudaStream() { check_cuda(driver_api().cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"); }

CudaStream::~CudaStream() { driver_api().cuStreamDestroy(stream_); }

CudaEvent::CudaEvent() { check_cuda(driver_api().cuEventCreate(&event_, CU_EVENT_DISABLE_TIMING), "cuEventCreate"); }

CudaEvent::~CudaEvent() { driver_api().cuEventDestroy(event_); }

DevicePool::DevicePool(std::shared_ptr<PrimaryContext> context) : context_(std::move(context)) {
  const DriverApi& api = driver_api();
  CUmemPoolProps props;
  std::memset(&props, 0, sizeof(props));
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.handleTypes = CU_MEM_HANDLE_TYPE_NONE;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = context_->index();
  const ScopedContext current(context_->get());
  check_cuda(api.cuMemPoolCreate(&pool_, &props), "cuMemPoolCreate");
  cuuint64_t keep_all = std::numeric_limits<cuuint64_t>::max();
  check_cuda(api.cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all),
             "cuMemPoolSetAttribute(release threshold)");
}

DevicePool::~DevicePool() {
  const ScopedContext current(context_->get());
  driver_api().cuMemPoolDestroy(pool_);
}

std::shared_ptr<uint8_t> DevicePool::allocate(size_t bytes, CUstream stream, CUstream release_stream) {
  const DriverApi& api = driver_api();
  const ScopedContext current(context_->get());
  CUdeviceptr ptr = 0;
  check_cuda(api.cuMemAllocFromPoolAsync(&ptr, bytes == 0 ? 1 : bytes, pool_, stream),
             "cuMemAllocFromPoolAsync(" + std::to_string(bytes) + " bytes)");
  // The deleter keeps the pool (and through it the context) alive until the block is returned.
  return std::shared_ptr<uint8_t>(reinterpret_cast<uint8_t*>(ptr),
                                  [self = shared_from_this(), release_stream](uint8_t* p) noexcept {
                                    // A deleter must not throw: on failure the block stays in the pool.
                                    const DriverApi& api = driver_api();
                                    if (api.cuCtxPushCurrent(self->context_->get()) != CUDA_SUCCESS) return;
                                    api.cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(p), release_stream);
                                    CUcontext popped = nullptr;
                                    api.cuCtxPopCurrent(&popped);
                                  });
}

FrameBatch allocate_device_batch(DevicePool& pool, int64_t num_frames, const StreamInfo& info, PixelType dtype,
                                 CUstream stream, CUstream release_stream) {
  FrameBatch batch;
  batch.num_frames = num_frames;
  batch.height = info.height;
  batch.width = info.width;
  batch.dtype = dtype;
  batch.device = DeviceKind::kCUDA;
  batch.device_index = pool.context()->index();
  auto storage = pool.allocate(static_cast<size_t>(batch.size_bytes()), stream, release_stream);
  batch.data = storage.get();
  batch.owner = std::move(storage);
  return batch;
}

std::string device_label(int device_index) {
  const DriverApi& api = driver_api();
  CUdevice device = 0;
  char name[256] = {};
  if (api.cuDeviceGet(&device, device_index) != CUDA_SUCCESS ||
      api.cuDeviceGetName(name, sizeof(name) - 1, device) != CUDA_SUCCESS) {
    return "GPU " + std::to_string(device_index);
  }
  return "GPU " + std::to_string(device_index) + " (" + name + ")";
}

std::shared_ptr<DevicePool> DevicePool::for_device(int device_index) {
  static std::mutex mutex;
  static std::vector<std::weak_ptr<DevicePool>> pools;
  auto context = std::make_shared<PrimaryContext>(device_index);  // validates the index
  const std::lock_guard<std::mutex> lock(mutex);
  const size_t i = static_cast<size_t>(device_index);
  if (pools.size() <= i) pools.resize(i + 1);
  if (auto pool = pools[i].lock()) return pool;
  auto pool = std::make_shared<DevicePool>(std::move(context));
  pools[i] = pool;
  return pool;
}

struct PinnedHostPool::State {
  std::shared_ptr<PrimaryContext> context;  // cuMemHostAlloc / cuMemFreeHost need one current
  size_t max_cached_bytes = 0;
  std::mutex mutex;
  std::vector<std::pair<size_t, void*>> idle;  // (bytes, block), most recently returned last
  size_t idle_bytes = 0;

  void free_block(void* p) noexcept {
    const DriverApi& api = driver_api();
    if (api.cuCtxPushCurrent(context->get()) != CUDA_SUCCESS) return;
    api.cuMemFreeHost(p);
    CUcontext popped = nullptr;
    api.cuCtxPopCurrent(&popped);
  }
  ~State() {
    for (auto& [bytes, block] : idle) free_block(block);
  }
};

PinnedHostPool::PinnedHostPool(size_t max_cached_bytes) : state_(std::make_shared<State>()) {
  state_->context = std::make_shared<PrimaryContext>(0);
  state_->max_cached_bytes = max_cached_bytes;
}

PinnedHostPool::~PinnedHostPool() = default;

std::shared_ptr<uint8_t> PinnedHostPool::allocate(size_t bytes) {
  bytes = bytes == 0 ? 1 : bytes;
  void* block = nullptr;
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    auto& idle = state_->idle;
    for (auto it = idle.rbegin(); it != idle.rend(); ++it) {
      if (it->first == bytes) {
        block = it->second;
        state_->idle_bytes -= bytes;
        idle.erase(std::next(it).base());
        break;
      }
    }
  }
  if (block == nullptr) {
    const ScopedContext current(state_->context->get());
    check_cuda(driver_api().cuMemHostAlloc(&block, bytes, CU_MEMHOSTALLOC_PORTABLE),
               "cuMemHostAlloc(" + std::to_string(bytes) + " bytes of pinned host memory)");
  }
  // The deleter holds the state (not the pool): a block may outlive the pool and still be freed.
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(block), [state = state_, bytes](uint8_t* p) noexcept {
    {
      const std::lock_guard<std::mutex> lock(state->mutex);
      if (state->idle_bytes + bytes <= state->max_cached_bytes) {
        state->idle.emplace_back(bytes, p);
        state->idle_bytes += bytes;
        return;
      }
    }
    state->free_block(p);
  });
}

}  // namespace lrs::cuda
