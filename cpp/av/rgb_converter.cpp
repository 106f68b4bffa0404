#include "av/rgb_converter.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "common/errors.h"

namespace lrs::av {

bool is_full_range(const AVFrame* frame) {
  if (frame->color_range == AVCOL_RANGE_JPEG) return true;
  switch (frame->format) {  // deprecated "J" formats imply full range
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
      return true;
    default:
      return false;
  }
}

void RgbConverter::convert(const AVFrame* frame, uint8_t* out, const std::string& path) {
  const int colorspace = frame->colorspace;
  const int full_range = is_full_range(frame) ? 1 : 0;
  if (!sws_ || src_format_ != frame->format || src_width_ != frame->width || src_height_ != frame->height ||
      colorspace_ != colorspace || full_range_ != full_range) {
    // Note [RGB conversion]: packed RGB24 first, then split into planes. swscale's planar GBRP
    // path interpolates chroma differently from its RGB24 path, and RGB24 is what LeRobot's
    // decoders (torchcodec, PyAV's to_ndarray("rgb24")) produce: matching them bit for bit is
    // worth one extra pass over the frame.
    sws_.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width,
                              frame->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_) {
      const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format));
      throw InvalidInput(path + ": cannot convert pixel format " + (name ? name : "unknown") + " to RGB");
    }
    // Note: sws_getCoefficients takes AVColorSpace values; unspecified falls back to BT.601.
    sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(colorspace), full_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    src_format_ = frame->format;
    src_width_ = frame->width;
    src_height_ = frame->height;
    colorspace_ = colorspace;
    full_range_ = full_range;
  }
  const int64_t plane = static_cast<int64_t>(frame->width) * frame->height;
  // swscale's SIMD converters write whole vectors: past the end of the last row when the width is
  // not a multiple of their step (heap overflow on odd widths without this slack).
  constexpr size_t kSimdSlack = 256;
  packed_rgb_.resize(static_cast<size_t>(3 * plane) + kSimdSlack);
  uint8_t* packed[4] = {packed_rgb_.data(), nullptr, nullptr, nullptr};
  int packed_stride[4] = {3 * frame->width, 0, 0, 0};
  sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, packed, packed_stride);
  uint8_t* r = out;
  uint8_t* g = out + plane;
  uint8_t* b = out + 2 * plane;
  const uint8_t* src = packed_rgb_.data();
  for (int64_t i = 0; i < plane; ++i) {
    r[i] = src[3 * i];
    g[i] = src[3 * i + 1];
    b[i] = src[3 * i + 2];
  }
}

}  // namespace lrs::av
