// Python bindings of the decode layer: CpuVideoDecoder and DecoderCache, over a file path or a
// ByteSource (bind_byte_source.cpp). Frames cross as DLPack
// (nb::ndarray<nb::pytorch>) whose owner is the FrameBatch itself, so torch sees the decoder's
// buffer without a copy. The GIL is released around opening, decoding and closing.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "av/cpu_decoder.h"
#include "bindings/decode_types.h"
#include "decode/decoder_cache.h"
#include "decode/decoder_factory.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using lrs::bindings::decoder_stats_dict;
using lrs::bindings::stream_info_dict;
using lrs::bindings::to_tensor;

lrs::VideoSource source_of(const std::shared_ptr<lrs::av::ByteSource>& bytes) {
  return lrs::VideoSource(std::shared_ptr<const lrs::av::ByteSource>(bytes));
}

auto cache_frames(lrs::DecoderCache& cache, const lrs::VideoSource& source,
                              const std::vector<double>& timestamps, double tolerance_s) {
  lrs::FrameBatch batch;
  {
    nb::gil_scoped_release release;
    batch = cache.get_frames_at(source, timestamps, tolerance_s);
  }
  return to_tensor(std::move(batch));
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
            const lrs::VideoSource video = source_of(source);
            nb::gil_scoped_release release;
            new (self) lrs::av::CpuVideoDecoder(video, lrs::av::CpuDecoderOptions{threads});
          },
          "source"_a, "threads"_a = 1,
          "Opens the episode segment of `source` (demux scan only); timestamps stay on the file's clock. "
          "Raises ValueError naming the URL (reads outside the fetched ranges, index mismatch, truncation).")
      .def(
          "__init__",
          [](lrs::av::CpuVideoDecoder* self, const std::string& path, int threads) {
            nb::gil_scoped_release release;
            new (self) lrs::av::CpuVideoDecoder(path, lrs::av::CpuDecoderOptions{threads});
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
          [](lrs::av::CpuVideoDecoder& d, const std::vector<double>& timestamps, double tolerance_s) {
            lrs::FrameBatch batch;
            {
              nb::gil_scoped_release release;
              batch = d.get_frames_at(timestamps, tolerance_s);
            }
            return to_tensor(std::move(batch));
          },
          "timestamps"_a, "tolerance_s"_a = 1e-4,
          "uint8 RGB frames [T, 3, H, W] nearest to `timestamps` (s), in request order.");

  m.def("default_decoder_cache_capacity", &lrs::default_decoder_cache_capacity, "episode_pool_size"_a,
        "num_cameras"_a, "min((episode_pool_size + 1) * num_cameras, 128).");

  nb::class_<lrs::DecoderCache>(m, "DecoderCache",
                                "LRU of open decoders (one device) keyed by file path or ByteSource.key.")
      .def(
          "__init__",
          [](lrs::DecoderCache* self, int64_t capacity, int threads, int64_t max_bytes, const std::string& device,
             const std::string& cuda_backend) {
            const lrs::DecodeDevice dev = lrs::parse_decode_device(device);
            {
              nb::gil_scoped_release release;
              lrs::require_device(dev);
            }
            new (self) lrs::DecoderCache(
                capacity, lrs::decoder_factory({dev, threads, lrs::parse_cuda_backend(cuda_backend), 0}), max_bytes);
          },
          "capacity"_a, "threads"_a = 1, "max_bytes"_a = 0, "device"_a = "cpu", "cuda_backend"_a = "auto")
      .def(
          "get_frames_at",
          [](lrs::DecoderCache& cache, const std::shared_ptr<lrs::av::ByteSource>& source,
             const std::vector<double>& timestamps, double tolerance_s) {
            return cache_frames(cache, source_of(source), timestamps, tolerance_s);
          },
          "source"_a, "timestamps"_a, "tolerance_s"_a = 1e-4,
          "Frames of the episode segment `source` nearest to `timestamps` (s, the file's clock), through the "
          "decoder cached under source.key.")
      .def(
          "get_frames_at",
          [](lrs::DecoderCache& cache, const std::string& path, const std::vector<double>& timestamps,
             double tolerance_s) { return cache_frames(cache, path, timestamps, tolerance_s); },
          "source"_a, "timestamps"_a, "tolerance_s"_a = 1e-4,
          "Frames of the file `source` nearest to `timestamps`, through a cached decoder.")
      .def("stats", [](const lrs::DecoderCache& cache) { return lrs::bindings::cache_stats_dict(cache.stats()); })
      .def_prop_ro("capacity", &lrs::DecoderCache::capacity)
      .def("clear", &lrs::DecoderCache::clear, nb::call_guard<nb::gil_scoped_release>());
}
