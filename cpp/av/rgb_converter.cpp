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
    sws_.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width,
                              frame->height, AV_PIX_FMT_GBRP, SWS_BILINEAR, nullptr, nullptr, nullptr));
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
  // GBRP plane order is G, B, R; our CHW batch is R, G, B.
  uint8_t* planes[4] = {out + plane, out + 2 * plane, out, nullptr};
  int strides[4] = {frame->width, frame->width, frame->width, 0};
  sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, planes, strides);
}

}  // namespace lrs::av
