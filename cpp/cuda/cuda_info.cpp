#include "cuda/cuda_info.h"

#include <cstring>
#include <exception>

#include "cuda/cuda_context.h"
#include "cuda/cuda_loader.h"

namespace lrs::cuda {
namespace {

CodecSupport query_codec(const NvcuvidApi& cuvid, cudaVideoCodec codec, const char* name) {
  CUVIDDECODECAPS caps;
  std::memset(&caps, 0, sizeof(caps));
  caps.eCodecType = codec;
  caps.eChromaFormat = cudaVideoChromaFormat_420;
  caps.nBitDepthMinus8 = 0;
  CodecSupport s;
  s.codec = name;
  if (cuvid.cuvidGetDecoderCaps(&caps) == CUDA_SUCCESS && caps.bIsSupported) {
    s.supported = true;
    s.max_width = static_cast<int>(caps.nMaxWidth);
    s.max_height = static_cast<int>(caps.nMaxHeight);
    s.num_engines = caps.nNumNVDECs;
  }
  return s;
}

}  // namespace

CudaInfo cuda_info() {
  CudaInfo info;
  const LoaderStatus st = loader_status();
  info.driver_loaded = st.driver_loaded;
  info.nvcuvid_loaded = st.nvcuvid_loaded;
  info.driver_version = st.driver_version;
  info.device_count = st.device_count;
  if (!st.driver_error.empty()) {
    info.reason = st.driver_error;
    return info;
  }
  const DriverApi& api = driver_api();
  for (int i = 0; i < st.device_count; ++i) {
    DeviceInfo d;
    d.index = i;
    CUdevice dev = 0;
    if (api.cuDeviceGet(&dev, i) != CUDA_SUCCESS) continue;
    char name[256] = {};
    api.cuDeviceGetName(name, sizeof(name) - 1, dev);
    d.name = name;
    api.cuDeviceGetAttribute(&d.compute_capability_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    api.cuDeviceGetAttribute(&d.compute_capability_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    if (st.nvcuvid_loaded) {
      try {
        const PrimaryContext ctx(i);  // cuvidGetDecoderCaps needs a current context
        const ScopedContext current(ctx.get());
        const NvcuvidApi& cuvid = nvcuvid_api();
        d.nvdec.push_back(query_codec(cuvid, cudaVideoCodec_H264, "h264"));
        d.nvdec.push_back(query_codec(cuvid, cudaVideoCodec_HEVC, "hevc"));
        d.nvdec.push_back(query_codec(cuvid, cudaVideoCodec_AV1, "av1"));
      } catch (const std::exception& e) {
        if (info.reason.empty()) info.reason = std::string("device ") + std::to_string(i) + ": " + e.what();
      }
    }
    info.devices.push_back(std::move(d));
  }
  if (!st.nvcuvid_loaded) {
    info.reason = st.nvcuvid_error;
  } else if (info.reason.empty()) {
    info.available = !info.devices.empty();
    if (!info.available) info.reason = "no CUDA device could be queried";
  }
  return info;
}

}  // namespace lrs::cuda
