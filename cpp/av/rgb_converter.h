// RgbConverter: converts decoded libav frames (any YUV/RGB software format) to planar RGB [3, H, W],
// uint8 or float32 in [0, 1] (Note [Float frames] in decode/video_decoder.h), with libswscale (via
// packed RGB24, split into planes by av/planar_pack.h), using the frame's own colour matrix and
// range. This is the CPU decoder's conversion and the reference the GPU kernel is tested against
// (see Note [Colour conversion parity] in cuda/colour_math.h).
//
// Owns one SwsContext, rebuilt when the input format, size, matrix or range changes. Not
// thread-safe: one caller at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "av/av_handles.h"
#include "decode/video_decoder.h"

namespace lrs::av {

class RgbConverter {
 public:
  // Writes R, G, B planes of frame->width x frame->height values of `dtype` each to `out`. Throws
  // InvalidInput naming `path` when the pixel format cannot be converted.
  void convert(const AVFrame* frame, uint8_t* out, PixelType dtype, const std::string& path);

  // Writes the last converted frame again to `out` (a repeated request: Note [Repeated frames]).
  // Requires an earlier convert() of this object; `dtype` may differ from that call's.
  void repeat_last(uint8_t* out, PixelType dtype) const;

  // AVColorSpace of the last converted frame (-1 before the first).
  int last_colorspace() const { return colorspace_; }

 private:
  UniqueSwsContext sws_;
  std::vector<uint8_t> packed_rgb_;  // RGB24 staging for one frame (Note [RGB conversion])
  int packed_stride_ = 0;            // bytes per row of packed_rgb_; 0 before the first convert()
  int src_format_ = -1;
  int src_width_ = 0;
  int src_height_ = 0;
  int colorspace_ = -1;
  int full_range_ = -1;
};

// True when the frame's samples are full range ("pc"/JPEG), including the deprecated J formats.
bool is_full_range(const AVFrame* frame);

}  // namespace lrs::av
