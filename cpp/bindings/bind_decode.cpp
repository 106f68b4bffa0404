// Python bindings of the decode layer: CpuVideoDecoder and DecoderCache (on any device, opened
// through decode/decoder_factory.h), over a file path or a ByteSource (bind_byte_source.cpp).
// Frames cross as DLPack (nb::ndarray<nb::pytorch>, uint8 or float32) whose owner is the
// FrameBatch itself, so torch sees the decoder's buffer without a copy; DecoderCache.decode_into
// writes into tensors the caller allocated (e.g. the slots of a batch in shared memory, or GPU
// tensors for a CUDA cache). The GIL is released around opening, decoding and closing.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "av/cpu_decoder.h"
#include "bindings/decode_types.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"
#include "decode/decoder_factory.h"
#include "decode/multi_decode.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using lrs::bindings::decoder_stats_dict;
using lrs::bindings::pixel_type_from_name;
using lrs::bindings::stream_info_dict;
using lrs::bindings::to_tensor;
using lrs::bindings::video_source_of;


auto cache_frames(lrs::DecoderCache& cache, const lrs::VideoSource& source, const std::vector<double>& timestamps,
                  double tolerance_s, const std::string& dtype) {
  const lrs::PixelType type = pixel_type_from_name(dtype);
  lrs::FrameBatch batch;
  {
    nb::gil_scoped_release release;
    batch = cache.get_frames_at(source, timestamps, tolerance_s, type);
  }
  return to_tensor(std::move(batch));
}

// A writable tensor the caller allocated, on the CPU or a GPU: [3, H, W] (one frame) or [T, 3, H, W].
using OutputTensor = nb::ndarray<nb::c_contig>;

lrs::DecodeDevice device_of(const OutputTensor& out, const std::string& where) {
  if (out.device_type() == nb::device::cpu::value) return {};
  if (out.device_type() == nb::device::cuda::value) return {lrs::DeviceKind::kCUDA, out.device_id()};
  throw lrs::InvalidInput(where + " must be a CPU or CUDA tensor");
}

// One FileRequest per (source, timestamps, output); checks the outputs' type, shape and device
// (all outputs share one dtype and one device: `dtype`, `device`).
std::vector<lrs::FileRequest> file_requests(const std::vector<nb::object>& sources,
                                            const std::vector<std::vector<double>>& timestamps,
                                            const std::vector<OutputTensor>& outputs, lrs::PixelType* dtype,
                                            lrs::DecodeDevice* device) {
  if (sources.size() != timestamps.size() || sources.size() != outputs.size()) {
    throw lrs::InvalidInput("decode_into: " + std::to_string(sources.size()) + " sources, " +
                            std::to_string(timestamps.size()) + " timestamp lists and " +
                            std::to_string(outputs.size()) + " outputs: one of each per request");
  }
  std::vector<lrs::FileRequest> requests;
  requests.reserve(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    const OutputTensor& out = outputs[i];
    lrs::FileRequest r{video_source_of(sources[i]), timestamps[i], {}, 0, 0};
    const std::string where = "decode_into: output for " + r.source.name();
    lrs::PixelType type;
    if (out.dtype() == nb::dtype<uint8_t>()) type = lrs::PixelType::kUInt8;
    else if (out.dtype() == nb::dtype<float>()) type = lrs::PixelType::kFloat32;
    else throw lrs::InvalidInput(where + " must be uint8 or float32");
    const lrs::DecodeDevice on = device_of(out, where);
    if (i == 0) *dtype = type, *device = on;
    if (type != *dtype) throw lrs::InvalidInput(where + ": every output must have the same dtype");
    if (!(on == *device)) throw lrs::InvalidInput(where + ": every output must be on the same device");
    if (out.ndim() != 3 && out.ndim() != 4) throw lrs::InvalidInput(where + " must be [3, H, W] or [T, 3, H, W]");
    const size_t lead = out.ndim() - 3;
    const auto frames = static_cast<size_t>(out.ndim() == 4 ? out.shape(0) : 1);
    if (out.shape(lead) != 3) throw lrs::InvalidInput(where + " must have 3 channels (CHW)");
    if (frames != timestamps[i].size()) {
      throw lrs::InvalidInput(where + " holds " + std::to_string(frames) + " frames for " +
                              std::to_string(timestamps[i].size()) + " timestamps");
    }
    r.height = static_cast<int64_t>(out.shape(lead + 1));
    r.width = static_cast<int64_t>(out.shape(lead + 2));
    const int64_t frame_bytes = 3 * r.height * r.width * lrs::pixel_bytes(type);
    auto* base = static_cast<uint8_t*>(out.data());
    for (size_t f = 0; f < frames; ++f) r.destinations.push_back(base + static_cast<int64_t>(f) * frame_bytes);
    requests.push_back(std::move(r));
  }
  return requests;
}

}  // namespace

