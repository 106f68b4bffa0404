#include "cuda/cuda_loader.h"

#include <dlfcn.h>

#include <mutex>

#include "common/errors.h"

namespace lrs::cuda {
namespace {

#define LRS_STRINGIFY_EXPANDED(x) LRS_STRINGIFY(x)
#define LRS_STRINGIFY(x) #x

struct Loaded {
  DriverApi driver;
  NvcuvidApi nvcuvid;
  LoaderStatus status;
};

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

void load(Loaded& l) {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    l.status.driver_error =
        "no NVIDIA driver: libcuda.so.1 could not be loaded (" + dl_error() +
        "); install the NVIDIA driver, or in a container run with the NVIDIA runtime (--gpus all)";
    l.status.nvcuvid_error = "no NVIDIA driver (libcuda.so.1 missing), so no NVDEC";
    return;
  }
  std::string missing;
#define LRS_LOAD_DRIVER(name)                                                                  \
  l.driver.name = reinterpret_cast<decltype(l.driver.name)>(dlsym(cuda, LRS_STRINGIFY_EXPANDED(name))); \
  if (l.driver.name == nullptr && missing.empty()) missing = LRS_STRINGIFY_EXPANDED(name);
  LRS_CUDA_DRIVER_FUNCTIONS(LRS_LOAD_DRIVER)
#undef LRS_LOAD_DRIVER
  if (!missing.empty()) {
    l.status.driver_error = "the NVIDIA driver is too old: libcuda.so.1 has no " + missing +
                            " (stream-ordered allocation needs driver >= 11.2; update the driver)";
    l.status.nvcuvid_error = "driver API unusable, so no NVDEC";
    return;
  }
  l.status.driver_loaded = true;
  l.driver.cuDriverGetVersion(&l.status.driver_version);
  const CUresult init = l.driver.cuInit(0);
  if (init != CUDA_SUCCESS) {
    const char* name = nullptr;
    l.driver.cuGetErrorName(init, &name);
    l.status.driver_error = std::string("no CUDA device: cuInit failed (") + (name ? name : "unknown error") +
                            "); check nvidia-smi and CUDA_VISIBLE_DEVICES";
  } else {
    l.status.initialised = true;
    l.driver.cuDeviceGetCount(&l.status.device_count);
    if (l.status.device_count == 0) l.status.driver_error = "no CUDA device (cuDeviceGetCount returned 0)";
  }

  void* cuvid = dlopen("libnvcuvid.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuvid == nullptr) {
    l.status.nvcuvid_error =
        "no NVDEC library: libnvcuvid.so.1 could not be loaded (" + dl_error() +
        "); in a container set NVIDIA_DRIVER_CAPABILITIES=compute,utility,video (or all)";
    return;
  }
#define LRS_LOAD_NVCUVID(name)                                                             \
  l.nvcuvid.name = reinterpret_cast<decltype(l.nvcuvid.name)>(dlsym(cuvid, LRS_STRINGIFY(name))); \
  if (l.nvcuvid.name == nullptr && missing.empty()) missing = LRS_STRINGIFY(name);
  LRS_NVCUVID_FUNCTIONS(LRS_LOAD_NVCUVID)
#undef LRS_LOAD_NVCUVID
  if (!missing.empty()) {
    l.status.nvcuvid_error = "libnvcuvid.so.1 has no " + missing + " (driver too old for this NVDEC API)";
    return;
  }
  l.status.nvcuvid_loaded = true;
}

const Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] { load(l); });
  return l;
}

}  // namespace

const DriverApi& driver_api() {
  const Loaded& l = loaded();
  if (!l.status.driver_error.empty()) throw CudaUnavailable("CUDA unavailable: " + l.status.driver_error);
  return l.driver;
}

const NvcuvidApi& nvcuvid_api() {
  driver_api();
  const Loaded& l = loaded();
  if (!l.status.nvcuvid_loaded) throw CudaUnavailable("NVDEC unavailable: " + l.status.nvcuvid_error);
  return l.nvcuvid;
}

void check_cuda(CUresult result, const std::string& what) {
  if (result == CUDA_SUCCESS) return;
  const DriverApi& api = loaded().driver;
  const char* name = nullptr;
  const char* text = nullptr;
  if (api.cuGetErrorName) api.cuGetErrorName(result, &name);
  if (api.cuGetErrorString) api.cuGetErrorString(result, &text);
  throw Error(what + ": " + (name ? name : "CUDA error " + std::to_string(static_cast<int>(result))) + ": " +
              (text ? text : "no description"));
}

LoaderStatus loader_status() { return loaded().status; }

}  // namespace lrs::cuda
