// Python binding of depth-map decoding (av/gray_frames.h): the frames of a file nearest to given
// timestamps as 12-bit gray codes (a file, or a ByteSource's episode segment), through the same DecoderCache as the RGB cameras. Frames cross as
// DLPack (int16 [T, 1, H, W], owner = the batch, no copy). The GIL is released while decoding.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "av/cpu_decoder.h"
#include "av/gray_frames.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using GrayTensor = nb::ndarray<nb::pytorch, int16_t, nb::ndim<4>, nb::c_contig>;

GrayTensor gray_frames(lrs::DecoderCache& cache, const lrs::VideoSource& source, const std::vector<double>& timestamps,
                       double tolerance_s);

GrayTensor to_tensor(lrs::av::GrayBatch batch) {
  int16_t* data = batch.data;
  const size_t shape[4] = {static_cast<size_t>(batch.num_frames), 1, static_cast<size_t>(batch.height),
                           static_cast<size_t>(batch.width)};
  nb::object owner = nb::cast(std::move(batch), nb::rv_policy::move);
  return GrayTensor(data, 4, shape, owner);
}

GrayTensor gray_frames(lrs::DecoderCache& cache, const lrs::VideoSource& source, const std::vector<double>& timestamps,
                       double tolerance_s) {
  lrs::av::GrayBatch batch;
  {
    nb::gil_scoped_release release;
    lrs::DecoderCache::Lease lease = cache.lease(source);
    auto* cpu = dynamic_cast<lrs::av::CpuVideoDecoder*>(&lease.decoder());
    if (cpu == nullptr) throw lrs::InvalidInput(source.name() + ": depth maps are decoded on the CPU only");
    batch = lrs::av::get_gray12_frames_at(*cpu, timestamps, tolerance_s);
  }
  return to_tensor(std::move(batch));
}

}  // namespace

void bind_depth(nb::module_& m) {
  nb::class_<lrs::av::GrayBatch>(m, "_GrayBatch", "Owner of a decoded depth batch's memory (internal).");

  m.def(
      "get_gray12_frames_at",
      [](lrs::DecoderCache& cache, const std::shared_ptr<lrs::av::ByteSource>& source,
         const std::vector<double>& timestamps, double tolerance_s) {
        return gray_frames(cache, lrs::VideoSource(source), timestamps, tolerance_s);
      },
      "cache"_a, "path"_a, "timestamps"_a, "tolerance_s"_a = 1e-4,
      "The same for an episode segment of a remote depth video (a ByteSource; timestamps on the file's clock).");
  m.def(
      "get_gray12_frames_at",
      [](lrs::DecoderCache& cache, const std::string& path, const std::vector<double>& timestamps,
         double tolerance_s) { return gray_frames(cache, path, timestamps, tolerance_s); },
      "cache"_a, "path"_a, "timestamps"_a, "tolerance_s"_a = 1e-4,
      "12-bit gray codes (int16 [T, 1, H, W], 0..4095) of `path`'s frames nearest to `timestamps` (s), "
      "in request order, as lerobot reads depth-map videos (PyAV's to_ndarray('gray12le')).");
}
