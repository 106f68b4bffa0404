// Run-time loading of the NVIDIA driver libraries: libcuda.so.1 (driver API) and libnvcuvid.so.1
// (NVDEC). Nothing links them, so the module imports on machines without a driver; the first use
// dlopens them once per process and keeps them loaded (never dlclose: decoders and pooled memory
// may be released during interpreter shutdown).
//
// Owns the two library handles and their function tables (process-wide, immutable once loaded).
// Thread-safe: loading happens once under std::call_once; the tables are read-only afterwards.
#pragma once

#include <string>

#include "cuda/cuda_api.h"

namespace lrs::cuda {

// Note [Driver API only]
// ~~~~~~~~~~~~~~~~~~~~~~
// Everything CUDA goes through the driver API loaded here: the primary context (the one PyTorch
// uses, so tensors and our buffers share it), streams, events, a stream-ordered memory pool, copies
// and the colour kernel, which nvcc compiles to a fatbin (SASS for the LRS_CUDA_ARCHITECTURES plus
// PTX for newer GPUs) that is embedded in the library and loaded with cuModuleLoadData. We link
// neither libcudart nor cudart_static: no second runtime with its own driver-version gate and
// error codes, no CUDA library at all in the module's DT_NEEDED, and one place (this loader) where
// "no driver", "no NVDEC library" and "no device" are told apart:
//   * libcuda.so.1 missing        -> CudaUnavailable "no NVIDIA driver (libcuda.so.1 not found ...)"
//   * libnvcuvid.so.1 missing     -> CudaUnavailable naming NVIDIA_DRIVER_CAPABILITIES=...,video
//   * cuInit fails / 0 devices    -> CudaUnavailable "no CUDA device ..."
// Never a silent fallback: the caller decides (device="cuda" raises; cuda_info() reports).

// The loaded driver API; cuInit(0) has succeeded and at least one device exists. Throws
// CudaUnavailable (with the reason above) otherwise; the failure is remembered, not retried.
const DriverApi& driver_api();

// The loaded NVDEC API (implies driver_api()). Throws CudaUnavailable.
const NvcuvidApi& nvcuvid_api();

// Throws lrs::Error "<what>: <CUDA error name>: <description>" when `result` is not CUDA_SUCCESS.
void check_cuda(CUresult result, const std::string& what);

// What loading found, for cuda_info(): never throws.
struct LoaderStatus {
  bool driver_loaded = false;       // libcuda.so.1 opened and every symbol resolved
  bool nvcuvid_loaded = false;      // libnvcuvid.so.1 opened and every symbol resolved
  bool initialised = false;         // cuInit(0) succeeded
  int driver_version = 0;           // e.g. 12080 for 12.8
  int device_count = 0;
  std::string driver_error;         // why the driver API is unusable ("" when usable)
  std::string nvcuvid_error;        // why NVDEC is unusable ("" when usable)
};
LoaderStatus loader_status();

}  // namespace lrs::cuda
