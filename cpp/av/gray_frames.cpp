#include "av/gray_frames.h"

#include <algorithm>
#include <cstring>
#include <vector>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "common/errors.h"
#include "decode/batch_fill.h"
#include "decode/host_buffer.h"

namespace lrs::av {

void Gray12Converter::convert(const AVFrame& frame, int16_t* out, const std::string& path) {
  const int width = frame.width;
  const int height = frame.height;
  if (frame.format == AV_PIX_FMT_GRAY12LE) {  // the codec's plane as is (little-endian host)
    for (int y = 0; y < height; ++y) {
      std::memcpy(out + static_cast<int64_t>(y) * width, frame.data[0] + static_cast<ptrdiff_t>(y) * frame.linesize[0],
                  static_cast<size_t>(width) * sizeof(int16_t));
    }
    return;
  }
  if (!sws_ || src_format_ != frame.format || src_width_ != width || src_height_ != height) {
    sws_.reset(sws_getContext(width, height, static_cast<AVPixelFormat>(frame.format), width, height,
                              AV_PIX_FMT_GRAY12LE, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_) {
      const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame.format));
      throw InvalidInput(path + ": cannot convert pixel format " + (name ? name : "unknown") +
                         " to 12-bit gray (depth map)");
    }
    src_format_ = frame.format;
    src_width_ = width;
    src_height_ = height;
  }
  // swscale may write whole SIMD groups past a tight row: convert into a padded staging buffer.
  const int stride = (2 * ((width + 31) & ~31) + 63) & ~63;
  staging_.resize(static_cast<size_t>(stride) * static_cast<size_t>(height) + 256);  // kept between frames
  uint8_t* dst[4] = {staging_.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  sws_scale(sws_.get(), frame.data, frame.linesize, 0, height, dst, dst_stride);
  for (int y = 0; y < height; ++y) {
    std::memcpy(out + static_cast<int64_t>(y) * width, staging_.data() + static_cast<ptrdiff_t>(y) * stride,
                static_cast<size_t>(width) * sizeof(int16_t));
  }
}

GrayBatch get_gray12_frames_at(CpuVideoDecoder& decoder, std::span<const double> timestamps_s,
                               double tolerance_s) {
  const StreamInfo& info = decoder.info();
  if (!(tolerance_s > 0)) {
    throw InvalidInput(info.path + ": tolerance_s must be > 0, got " + std::to_string(tolerance_s));
  }
  std::vector<int64_t> wanted(timestamps_s.size());
  for (size_t i = 0; i < timestamps_s.size(); ++i) wanted[i] = decoder.frame_index_at(timestamps_s[i], tolerance_s);

  GrayBatch batch;
  batch.num_frames = static_cast<int64_t>(wanted.size());
  batch.height = info.height;
  batch.width = info.width;
  const int64_t frame_values = batch.frame_values();
  auto storage = allocate_host_bytes(static_cast<size_t>(batch.num_frames * frame_values) * sizeof(int16_t));
  batch.data = reinterpret_cast<int16_t*>(storage.get());
  batch.owner = std::move(storage);

  Gray12Converter converter;
  const auto slot_data = [&](size_t slot) { return batch.data + static_cast<int64_t>(slot) * frame_values; };
  fill_in_presentation_order(
      wanted,
      [&](int64_t frame_index, size_t slot) {
        const AVFrame& frame = decoder.decode_frame(frame_index);
        if (frame.width != info.width || frame.height != info.height) {
          throw InvalidInput(info.path + ": frame size changed mid-stream (" + std::to_string(frame.width) + "x" +
                             std::to_string(frame.height) + ", stream header says " +
                             std::to_string(info.width) + "x" + std::to_string(info.height) + ")");
        }
        converter.convert(frame, slot_data(slot), info.path);
      },
      [&](size_t from, size_t to) { std::copy_n(slot_data(from), frame_values, slot_data(to)); });
  return batch;
}

}  // namespace lrs::av