void bind_decode(nb::module_& m) {
  nb::class_<lrs::FrameBatch>(m, "_FrameBatch", "Owner of a decoded batch's memory (internal).");

  nb::class_<lrs::av::CpuVideoDecoder, lrs::VideoDecoder>(
      m, "CpuVideoDecoder",
      "Decodes one video file, or one episode segment of a remote file (a ByteSource), on the CPU with libav "
      "(dav1d for AV1).")
      .def(
          "__init__",
          [](lrs::av::CpuVideoDecoder* self, const std::shared_ptr<lrs::av::ByteSource>& source, int threads) {
            const lrs::VideoSource video(source);
            nb::gil_scoped_release release;
            new (self) lrs::av::CpuVideoDecoder(video, lrs::av::CpuDecoderOptions{threads, nullptr});
          },
          "source"_a, "threads"_a = 1,
          "Opens the episode segment of `source` (demux scan only); timestamps stay on the file's clock. "
          "Raises ValueError naming the URL (reads outside the fetched ranges, index mismatch, truncation).")
      .def(
          "__init__",
          [](lrs::av::CpuVideoDecoder* self, const std::string& path, int threads) {
            nb::gil_scoped_release release;
            new (self) lrs::av::CpuVideoDecoder(path, lrs::av::CpuDecoderOptions{threads, nullptr});
          },
          "source"_a, "threads"_a = 1,
          "Opens the file `source` (demux scan only). Raises FileNotFoundError or ValueError naming the file.")
      .def_prop_ro("info", [](const lrs::av::CpuVideoDecoder& d) { return stream_info_dict(d.info()); })
      .def_prop_ro("frame_times", &lrs::av::CpuVideoDecoder::frame_times,
                   "Presentation time (s) of every frame, ascending.")
      .def_prop_ro("backend", &lrs::av::CpuVideoDecoder::backend)
      .def("stats", [](const lrs::av::CpuVideoDecoder& d) { return decoder_stats_dict(d.stats()); })
      .def(
          "get_frames_at",
          [](lrs::av::CpuVideoDecoder& d, const std::vector<double>& timestamps, double tolerance_s,
             const std::string& dtype) {
            const lrs::PixelType type = pixel_type_from_name(dtype);
            lrs::FrameBatch batch;
            {
              nb::gil_scoped_release release;
              batch = d.get_frames_at(timestamps, tolerance_s, type);
            }
            return to_tensor(std::move(batch));
          },
          "timestamps"_a, "tolerance_s"_a = 1e-4, "dtype"_a = "uint8",
          "RGB frames [T, 3, H, W] nearest to `timestamps` (s), in request order: uint8, or float32 equal to "
          "uint8 / 255.");

  m.def("default_decoder_cache_capacity", &lrs::default_decoder_cache_capacity, "episode_pool_size"_a,
        "num_cameras"_a, "min((episode_pool_size + 1) * num_cameras, 128).");

  nb::class_<lrs::av::FrameStashBudget>(m, "FrameStashBudget",
                                       "Byte budget (and pass number) shared by the frame stashes of one "
                                       "DecoderCache's CPU decoders (Note [Frame stash]).")
      .def(nb::init<int64_t>(), "max_bytes"_a)
      .def_prop_ro("max_bytes", &lrs::av::FrameStashBudget::max_bytes)
      .def_prop_ro("used_bytes", &lrs::av::FrameStashBudget::used_bytes)
      .def_prop_ro("peak_bytes", &lrs::av::FrameStashBudget::peak_bytes)
      .def("begin_pass", &lrs::av::FrameStashBudget::begin_pass,
           "Starts a new pass: every stash forgets the frames it served and holds.");

  nb::class_<lrs::DecoderCache>(m, "DecoderCache",
                                "LRU of open decoders (one device) keyed by file path or ByteSource.key.")
      .def(
          "__init__",
          [](lrs::DecoderCache* self, int64_t capacity, int threads, int64_t max_bytes, const std::string& device,
             const std::string& cuda_backend, std::shared_ptr<lrs::av::FrameStashBudget> stash) {
            const lrs::DecodeDevice dev = lrs::parse_decode_device(device);
            const lrs::CudaBackend backend = lrs::parse_cuda_backend(cuda_backend);
            if (stash && dev.kind != lrs::DeviceKind::kCPU) {
              throw lrs::InvalidInput("a frame stash is for CPU decoding; device is " + dev.str());
            }
            {
              nb::gil_scoped_release release;
              lrs::require_device(dev);
            }
            lrs::DecoderOptions options{.device = dev, .threads = threads, .cuda_backend = backend,
                                        .consumer_stream = 0, .stash = std::move(stash)};
            new (self) lrs::DecoderCache(capacity, lrs::decoder_factory(std::move(options)), max_bytes);
          },
          "capacity"_a, "threads"_a = 1, "max_bytes"_a = 0, "device"_a = "cpu", "cuda_backend"_a = "auto",
          "stash"_a = nb::none())
      .def(
          "get_frames_at",
          [](lrs::DecoderCache& cache, const std::shared_ptr<lrs::av::ByteSource>& source,
             const std::vector<double>& timestamps, double tolerance_s, const std::string& dtype) {
            return cache_frames(cache, lrs::VideoSource(source), timestamps, tolerance_s, dtype);
          },
          "source"_a, "timestamps"_a, "tolerance_s"_a = 1e-4, "dtype"_a = "uint8",
          "Frames of the episode segment `source` nearest to `timestamps` (s, the file's clock), through the "
          "decoder cached under source.key.")
      .def(
          "get_frames_at",
          [](lrs::DecoderCache& cache, const std::string& path, const std::vector<double>& timestamps,
             double tolerance_s, const std::string& dtype) {
            return cache_frames(cache, path, timestamps, tolerance_s, dtype);
          },
          "source"_a, "timestamps"_a, "tolerance_s"_a = 1e-4, "dtype"_a = "uint8",
          "Frames of the file `source` nearest to `timestamps`, through a cached decoder.")
      .def(
          "decode_into",
          [](lrs::DecoderCache& cache, const std::vector<nb::object>& sources,
             const std::vector<std::vector<double>>& timestamps, const std::vector<OutputTensor>& outputs,
             double tolerance_s, int parallelism, uintptr_t stream) {
            lrs::PixelType dtype = lrs::PixelType::kUInt8;
            lrs::DecodeDevice device;
            const std::vector<lrs::FileRequest> requests =
                file_requests(sources, timestamps, outputs, &dtype, &device);
            nb::gil_scoped_release release;
            lrs::decode_files(cache, requests, tolerance_s, dtype, parallelism, device, stream);
          },
          "sources"_a, "timestamps"_a, "outputs"_a, "tolerance_s"_a = 1e-4, "parallelism"_a = 1, "stream"_a = 0,
          "Writes the frames of sources[i] (a path or a ByteSource) nearest to timestamps[i] into outputs[i] "
          "([T, 3, H, W] or, for one timestamp, [3, H, W]; uint8 or float32; on the CPU, or on the cache's GPU "
          "with the writes handed to CUDA stream `stream`), decoding up to `parallelism` videos at once.")
      .def(
          "stream_info",
          [](lrs::DecoderCache& cache, nb::handle source) {
            const lrs::VideoSource video = video_source_of(source);
            lrs::StreamInfo info;
            {
              nb::gil_scoped_release release;
              info = cache.stream_info(video);
            }
            return stream_info_dict(info);
          },
          "source"_a, "The stream facts of `source` (opens its decoder on a miss).")
      .def("stats", [](const lrs::DecoderCache& cache) { return lrs::bindings::cache_stats_dict(cache.stats()); })
      .def_prop_ro("capacity", &lrs::DecoderCache::capacity)
      .def("clear", &lrs::DecoderCache::clear, nb::call_guard<nb::gil_scoped_release>());
}
