// Python bindings of the device layer (decode/decoder_factory.h) and the decode stage
// (decode/decode_stage.h): a device-agnostic VideoDecoder handle opened by device name, the check
// that a device is usable, and DecodeStage, whose batches cross as DLPack tensors on the decode
// device (zero copy). The GIL is released around opening, decoding, submitting and waiting.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include "bindings/decode_types.h"
#include "common/errors.h"
#include "decode/decode_stage.h"
#include "decode/decoder_factory.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using TimestampMatrix = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

lrs::DecoderOptions decoder_options(const std::string& device, int threads, const std::string& cuda_backend,
                                    uintptr_t stream) {
  return lrs::DecoderOptions{.device = lrs::parse_decode_device(device),
                             .threads = threads,
                             .cuda_backend = lrs::parse_cuda_backend(cuda_backend),
                             .consumer_stream = stream};
}

nb::dict stage_stats_dict(const lrs::DecodeStageStats& s) {
  nb::dict d;
  d["batches_submitted"] = s.batches_submitted;
  d["batches_taken"] = s.batches_taken;
  d["requests_done"] = s.requests_done;
  d["frames"] = s.frames;
  d["frames_by_backend"] = lrs::bindings::counts_dict(s.frames_by_backend);
  d["decode_seconds"] = s.decode_seconds;
  d["take_wait_seconds"] = s.take_wait_seconds;
  d["submit_wait_seconds"] = s.submit_wait_seconds;
  d["decoder_cache"] = lrs::bindings::cache_stats_dict(s.cache);
  return d;
}

// One batch's requests from the Python side: per camera, a video (path or ByteSource) per sample and
// a [B, T] matrix of timestamps, plus the camera's frame size.
lrs::BatchRequest make_batch(const std::vector<std::vector<nb::object>>& sources,
                             const std::vector<TimestampMatrix>& timestamps,
                             const std::vector<std::tuple<int, int>>& sizes, double tolerance_s, lrs::PixelType dtype,
                             uintptr_t stream) {
  if (sources.size() != timestamps.size() || sources.size() != sizes.size()) {
    throw lrs::InvalidInput("decode stage: sources, timestamps and sizes must have one entry per camera, got " +
                            std::to_string(sources.size()) + ", " + std::to_string(timestamps.size()) + ", " +
                            std::to_string(sizes.size()));
  }
  lrs::BatchRequest batch;
  batch.tolerance_s = tolerance_s;
  batch.dtype = dtype;
  batch.cuda_stream = stream;
  batch.batch_size = sources.empty() ? 0 : static_cast<int64_t>(sources[0].size());
  for (size_t c = 0; c < sources.size(); ++c) {
    const TimestampMatrix& t = timestamps[c];
    if (static_cast<int64_t>(sources[c].size()) != batch.batch_size ||
        static_cast<int64_t>(t.shape(0)) != batch.batch_size) {
      throw lrs::InvalidInput("decode stage: camera " + std::to_string(c) + " has " + std::to_string(sources[c].size()) +
                              " sources and " + std::to_string(t.shape(0)) + " timestamp rows for a batch of " +
                              std::to_string(batch.batch_size));
    }
    const auto frames = static_cast<int64_t>(t.shape(1));
    batch.cameras.push_back(lrs::CameraShape{frames, std::get<0>(sizes[c]), std::get<1>(sizes[c])});
    for (int64_t s = 0; s < batch.batch_size; ++s) {
      const double* row = t.data() + s * frames;
      batch.requests.push_back(lrs::FrameRequest{static_cast<int>(c), s,
                                                 lrs::bindings::video_source_of(sources[c][static_cast<size_t>(s)]),
                                                 std::vector<double>(row, row + frames)});
    }
  }
  return batch;
}

}  // namespace

