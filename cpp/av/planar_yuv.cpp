#include "av/planar_yuv.h"

#include <cstring>

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

#include "common/errors.h"

namespace lrs::av {

PlanarYuvLayout planar_yuv_layout(int width, int height, int bit_depth) {
  PlanarYuvLayout l;
  l.width = width;
  l.height = height;
  l.bit_depth = bit_depth;
  const int64_t bytes = bit_depth > 8 ? 2 : 1;
  l.luma_pitch = bytes * width;
  l.chroma_pitch = bytes * ((width + 1) / 2);
  l.chroma_height = (height + 1) / 2;
  l.cb_offset = l.luma_pitch * height;
  l.cr_offset = l.cb_offset + l.chroma_pitch * l.chroma_height;
  l.total_bytes = l.cr_offset + l.chroma_pitch * l.chroma_height;
  return l;
}

int planar_420_bit_depth(int pixel_format) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(pixel_format));
  if (d == nullptr || d->nb_components != 3 || d->log2_chroma_w != 1 || d->log2_chroma_h != 1) return 0;
  if ((d->flags & (AV_PIX_FMT_FLAG_PLANAR | AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_HWACCEL |
                   AV_PIX_FMT_FLAG_PAL)) != AV_PIX_FMT_FLAG_PLANAR) {
    return 0;
  }
  for (int c = 0; c < 3; ++c) {
    if (d->comp[c].plane != c || d->comp[c].shift != 0) return 0;  // Y, Cb, Cr each in its own plane
  }
  return d->comp[0].depth;
}

void pack_planar_yuv(const AVFrame* frame, const PlanarYuvLayout& layout, uint8_t* out, const std::string& path) {
  const int depth = planar_420_bit_depth(frame->format);
  if (depth == 0 || depth != layout.bit_depth || frame->width != layout.width || frame->height != layout.height) {
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format));
    throw InvalidInput(path + ": decoded picture is " + (name ? name : "unknown") + " " +
                       std::to_string(frame->width) + "x" + std::to_string(frame->height) + ", expected planar 4:2:0 " +
                       std::to_string(layout.bit_depth) + "-bit " + std::to_string(layout.width) + "x" +
                       std::to_string(layout.height) + " (did the stream change mid-file?)");
  }
  const auto copy_plane = [&](int plane, int64_t offset, int64_t row_bytes, int64_t rows) {
    const uint8_t* src = frame->data[plane];
    const int64_t stride = frame->linesize[plane];
    uint8_t* dst = out + offset;
    for (int64_t y = 0; y < rows; ++y) {
      std::memcpy(dst + y * row_bytes, src + y * stride, static_cast<size_t>(row_bytes));
    }
  };
  copy_plane(0, 0, layout.luma_pitch, layout.height);
  copy_plane(1, layout.cb_offset, layout.chroma_pitch, layout.chroma_height);
  copy_plane(2, layout.cr_offset, layout.chroma_pitch, layout.chroma_height);
}

}  // namespace lrs::av
