// Python bindings of the GPU layer: cuda_info() and NvdecVideoDecoder, whose frames cross as CUDA
// DLPack tensors (device kDLCUDA, zero copy). Compiled only when CUDA is enabled; without it,
// module.cpp defines a cuda_info() that says "built without CUDA". The GIL is released around
// opening and decoding.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings/decode_types.h"
#include "cuda/cuda_info.h"
#include "cuda/nvdec_decoder.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

nb::dict cuda_info_dict() {
  lrs::cuda::CudaInfo info;
  {
    nb::gil_scoped_release release;
    info = lrs::cuda::cuda_info();
  }
  nb::dict d;
  d["built_with_cuda"] = true;
  d["available"] = info.available;
  d["reason"] = info.reason;
  d["driver_loaded"] = info.driver_loaded;
  d["nvcuvid_loaded"] = info.nvcuvid_loaded;
  d["driver_version"] = info.driver_version;
  d["device_count"] = info.device_count;
  nb::list devices;
  for (const auto& dev : info.devices) {
    nb::dict dd;
    dd["index"] = dev.index;
    dd["name"] = dev.name;
    dd["compute_capability"] = nb::make_tuple(dev.compute_capability_major, dev.compute_capability_minor);
    nb::dict codecs;
    for (const auto& c : dev.nvdec) {
      nb::dict cd;
      cd["supported"] = c.supported;
      cd["max_width"] = c.max_width;
      cd["max_height"] = c.max_height;
      cd["engines"] = c.num_engines;
      codecs[c.codec.c_str()] = cd;
    }
    dd["nvdec"] = codecs;
    devices.append(dd);
  }
  d["devices"] = devices;
  return d;
}

}  // namespace

void bind_cuda(nb::module_& m) {
  m.def("cuda_info", &cuda_info_dict,
        "What CUDA / NVDEC support this process has: driver and libnvcuvid loaded, devices (name, compute "
        "capability, NVDEC support per codec) and, when unavailable, the reason.");

  using lrs::cuda::NvdecVideoDecoder;
  // info, backend, stats, set_stream, get_frames_at: inherited from VideoDecoderHandle (bind_stage.cpp).
  nb::class_<NvdecVideoDecoder, lrs::VideoDecoder>(m, "NvdecVideoDecoder",
                                "Decodes one H.264 / HEVC / AV1 file on the GPU with NVDEC into CUDA tensors.")
      .def(
          "__init__",
          [](NvdecVideoDecoder* self, const std::string& path, int device_index, uintptr_t stream) {
            nb::gil_scoped_release release;
            new (self) NvdecVideoDecoder(path, lrs::cuda::NvdecOptions{device_index, stream});
          },
          "path"_a, "device_index"_a = 0, "stream"_a = 0,
          "Opens `path` on GPU `device_index`; frames are handed to CUDA stream `stream` (a cuda_stream "
          "handle, 0 = the default stream). Raises CudaUnavailableError naming the file, codec, GPU and "
          "reason when NVDEC cannot decode it.");
}
