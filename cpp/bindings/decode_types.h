// Conversions of decode-layer types for Python: StreamInfo / DecoderStats to dicts, and
// to_tensor, which hands a FrameBatch to torch as a DLPack tensor (nb::ndarray<nb::pytorch>) on the batch's device,
// without a copy: the ndarray's owner is a Python object that owns the batch, so the memory lives
// as long as the tensor. Shared by bind_decode.cpp (CPU) and bind_cuda.cpp (CUDA).
// Needs the GIL (creates Python objects).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include "decode/video_decoder.h"

namespace lrs::bindings {

using FrameTensor = nanobind::ndarray<nanobind::pytorch, uint8_t, nanobind::ndim<4>, nanobind::c_contig>;

inline FrameTensor to_tensor(FrameBatch batch) {
  uint8_t* data = batch.data;
  const size_t shape[4] = {static_cast<size_t>(batch.num_frames), 3, static_cast<size_t>(batch.height),
                           static_cast<size_t>(batch.width)};
  const int32_t device_type = static_cast<int32_t>(batch.device);  // kDLCPU / kDLCUDA
  const int32_t device_id = batch.device_index;
  nanobind::object owner = nanobind::cast(std::move(batch), nanobind::rv_policy::move);
  return FrameTensor(data, 4, shape, owner, nullptr, nanobind::dtype<uint8_t>(), device_type, device_id);
}

inline nanobind::dict stream_info_dict(const StreamInfo& info) {
  nanobind::dict d;
  d["path"] = info.path;
  d["codec"] = info.codec;
  d["pixel_format"] = info.pixel_format;
  d["color_space"] = info.color_space;
  d["color_range"] = info.color_range;
  d["width"] = info.width;
  d["height"] = info.height;
  d["fps"] = info.fps;
  d["num_frames"] = info.num_frames;
  d["num_keyframes"] = info.num_keyframes;
  d["duration_s"] = info.duration_s;
  return d;
}

inline nanobind::dict decoder_stats_dict(const DecoderStats& s) {
  nanobind::dict d;
  d["frames_requested"] = s.frames_requested;
  d["frames_decoded"] = s.frames_decoded;
  d["seeks"] = s.seeks;
  d["packets_read"] = s.packets_read;
  return d;
}

}  // namespace lrs::bindings
