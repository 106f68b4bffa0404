// YUV 4:2:0 (semi-planar NV12 / P010 from NVDEC, planar I420 / yuv420p10 from dav1d in the hybrid
// path) -> RGB colour math, shared by the CUDA kernels (nv12_to_rgb.cu) and their CPU tests
// (tests/cpp/colour_math_test.cpp and hybrid_host_test.cpp, which check it against libswscale).
// Plain functions and one small parameter struct; no CUDA headers needed, so g++ compiles it too.
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
// GPU frames must equal the CPU decoder's frames within a small, stated tolerance. The CPU
// decoder converts with libswscale (av/rgb_converter.h: SWS_BILINEAR, yuv420p -> RGB24, split to
// planes, Note [RGB conversion]). This math follows what libswscale computes, in float instead of
// its fixed point:
//  * Matrix from (Kr, Kb) exactly as sws_getCoefficients picks it from the AVColorSpace value:
//    1 BT.709, 4 FCC, 7 SMPTE 240M, 9/10 BT.2020, everything else (incl. unspecified) BT.601.
//  * Limited range: Y in [16, 235], C in [16, 240] (x 2^(bits-8)); full range: Y / (2^bits - 1),
//    C - 2^(bits-1) over (2^bits - 1) (JPEG convention, what libswscale does).
//  * Chroma upsampling: for 4:2:0 8-bit frames of even height swscale's RGB24 path is its
//    unscaled converter, which replicates each chroma sample over its 2x2 block (kNearest).
//    Its planar GBRP path instead interpolates centre-sited bilinear (kBilinear: 3/4 own sample,
//    1/4 neighbour, clamped at the borders); kept for a CPU path that converts that way.
//  * P010/P016 samples are 16-bit words with the value in the high bits: value >> (16 - bits).
// Measured by colour_math_test against RgbConverter: max |diff| <= 3 on uint8 for 8-bit frames of
// even height (swscale's fixed point rounds differently), every matrix, both ranges, crops.
// Not matched: frames of odd height and 10-bit frames, which swscale sends through its generic
// scaler (different chroma filtering); for those the CPU and GPU paths can differ near chroma
// edges. A GPU session must measure real streams; the fix is to make the CPU path convert the
// same way (or to carry swscale's exact filter here).

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

// Float output is the uint8 value / 255 (IEEE division), as the CPU path's float32 frames are its
// uint8 frames / 255 (lerobot's rule): a float frame always equals the uint8 frame of the same
// decode, exactly, on either device.
LRS_HD float to_unit_float(float x01) { return static_cast<float>(to_u8(x01)) / 255.0f; }

// How 4:2:0 chroma is brought to luma resolution (see Note [Colour conversion parity]).
enum class ChromaUpsampling : int {
  kNearest = 0,   // each chroma sample covers its 2x2 luma block (swscale's yuv420p -> RGB24 path)
  kBilinear = 1,  // centre-sited bilinear in both directions (swscale's planar GBRP path)
};

// Centre-sited bilinear 2x upsampling along one axis: the two chroma indices contributing to
// luma coordinate `x` (weight 3/4 on `near`, 1/4 on `far`), clamped to [lo, hi].
// With `interpolate` false both taps are the near sample (nearest-neighbour replication).
struct ChromaTaps {
  int near_index;
  int far_index;
};

