#include "cuda/cuda_context.h"

#include <cstring>
#include <limits>
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

}  // namespace lrs::cuda
