#include "decode/video_decoder.h"

#include "decode/host_buffer.h"

namespace lrs {

const char* pixel_type_name(PixelType type) { return type == PixelType::kFloat32 ? "float32" : "uint8"; }

std::string DecodeDevice::str() const { return kind == DeviceKind::kCPU ? "cpu" : "cuda:" + std::to_string(index); }

namespace {

template <typename Op>
void each_counter(DecoderStats& a, const DecoderStats& b, Op op) {
  op(a.frames_requested, b.frames_requested);
  op(a.frames_decoded, b.frames_decoded);
  op(a.keyframes_decoded, b.keyframes_decoded);
  op(a.frames_converted, b.frames_converted);
  op(a.frames_reused, b.frames_reused);
  op(a.frames_from_stash, b.frames_from_stash);
  op(a.frames_stashed, b.frames_stashed);
  op(a.frames_decoded_ahead, b.frames_decoded_ahead);
  op(a.seeks, b.seeks);
  op(a.flushes, b.flushes);
  op(a.forward_gop_skips, b.forward_gop_skips);
  op(a.packets_read, b.packets_read);
  op(a.decode_ns, b.decode_ns);
  op(a.keyframe_decode_ns, b.keyframe_decode_ns);
  op(a.convert_ns, b.convert_ns);
}

}  // namespace

DecoderStats& DecoderStats::operator+=(const DecoderStats& o) {
  each_counter(*this, o, [](int64_t& a, int64_t b) { a += b; });
  return *this;
}

DecoderStats& DecoderStats::operator-=(const DecoderStats& o) {
  each_counter(*this, o, [](int64_t& a, int64_t b) { a -= b; });
  return *this;
}

std::vector<uint8_t*> frame_slots(const FrameBatch& batch) {
  std::vector<uint8_t*> slots(static_cast<size_t>(batch.num_frames));
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = batch.data + static_cast<int64_t>(i) * batch.frame_bytes();
  return slots;
}

FrameBatch VideoDecoder::get_frames_at(std::span<const double> timestamps_s, double tolerance_s, PixelType dtype) {
  FrameBatch batch;
  batch.num_frames = static_cast<int64_t>(timestamps_s.size());
  batch.height = info().height;
  batch.width = info().width;
  batch.dtype = dtype;
  auto storage = allocate_host_bytes(static_cast<size_t>(batch.size_bytes()));
  batch.data = storage.get();
  batch.owner = std::move(storage);
  const std::vector<uint8_t*> slots = frame_slots(batch);
  decode_into(timestamps_s, tolerance_s, FrameDestinations{slots, dtype, batch.height, batch.width});
  return batch;
}

}  // namespace lrs
