#include "cuda/device_fill.h"

#include <vector>

#include "cuda/cuda_loader.h"
#include "decode/batch_fill.h"

namespace lrs::cuda {

void fill_on_device(const DeviceFill& fill, std::span<const double> timestamps_s, double tolerance_s,
                    const FrameDestinations& out, DecoderStats& stats, const ConvertFrame& convert) {
  const DecodeDevice gpu{DeviceKind::kCUDA, fill.device_index};
  const std::vector<int64_t> wanted =
      prepare_fill(fill.table, fill.info, fill.path, gpu, timestamps_s, tolerance_s, out);
  stats.frames_requested += static_cast<int64_t>(wanted.size());
  const DriverApi& api = driver_api();
  const auto frame_bytes = static_cast<size_t>(3 * out.height * out.width * pixel_bytes(out.dtype));
  const OutputType type = out.dtype == PixelType::kFloat32 ? OutputType::kFloat32 : OutputType::kUint8;
  const auto slot = [&](size_t i) { return reinterpret_cast<CUdeviceptr>(out.frames[i]); };
  fill_in_presentation_order(  // Note [Batch fill]
      wanted, [&](int64_t frame, size_t i) { convert(frame, slot(i), type); },
      [&](size_t from, size_t to) {
        check_cuda(api.cuMemcpyDtoDAsync(slot(to), slot(from), frame_bytes, fill.stream),
                   fill.path + ": copying a repeated frame");
        ++stats.frames_reused;
      });
  // Note [Stream handoff]: the consumer stream waits for our work; the host does not.
  check_cuda(api.cuEventRecord(fill.done, fill.stream), fill.path + ": cuEventRecord");
  check_cuda(api.cuStreamWaitEvent(reinterpret_cast<CUstream>(out.cuda_stream), fill.done, 0),
             fill.path + ": cuStreamWaitEvent");
}

FrameBatch frames_on_device(const DeviceFill& fill, DevicePool& pool, size_t num_frames, PixelType dtype,
                            uintptr_t consumer_stream,
                            const std::function<void(const FrameDestinations&)>& decode_into) {
  FrameBatch batch = allocate_device_batch(pool, static_cast<int64_t>(num_frames), fill.info, dtype, fill.stream,
                                           reinterpret_cast<CUstream>(consumer_stream));
  const std::vector<uint8_t*> slots = frame_slots(batch);
  decode_into(FrameDestinations{slots, dtype, batch.height, batch.width,
                                DecodeDevice{DeviceKind::kCUDA, fill.device_index}, consumer_stream});
  return batch;
}

}  // namespace lrs::cuda
