// Conversions of decode-layer types for Python: StreamInfo / DecoderStats / DecoderCacheStats to
// dicts, and
// to_tensor, which hands a FrameBatch to torch as a DLPack tensor (nb::ndarray<nb::pytorch>) on the batch's device,
// without a copy: the ndarray's owner is a Python object that owns the batch, so the memory lives
// as long as the tensor. Shared by bind_decode.cpp (CPU), bind_stage.cpp and bind_cuda.cpp (CUDA).
// Needs the GIL (creates Python objects).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <map>
#include <string>

#include "decode/decoder_cache.h"
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

inline nanobind::dict counts_dict(const std::map<std::string, int64_t>& counts) {
  nanobind::dict d;
  for (const auto& [name, n] : counts) d[name.c_str()] = n;
  return d;
}

inline nanobind::dict cache_stats_dict(const DecoderCacheStats& s) {
  nanobind::dict d;
  d["hits"] = s.hits;
  d["misses"] = s.misses;
  d["evictions"] = s.evictions;
  d["open_decoders"] = s.open_decoders;
  d["capacity"] = s.capacity;
  d["bytes"] = s.bytes;
  d["max_bytes"] = s.max_bytes;
  d["opened_by_backend"] = counts_dict(s.opened_by_backend);
  nanobind::list notes;
  for (const std::string& note : s.backend_notes) notes.append(note);
  d["backend_notes"] = notes;
  return d;
}

}  // namespace lrs::bindings
