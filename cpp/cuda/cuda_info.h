// cuda_info(): what CUDA / NVDEC support this process has, and why not when it has none. Used by
// lerobot_stream.cuda_info() and by the GPU tests' skip reasons. Owns nothing; thread-safe.
#pragma once

#include <string>
#include <vector>

namespace lrs::cuda {

struct CodecSupport {
  std::string codec;       // "h264", "hevc", "av1"
  bool supported = false;  // NVDEC decodes 8-bit 4:2:0 of this codec on this GPU
  int max_width = 0;
  int max_height = 0;
  int num_engines = 0;     // NVDEC engines that can decode it (CUVIDDECODECAPS::nNumNVDECs)
};

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  std::vector<CodecSupport> nvdec;  // empty when NVDEC is unavailable
};

struct CudaInfo {
  bool driver_loaded = false;
  bool nvcuvid_loaded = false;
  int driver_version = 0;
  int device_count = 0;
  std::vector<DeviceInfo> devices;
  bool available = false;  // a device is usable for NVDEC decoding
  std::string reason;      // why not ("" when available)
};

// Never throws for a missing driver/device: that is reported in `reason`.
CudaInfo cuda_info();

}  // namespace lrs::cuda