void bind_stage(nb::module_& m) {
  m.def(
      "require_device",
      [](const std::string& device) {
        nb::gil_scoped_release release;
        lrs::require_device(lrs::parse_decode_device(device));
      },
      "device"_a,
      "Raises ValueError for a malformed device name and CudaUnavailableError (with the reason cuda_info()\n"
      "gives) when a CUDA device is not usable.");

  nb::class_<lrs::VideoDecoder>(m, "VideoDecoderHandle", "One open video file on some device (internal).")
      .def_prop_ro("info", [](const lrs::VideoDecoder& d) { return lrs::bindings::stream_info_dict(d.info()); })
      .def_prop_ro("frame_times", &lrs::VideoDecoder::frame_times)
      .def_prop_ro("backend", &lrs::VideoDecoder::backend)
      .def_prop_ro("backend_note", &lrs::VideoDecoder::backend_note)
      .def("stats", [](const lrs::VideoDecoder& d) { return lrs::bindings::decoder_stats_dict(d.stats()); })
      .def("set_stream", &lrs::VideoDecoder::set_consumer_stream, "stream"_a)
      .def(
          "get_frames_at",
          [](lrs::VideoDecoder& d, const std::vector<double>& timestamps, double tolerance_s, const std::string& dtype) {
            const lrs::PixelType type = lrs::bindings::pixel_type_from_name(dtype);
            lrs::FrameBatch batch;
            {
              nb::gil_scoped_release release;
              batch = d.get_frames_at(timestamps, tolerance_s, type);
            }
            return lrs::bindings::to_tensor(std::move(batch));
          },
          "timestamps"_a, "tolerance_s"_a = 1e-4, "dtype"_a = "uint8",
          "RGB frames [T, 3, H, W] nearest to `timestamps` (s), in request order, on the decoder's device: uint8, "
          "or float32 equal to uint8 / 255.")
      .def(
          "_get_frames_and_address",
          [](lrs::VideoDecoder& d, const std::vector<double>& timestamps, double tolerance_s, const std::string& dtype) {
            const lrs::PixelType type = lrs::bindings::pixel_type_from_name(dtype);
            lrs::FrameBatch batch;
            {
              nb::gil_scoped_release release;
              batch = d.get_frames_at(timestamps, tolerance_s, type);
            }
            const auto address = reinterpret_cast<uintptr_t>(batch.data);
            return nb::make_tuple(lrs::bindings::to_tensor(std::move(batch)), address);
          },
          "timestamps"_a, "tolerance_s"_a = 1e-4, "dtype"_a = "uint8",
          "(frames, address of the decoder's buffer): for the zero-copy test (the tensor must point there).");

  const auto open = [](const lrs::VideoSource& source, const std::string& device, int threads,
                       const std::string& cuda_backend, uintptr_t stream) {
    const lrs::DecoderOptions options = decoder_options(device, threads, cuda_backend, stream);
    nb::gil_scoped_release release;
    return lrs::open_decoder(source, options);
  };
  m.def(
      "open_decoder",
      [open](const std::string& path, const std::string& device, int threads, const std::string& cuda_backend,
             uintptr_t stream) { return open(path, device, threads, cuda_backend, stream); },
      "source"_a, "device"_a = "cpu", "threads"_a = 1, "cuda_backend"_a = "auto", "stream"_a = 0,
      "Opens the file `source` on `device` ('cpu', 'cuda', 'cuda:N') with `cuda_backend` ('auto', 'nvdec', "
      "'cpu->cuda').");
  m.def(
      "open_decoder",
      [open](const std::shared_ptr<lrs::av::ByteSource>& bytes, const std::string& device, int threads,
             const std::string& cuda_backend, uintptr_t stream) {
        return open(lrs::VideoSource(bytes), device, threads, cuda_backend, stream);
      },
      "source"_a, "device"_a = "cpu", "threads"_a = 1, "cuda_backend"_a = "auto", "stream"_a = 0,
      "Opens the episode segment of the ByteSource `source` (see open_decoder above).");

  nb::class_<lrs::DecodeStage>(m, "DecodeStage", "Decodes batches' frame requests on C++ threads (internal).")
      .def(
          "__init__",
          [](lrs::DecodeStage* self, const std::string& device, int threads, int max_batches_ahead,
             int64_t cache_capacity, int64_t cache_max_bytes, int decoder_threads, const std::string& cuda_backend,
             bool pin_memory) {
            lrs::DecodeStageOptions o;
            o.decoder = decoder_options(device, decoder_threads, cuda_backend, 0);
            o.threads = threads;
            o.max_batches_ahead = max_batches_ahead;
            o.cache_capacity = cache_capacity;
            o.cache_max_bytes = cache_max_bytes;
            o.pin_memory = pin_memory;
            nb::gil_scoped_release release;
            new (self) lrs::DecodeStage(std::move(o));
          },
          "device"_a, "threads"_a, "max_batches_ahead"_a, "cache_capacity"_a, "cache_max_bytes"_a = 0,
          "decoder_threads"_a = 1, "cuda_backend"_a = "auto", "pin_memory"_a = false)
      .def(
          "submit",
          [](lrs::DecodeStage& stage, const std::vector<std::vector<nb::object>>& sources,
             const std::vector<TimestampMatrix>& timestamps, const std::vector<std::tuple<int, int>>& sizes,
             double tolerance_s, uintptr_t stream, const std::string& dtype) {
            lrs::BatchRequest batch =
                make_batch(sources, timestamps, sizes, tolerance_s, lrs::bindings::pixel_type_from_name(dtype), stream);
            nb::gil_scoped_release release;
            return stage.submit(std::move(batch));
          },
          "sources"_a, "timestamps"_a, "sizes"_a, "tolerance_s"_a, "stream"_a = 0, "dtype"_a = "uint8",
          "Queues a batch: per camera, one video per sample (a path or a ByteSource), a [B, T] float64 timestamp\n"
          "matrix and the (height, width) of its frames; frames of `dtype` ('uint8' or 'float32' = uint8 / 255).\n"
          "Returns a ticket.")
      .def(
          "take",
          [](lrs::DecodeStage& stage, int64_t ticket) {
            std::vector<lrs::FrameBatch> batches;
            {
              nb::gil_scoped_release release;
              batches = stage.take(ticket);
            }
            nb::list out;
            for (lrs::FrameBatch& b : batches) out.append(lrs::bindings::to_tensor(std::move(b)));
            return out;
          },
          "ticket"_a, "One tensor [B * T, 3, H, W] per camera (the batch's dtype) on the stage's device.")
      .def("stats", [](const lrs::DecodeStage& stage) { return stage_stats_dict(stage.stats()); });
}
