#include "av/rgb_converter.h"

#include <stdexcept>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "av/planar_pack.h"
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

void RgbConverter::convert(const AVFrame* frame, uint8_t* out, PixelType dtype, const std::string& path) {
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
  // Note [Packed stride]: swscale's x86 RGB24 converters work on 8-pixel groups and, when the
  // rounded-up row (width + 7) & ~7 does not fit the destination stride, silently skip the last
  // partial group (FFmpeg 5.1 yuv2rgb: "if (h_size * depth > dstStride) h_size -= 8"), leaving up to
  // 7 columns unwritten on widths that are not a multiple of 8. A stride with room for a 16-pixel
  // rounded row (64-byte aligned, as libav's own frames have) makes every column convert.
  const int width = frame->width;
  const int height = frame->height;
  const int stride = (3 * ((width + 15) & ~15) + 63) & ~63;
  constexpr size_t kSimdSlack = 256;  // vector stores may also run past the last row's end
  packed_rgb_.resize(static_cast<size_t>(stride) * static_cast<size_t>(height) + kSimdSlack);
  uint8_t* packed[4] = {packed_rgb_.data(), nullptr, nullptr, nullptr};
  int packed_stride[4] = {stride, 0, 0, 0};
  sws_scale(sws_.get(), frame->data, frame->linesize, 0, height, packed, packed_stride);
  packed_stride_ = stride;
  repeat_last(out, dtype);
}

// Note [Repeated frames]
// ~~~~~~~~~~~~~~~~~~~~~~
// A window clamped at an episode edge, or SARM's rewind steps, ask for one frame several times in a
// batch (Note [Batch fill]). The packed RGB24 frame is still here when the repeats come (they follow
// their frame's decode), and splitting it again reads 0.9 MB and writes the output once, where
// copying the first output reads and writes it: for float32 3.7 MB each way. About a third of SARM's
// requested frames are repeats; on such requests the copies took 4.2 % of the CPU, the splits that
// replace them 2.2 % (perf, float32). The values are the split's own.
void RgbConverter::repeat_last(uint8_t* out, PixelType dtype) const {
  if (packed_stride_ == 0) throw std::logic_error("RgbConverter::repeat_last before any convert");
  const int width = src_width_;
  const int height = src_height_;
  const int64_t plane = static_cast<int64_t>(width) * height;
  // One pass from the packed rows to the planes, in the output's type (Note [Float frames]).
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = packed_rgb_.data() + static_cast<ptrdiff_t>(y) * packed_stride_;
    const int64_t row = static_cast<int64_t>(y) * width;
    if (dtype == PixelType::kFloat32) {
      float* planes = reinterpret_cast<float*>(out);
      unpack_rgb24_row(src, width, planes + row, planes + plane + row, planes + 2 * plane + row);
    } else {
      unpack_rgb24_row(src, width, out + row, out + plane + row, out + 2 * plane + row);
    }
  }
}

}  // namespace lrs::av
