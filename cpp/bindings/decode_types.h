// Conversions of decode-layer types for Python: StreamInfo / DecoderStats / DecoderCacheStats to
// dicts, PixelType from its name, a VideoSource from a path or a ByteSource, and to_tensor, which hands a FrameBatch to torch as a DLPack
// tensor (nb::ndarray<nb::pytorch>, uint8 or float32) on the batch's device, without a copy: the
// ndarray's owner is a Python object that owns the batch, so the memory lives as long as the
// tensor. Shared by bind_decode.cpp (CPU), bind_stage.cpp and bind_cuda.cpp (CUDA).
// Needs the GIL (creates Python objects).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>

#include <map>
#include <string>

#include "av/byte_source.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs::bindings {

using FrameTensor = nanobind::ndarray<nanobind::pytorch, nanobind::ndim<4>, nanobind::c_contig>;

inline FrameTensor to_tensor(FrameBatch batch) {
  uint8_t* data = batch.data;
  const size_t shape[4] = {static_cast<size_t>(batch.num_frames), 3, static_cast<size_t>(batch.height),
                           static_cast<size_t>(batch.width)};
  const int32_t device_type = static_cast<int32_t>(batch.device);  // kDLCPU / kDLCUDA
  const int32_t device_id = batch.device_index;
  const nanobind::dlpack::dtype dtype =
      batch.dtype == PixelType::kFloat32 ? nanobind::dtype<float>() : nanobind::dtype<uint8_t>();
  nanobind::object owner = nanobind::cast(std::move(batch), nanobind::rv_policy::move);
  return FrameTensor(data, 4, shape, owner, nullptr, dtype, device_type, device_id);
}

// A path (str) or a ByteSource (an episode segment), as the Python side passes either.
inline VideoSource video_source_of(nanobind::handle obj) {
  if (nanobind::isinstance<nanobind::str>(obj)) return VideoSource(nanobind::cast<std::string>(obj));
  return VideoSource(nanobind::cast<std::shared_ptr<av::ByteSource>>(obj));
}

// "uint8" or "float32" (Note [Float frames]); anything else is a ValueError naming the choices.
inline PixelType pixel_type_from_name(const std::string& name) {
  if (name == "uint8") return PixelType::kUInt8;
  if (name == "float32") return PixelType::kFloat32;
  throw InvalidInput("dtype must be 'uint8' or 'float32', got '" + name + "'");
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
  d["keyframes_decoded"] = s.keyframes_decoded;
  d["frames_converted"] = s.frames_converted;
  d["frames_reused"] = s.frames_reused;
  d["frames_from_stash"] = s.frames_from_stash;
  d["frames_stashed"] = s.frames_stashed;
  d["frames_decoded_ahead"] = s.frames_decoded_ahead;
  d["seeks"] = s.seeks;
  d["flushes"] = s.flushes;
  d["forward_gop_skips"] = s.forward_gop_skips;
  d["packets_read"] = s.packets_read;
  d["decode_s"] = static_cast<double>(s.decode_ns) * 1e-9;
  d["keyframe_decode_s"] = static_cast<double>(s.keyframe_decode_ns) * 1e-9;
  d["convert_s"] = static_cast<double>(s.convert_ns) * 1e-9;
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
  d["decoder"] = decoder_stats_dict(s.decoder);
  return d;
}

}  // namespace lrs::bindings