LRS_HD ChromaTaps chroma_taps(int x, int lo, int hi, bool interpolate) {
  const int near_index = x >> 1;
  if (!interpolate) return ChromaTaps{near_index, near_index};
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

// One sample of a 4:2:0 plane. `Sample` is uint8_t (8-bit) or uint16_t (16-bit words: P010/P016 with
// the value in the high bits, `shift` = 16 - bits; planar yuv420p10le with it in the low bits,
// `shift` = 0). Pitches are in bytes.
template <typename Sample>
LRS_HD float load_sample(const uint8_t* plane, int64_t pitch, int x, int y, int shift) {
  const Sample* row = reinterpret_cast<const Sample*>(plane + y * pitch);
  return static_cast<float>(static_cast<int>(row[x]) >> shift);
}

// Cb and Cr at output pixel (ox, oy) of the crop window, upsampled as `up` says; `cb_at(cx, cy)` and
// `cr_at(cx, cy)` read one chroma sample. Shared by the semi-planar (NVDEC) and planar (hybrid)
// layouts, so both convert identically.
template <typename CbAt, typename CrAt>
LRS_HD void upsampled_chroma(const CropWindow& crop, ChromaUpsampling up, int x, int y, CbAt cb_at, CrAt cr_at,
                             float& cb, float& cr) {
  const ChromaTaps tx = chroma_taps(x, crop.left >> 1, (crop.left + crop.width - 1) >> 1,
                                    up == ChromaUpsampling::kBilinear);
  const ChromaTaps ty = chroma_taps(y, crop.top >> 1, (crop.top + crop.height - 1) >> 1,
                                    up == ChromaUpsampling::kBilinear);
  const int rows[2] = {ty.near_index, ty.far_index};
  const int cols[2] = {tx.near_index, tx.far_index};
  const float weights[2] = {0.75f, 0.25f};
  cb = 0.0f, cr = 0.0f;
  for (int j = 0; j < 2; ++j) {
    for (int i = 0; i < 2; ++i) {
      const float w = weights[j] * weights[i];
      cb += w * cb_at(cols[i], rows[j]);
      cr += w * cr_at(cols[i], rows[j]);
    }
  }
}

// RGB of output pixel (ox, oy) of the crop window (0 <= ox < crop.width, 0 <= oy < crop.height) of a
// semi-planar surface (NV12 / P010 as NVDEC maps it): chroma rows hold Cb, Cr pairs.
template <typename Sample>
LRS_HD Rgb semi_planar_pixel_to_rgb(const ColourParams& p, const uint8_t* luma, const uint8_t* chroma, int64_t pitch,
                                    const CropWindow& crop, ChromaUpsampling up, int shift, int ox, int oy) {
  const int x = ox + crop.left;
  const int y = oy + crop.top;
  float cb = 0.0f, cr = 0.0f;
  upsampled_chroma(
      crop, up, x, y, [&](int cx, int cy) { return load_sample<Sample>(chroma, pitch, 2 * cx, cy, shift); },
      [&](int cx, int cy) { return load_sample<Sample>(chroma, pitch, 2 * cx + 1, cy, shift); }, cb, cr);
  return yuv_to_rgb(p, load_sample<Sample>(luma, pitch, x, y, shift), cb, cr);
}

// A planar 4:2:0 picture (I420 / yuv420p10le, what dav1d decodes to), as the hybrid path stages it.
struct PlanarYuv {
  const uint8_t* y;
  const uint8_t* cb;
  const uint8_t* cr;
  int64_t luma_pitch;    // bytes per luma row
  int64_t chroma_pitch;  // bytes per Cb / Cr row
};

// RGB of output pixel (ox, oy) of the crop window of a planar picture (see semi_planar_pixel_to_rgb).
template <typename Sample>
LRS_HD Rgb planar_pixel_to_rgb(const ColourParams& p, const PlanarYuv& src, const CropWindow& crop,
                               ChromaUpsampling up, int shift, int ox, int oy) {
  const int x = ox + crop.left;
  const int y = oy + crop.top;
  float cb = 0.0f, cr = 0.0f;
  upsampled_chroma(
      crop, up, x, y, [&](int cx, int cy) { return load_sample<Sample>(src.cb, src.chroma_pitch, cx, cy, shift); },
      [&](int cx, int cy) { return load_sample<Sample>(src.cr, src.chroma_pitch, cx, cy, shift); }, cb, cr);
  return yuv_to_rgb(p, load_sample<Sample>(src.y, src.luma_pitch, x, y, shift), cb, cr);
}

}  // namespace lrs::cuda
