// Function tables of the CUDA driver API (libcuda.so.1) and NVDEC (libnvcuvid.so.1), filled by
// cuda_loader.cpp with dlsym. Declarations come from the toolkit's <cuda.h> (always in step with the
// driver API) and FFmpeg's nv-codec-headers (<ffnvcodec/dynlink_nvcuvid.h>, Debian package
// libffmpeg-nvenc-dev) for nvcuvid, whose headers NVIDIA does not ship with the toolkit. Including
// cuda.h first makes dynlink_cuda.h step aside (it checks CUDA_VERSION), so both agree on types.
// Owns nothing. Thread-safe (the tables are immutable once loaded).
#pragma once

#include <cuda.h>
#include <ffnvcodec/dynlink_nvcuvid.h>

namespace lrs::cuda {

// X-macro lists. cuda.h maps names to their ABI versions with macros (cuMemAlloc -> cuMemAlloc_v2,
// cuCtxPushCurrent -> cuCtxPushCurrent_v2, ...): the member names, the decltype and the string
// passed to dlsym all go through the same expansion, so they always agree.
#define LRS_CUDA_DRIVER_FUNCTIONS(X) \
  X(cuInit)                          \
  X(cuDriverGetVersion)              \
  X(cuGetErrorName)                  \
  X(cuGetErrorString)                \
  X(cuDeviceGetCount)                \
  X(cuDeviceGet)                     \
  X(cuDeviceGetName)                 \
  X(cuDeviceGetAttribute)            \
  X(cuDevicePrimaryCtxRetain)        \
  X(cuDevicePrimaryCtxRelease)       \
  X(cuCtxPushCurrent)                \
  X(cuCtxPopCurrent)                 \
  X(cuStreamCreate)                  \
  X(cuStreamDestroy)                 \
  X(cuStreamSynchronize)             \
  X(cuStreamWaitEvent)               \
  X(cuEventCreate)                   \
  X(cuEventDestroy)                  \
  X(cuEventRecord)                   \
  X(cuEventSynchronize)              \
  X(cuMemPoolCreate)                 \
  X(cuMemPoolDestroy)                \
  X(cuMemPoolSetAttribute)           \
  X(cuMemAllocFromPoolAsync)         \
  X(cuMemFreeAsync)                  \
  X(cuMemHostAlloc)                  \
  X(cuMemFreeHost)                   \
  X(cuMemcpyDtoDAsync)               \
  X(cuMemcpyHtoDAsync)               \
  X(cuMemcpy2DAsync)                 \
  X(cuModuleLoadData)                \
  X(cuModuleUnload)                  \
  X(cuModuleGetFunction)             \
  X(cuLaunchKernel)

#define LRS_NVCUVID_FUNCTIONS(X) \
  X(cuvidGetDecoderCaps)         \
  X(cuvidCreateDecoder)          \
  X(cuvidDestroyDecoder)         \
  X(cuvidDecodePicture)          \
  X(cuvidReconfigureDecoder)     \
  X(cuvidMapVideoFrame64)        \
  X(cuvidUnmapVideoFrame64)      \
  X(cuvidCreateVideoParser)      \
  X(cuvidParseVideoData)         \
  X(cuvidDestroyVideoParser)

struct DriverApi {
#define LRS_DECLARE_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  LRS_CUDA_DRIVER_FUNCTIONS(LRS_DECLARE_DRIVER_MEMBER)
#undef LRS_DECLARE_DRIVER_MEMBER
};

// nvcuvid's headers declare function types (tcuvidXxx), not prototypes.
struct NvcuvidApi {
#define LRS_DECLARE_NVCUVID_MEMBER(name) t##name* name = nullptr;
  LRS_NVCUVID_FUNCTIONS(LRS_DECLARE_NVCUVID_MEMBER)
#undef LRS_DECLARE_NVCUVID_MEMBER
};

}  // namespace lrs::cuda
