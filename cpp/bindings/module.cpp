// NB_MODULE for lerobot_stream._core: maps the core's typed exceptions to Python ones (once, here)
// and calls one bind_* function per area. Bindings convert types and nothing else.
#include <nanobind/nanobind.h>

#include <string>

extern "C" {
#include <libavutil/log.h>
}

#include "build_config.h"
#include "common/errors.h"

namespace nb = nanobind;

void bind_batch(nb::module_& m);
void bind_stage(nb::module_& m);
void bind_byte_source(nb::module_& m);
void bind_decode(nb::module_& m);
void bind_depth(nb::module_& m);
void bind_sampling(nb::module_& m);
void bind_cuda(nb::module_& m);

NB_MODULE(_core, m) {
  m.doc() = "lerobot-stream native core: decoding, decoder cache, episode pool, RNG and resume.";
  // Frame tensors legitimately outlive the module at interpreter exit (torch frees them late); the
  // leak report would only be noise for users.
  nb::set_leak_warnings(false);

  // Tried after the FrameTimestampError translator below (nanobind tries the newest first).
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const lrs::FileNotFound& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const lrs::InvalidInput& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lrs::OutOfRange& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const lrs::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  // LeRobot raises FrameTimestampError (a ValueError) when no frame is within tolerance_s.
  static nb::exception<lrs::FrameTimestampError> frame_timestamp_error(m, "FrameTimestampError",
                                                                       PyExc_ValueError);
  static nb::exception<lrs::CudaUnavailable> cuda_unavailable(m, "CudaUnavailableError", PyExc_RuntimeError);

  m.def(
      "set_log_level", [](int level) { av_log_set_level(level); }, nb::arg("level"),
      "Sets libav's log level (e.g. -8 quiet, 16 errors, 24 warnings, 32 info).");
  av_log_set_level(AV_LOG_ERROR);

  bind_stage(m);  // first: binds the VideoDecoder base the concrete decoders derive from
  bind_byte_source(m);
  bind_decode(m);
  bind_depth(m);
  bind_batch(m);
  bind_sampling(m);
#ifdef LRS_WITH_CUDA
  bind_cuda(m);
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
  m.def("cuda_info", [] {
    nb::dict d;
    d["built_with_cuda"] = false;
    d["available"] = false;
    const std::string reason = std::string("built without CUDA: ") + LRS_CUDA_SKIPPED_REASON +
                               " (Note [CUDA build requirements] in CMakeLists.txt; LRS_CUDA=ON makes it an error)";
    d["reason"] = nb::str(reason.c_str(), reason.size());
    d["driver_loaded"] = false;
    d["nvcuvid_loaded"] = false;
    d["device_count"] = 0;
    d["devices"] = nb::list();
    return d;
  });
#endif
}
