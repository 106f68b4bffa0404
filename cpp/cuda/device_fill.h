// What the CUDA backends (NVDEC, cpu->cuda) share around the one batch-fill loop
// (decode/batch_fill.h): decode_into over the GPU's memory (each distinct frame converted once by the
// backend, repeats copied device-to-device, the work handed to the caller's stream) and
// get_frames_at's new batch from the device pool, filled through that decode_into.
// Owns nothing; the functions use the caller's stream and event, which (like the decoder) one thread
// uses at a time. The backend's context must be current.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "cuda/colour_kernel.h"
#include "cuda/cuda_api.h"
#include "cuda/cuda_context.h"
#include "decode/video_decoder.h"

namespace lrs::av {
class FrameTable;
}

namespace lrs::cuda {

// Converts `frame` (an index into the frame table) into `out`, ordered on the backend's stream.
using ConvertFrame = std::function<void(int64_t frame, CUdeviceptr out, OutputType type)>;

struct DeviceFill {
  const av::FrameTable& table;
  const StreamInfo& info;
  const std::string& path;
  int device_index;
  CUstream stream;  // the backend's own: conversions and repeat copies are ordered on it
  CUevent done;     // recorded after the batch; `out.cuda_stream` waits on it (Note [Stream handoff])
};

// decode_into for a CUDA backend: prepare_fill (destinations on this GPU), then Note [Batch fill]
// with `convert` and device-to-device copies; the caller's stream waits for the work, the host does
// not. Adds to stats' frames_requested and frames_reused (the backend counts what it converts).
void fill_on_device(const DeviceFill& fill, std::span<const double> timestamps_s, double tolerance_s,
                    const FrameDestinations& out, DecoderStats& stats, const ConvertFrame& convert);

// get_frames_at for a CUDA backend: a new batch of `dtype` from `pool`, allocated on the backend's
// stream and freed on `consumer_stream` (Note [Device buffer pool]), filled by `decode_into` with
// destinations handed to `consumer_stream`.
FrameBatch frames_on_device(const DeviceFill& fill, DevicePool& pool, size_t num_frames, PixelType dtype,
                            uintptr_t consumer_stream,
                            const std::function<void(const FrameDestinations&)>& decode_into);

}  // namespace lrs::cuda
