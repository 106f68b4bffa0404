// YUV 4:2:0 (NV12 / P010) -> RGB colour math, shared by the CUDA kernel (nv12_to_rgb.cu) and its
// CPU test (tests/cpp/colour_math_test.cpp, which checks it against libswscale). Plain functions
// and one small parameter struct; no CUDA headers needed, so g++ compiles it too.
// Owns nothing; thread-safe (pure functions).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LRS_HD __host__ __device__ __forceinline__
#else
#define LRS_HD inline
#endif

namespace lrs::cuda {

// Note [Colour conversion parity]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// GPU frames must equal the CPU decoder's frames (libswscale, SWS_BILINEAR, yuv420p -> GBRP with
// the stream's matrix and range) within max |diff| <= 2 on uint8. So this math follows what
// libswscale computes, in float instead of its fixed point:
//  * Matrix from (Kr, Kb) exactly as sws_getCoefficients picks it from the AVColorSpace value:
//    1 BT.709, 4 FCC, 7 SMPTE 240M, 9/10 BT.2020, everything else (incl. unspecified) BT.601.
//  * Limited range: Y in [16, 235], C in [16, 240] (x 2^(bits-8)); full range: Y / (2^bits - 1),
//    C - 2^(bits-1) over (2^bits - 1) (JPEG convention, what libswscale does).
//  * Chroma upsampling: libswscale treats 4:2:0 chroma as centre-sited in both directions and
//    interpolates bilinearly, i.e. each output pixel takes 3/4 of its own chroma sample and 1/4 of
//    the neighbour on the side it lies, clamped at the borders.
// P010/P016 samples are 16-bit words with the value in the high bits: we use value >> (16 - bits).
// Crop: output pixel (x, y) reads luma (x + crop.left, y + crop.top) on the coded surface's chroma
// grid; chroma neighbours are clamped to the crop window, as libswscale clamps at the borders of
// the (already cropped) frame libavcodec returns.
// colour_math_test measures the result against libswscale: max |diff| <= 1 for 8-bit input (the
// rounding of swscale's fixed point), <= 2 for 10-bit input, for every matrix and both ranges.

enum class ColourMatrix : int { kBt601 = 0, kBt709 = 1, kFcc = 2, kSmpte240m = 3, kBt2020 = 4 };

// sws_getCoefficients' choice for an AVColorSpace value (see the Note).
LRS_HD ColourMatrix matrix_for_av_colorspace(int av_colorspace) {
  switch (av_colorspace) {
    case 1:
      return ColourMatrix::kBt709;
    case 4:
      return ColourMatrix::kFcc;
    case 7:
      return ColourMatrix::kSmpte240m;
    case 9:
    case 10:
      return ColourMatrix::kBt2020;
    default:
      return ColourMatrix::kBt601;
  }
}

// Linear map from integer Y/Cb/Cr codes to RGB in [0, 1] (before clamping):
//   l = (Y - y_offset) * y_scale,  u = (Cb - c_offset) * c_scale,  v = (Cr - c_offset) * c_scale
//   R = l + r_v * v,   G = l - g_u * u - g_v * v,   B = l + b_u * u
struct ColourParams {
  float y_offset;
  float y_scale;
  float c_offset;
  float c_scale;
  float r_v;
  float g_u;
  float g_v;
  float b_u;
};

LRS_HD ColourParams make_colour_params(ColourMatrix matrix, bool full_range, int bit_depth) {
  float kr = 0.299f, kb = 0.114f;  // BT.601
  switch (matrix) {
    case ColourMatrix::kBt709:
      kr = 0.2126f, kb = 0.0722f;
      break;
    case ColourMatrix::kFcc:
      kr = 0.30f, kb = 0.11f;
      break;
    case ColourMatrix::kSmpte240m:
      kr = 0.212f, kb = 0.087f;
      break;
    case ColourMatrix::kBt2020:
      kr = 0.2627f, kb = 0.0593f;
      break;
    case ColourMatrix::kBt601:
      break;
  }
  const float kg = 1.0f - kr - kb;
  const float unit = static_cast<float>(1 << (bit_depth - 8));  // 1 for 8-bit, 4 for 10-bit
  ColourParams p{};
  if (full_range) {
    const float max_code = static_cast<float>((1 << bit_depth) - 1);
    p.y_offset = 0.0f;
    p.y_scale = 1.0f / max_code;
    p.c_offset = 128.0f * unit;
    p.c_scale = 1.0f / max_code;
  } else {
    p.y_offset = 16.0f * unit;
    p.y_scale = 1.0f / (219.0f * unit);
    p.c_offset = 128.0f * unit;
    p.c_scale = 1.0f / (224.0f * unit);
  }
  p.r_v = 2.0f * (1.0f - kr);
  p.b_u = 2.0f * (1.0f - kb);
  p.g_u = 2.0f * kb * (1.0f - kb) / kg;
  p.g_v = 2.0f * kr * (1.0f - kr) / kg;
  return p;
}

struct Rgb {
  float r, g, b;  // [0, 1] after clamping
};

LRS_HD float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

LRS_HD Rgb yuv_to_rgb(const ColourParams& p, float y, float cb, float cr) {
  const float l = (y - p.y_offset) * p.y_scale;
  const float u = (cb - p.c_offset) * p.c_scale;
  const float v = (cr - p.c_offset) * p.c_scale;
  return Rgb{clamp01(l + p.r_v * v), clamp01(l - p.g_u * u - p.g_v * v), clamp01(l + p.b_u * u)};
}

LRS_HD uint8_t to_u8(float x01) { return static_cast<uint8_t>(x01 * 255.0f + 0.5f); }

// Centre-sited bilinear 2x upsampling along one axis: the two chroma indices contributing to
// luma coordinate `x` (weight 3/4 on `near`, 1/4 on `far`), clamped to [lo, hi].
struct ChromaTaps {
  int near_index;
  int far_index;
};

LRS_HD ChromaTaps chroma_taps(int x, int lo, int hi) {
  const int near_index = x >> 1;
  int far_index = (x & 1) ? near_index + 1 : near_index - 1;
  if (far_index < lo) far_index = lo;
  if (far_index > hi) far_index = hi;
  return ChromaTaps{near_index, far_index};
}

// The visible part of a decoded surface: libav hands the CPU path a frame of exactly this size,
// so chroma interpolation clamps at its borders, not at the coded surface's.
struct CropWindow {
  int left;
  int top;
  int width;
  int height;
};

// One sample of a semi-planar 4:2:0 surface. `Sample` is uint8_t (NV12) or uint16_t (P010/P016,
// value in the high bits, `shift` = 16 - bits). Pitches are in bytes. Chroma rows: Cb, Cr pairs.
template <typename Sample>
LRS_HD float load_sample(const uint8_t* plane, int64_t pitch, int x, int y, int shift) {
  const Sample* row = reinterpret_cast<const Sample*>(plane + y * pitch);
  return static_cast<float>(static_cast<int>(row[x]) >> shift);
}

// RGB of output pixel (ox, oy) of the crop window (0 <= ox < crop.width, 0 <= oy < crop.height).
template <typename Sample>
LRS_HD Rgb semi_planar_pixel_to_rgb(const ColourParams& p, const uint8_t* luma, const uint8_t* chroma, int64_t pitch,
                                    const CropWindow& crop, int shift, int ox, int oy) {
  const int x = ox + crop.left;
  const int y = oy + crop.top;
  const ChromaTaps tx = chroma_taps(x, crop.left >> 1, (crop.left + crop.width - 1) >> 1);
  const ChromaTaps ty = chroma_taps(y, crop.top >> 1, (crop.top + crop.height - 1) >> 1);
  const int rows[2] = {ty.near_index, ty.far_index};
  const int cols[2] = {tx.near_index, tx.far_index};
  const float weights[2] = {0.75f, 0.25f};
  float cb = 0.0f, cr = 0.0f;
  for (int j = 0; j < 2; ++j) {
    for (int i = 0; i < 2; ++i) {
      const float w = weights[j] * weights[i];
      cb += w * load_sample<Sample>(chroma, pitch, 2 * cols[i], rows[j], shift);
      cr += w * load_sample<Sample>(chroma, pitch, 2 * cols[i] + 1, rows[j], shift);
    }
  }
  const float yv = load_sample<Sample>(luma, pitch, x, y, shift);
  return yuv_to_rgb(p, yv, cb, cr);
}

}  // namespace lrs::cuda
