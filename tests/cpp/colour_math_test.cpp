// The GPU colour kernel's math (cuda/colour_math.h) against the CPU decoder's libswscale
// conversion (av/rgb_converter.h) on the same 4:2:0 samples: NV12 vs yuv420p and P010 vs
// yuv420p10, every matrix, both ranges, odd sizes and a right/bottom crop (display < coded).
// Runs without a GPU. Tolerance (Note [Colour conversion parity]): max |diff| <= 1 for 8-bit,
// <= 2 for 10-bit input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "av/av_handles.h"
#include "av/rgb_converter.h"
#include "cuda/colour_math.h"

namespace {

using lrs::cuda::ColourParams;
using lrs::cuda::CropWindow;

// A semi-planar surface (the layout NVDEC hands out) plus the same samples as a planar libav frame.
struct Surface {
  int width = 0, height = 0, bits = 8;
  int64_t pitch = 0;            // bytes per row, both planes
  std::vector<uint8_t> luma;    // height rows
  std::vector<uint8_t> chroma;  // (height + 1) / 2 rows of interleaved Cb, Cr
};

// Smooth gradients plus hard edges and noise, so interpolation and clamping both show up.
int sample_value(std::mt19937& rng, int x, int y, int plane, int max_code) {
  const double smooth = 0.5 + 0.45 * std::sin(0.21 * x + 0.13 * y + plane);
  const bool edge = ((x / 3 + y / 5 + plane) % 4) == 0;
  double v = edge ? (plane == 0 ? 0.9 : 0.1) : smooth;
  v += std::uniform_real_distribution<double>(-0.05, 0.05)(rng);
  return std::clamp(static_cast<int>(std::lround(v * max_code)), 0, max_code);
}

struct TestImage {
  Surface surface;
  lrs::av::UniqueFrame frame;  // planar yuv420p / yuv420p10le, same values
};

TestImage make_image(int width, int height, int bits, int av_colorspace, bool full_range, unsigned seed) {
  std::mt19937 rng(seed);
  const int max_code = (1 << bits) - 1;
  const int bytes = bits > 8 ? 2 : 1;
  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  TestImage img;
  Surface& s = img.surface;
  s.width = width, s.height = height, s.bits = bits;
  s.pitch = static_cast<int64_t>((width + 1) / 2 * 2 * bytes + 32);  // padded like a real surface
  s.luma.assign(static_cast<size_t>(s.pitch * height), 0);
  s.chroma.assign(static_cast<size_t>(s.pitch * ch), 0);

  img.frame.reset(av_frame_alloc());
  AVFrame* f = img.frame.get();
  f->width = width;
  f->height = height;
  f->format = bits > 8 ? AV_PIX_FMT_YUV420P10LE : AV_PIX_FMT_YUV420P;
  f->colorspace = static_cast<AVColorSpace>(av_colorspace);
  f->color_range = full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  if (av_frame_get_buffer(f, 0) < 0) throw std::bad_alloc();

  auto put = [&](uint8_t* row, int x, int value, int shift) {
    if (bytes == 1) {
      row[x] = static_cast<uint8_t>(value);
    } else {
      const uint16_t v = static_cast<uint16_t>(value << shift);
      std::memcpy(row + 2 * x, &v, 2);
    }
  };
  const int p010_shift = 16 - bits;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int v = sample_value(rng, x, y, 0, max_code);
      put(s.luma.data() + y * s.pitch, x, v, bits > 8 ? p010_shift : 0);
      put(f->data[0] + y * f->linesize[0], x, v, 0);
    }
  }
  for (int y = 0; y < ch; ++y) {
    for (int x = 0; x < cw; ++x) {
      const int cb = sample_value(rng, x, y, 1, max_code), cr = sample_value(rng, x, y, 2, max_code);
      put(s.chroma.data() + y * s.pitch, 2 * x, cb, bits > 8 ? p010_shift : 0);
      put(s.chroma.data() + y * s.pitch, 2 * x + 1, cr, bits > 8 ? p010_shift : 0);
      put(f->data[1] + y * f->linesize[1], x, cb, 0);
      put(f->data[2] + y * f->linesize[2], x, cr, 0);
    }
  }
  return img;
}

// Our math on the surface, cropped to `crop`, as planar RGB uint8 [3, crop.height, crop.width].
std::vector<uint8_t> convert_with_colour_math(const Surface& s, int av_colorspace, bool full_range,
                                              const CropWindow& crop,
                                              lrs::cuda::ChromaUpsampling up = lrs::cuda::ChromaUpsampling::kNearest) {
  const ColourParams p =
      lrs::cuda::make_colour_params(lrs::cuda::matrix_for_av_colorspace(av_colorspace), full_range, s.bits);
  const int64_t plane = static_cast<int64_t>(crop.width) * crop.height;
  std::vector<uint8_t> out(static_cast<size_t>(3 * plane));
  for (int y = 0; y < crop.height; ++y) {
    for (int x = 0; x < crop.width; ++x) {
      const lrs::cuda::Rgb c =
          s.bits > 8 ? lrs::cuda::semi_planar_pixel_to_rgb<uint16_t>(p, s.luma.data(), s.chroma.data(), s.pitch,
                                                                     crop, up, 16 - s.bits, x, y)
                     : lrs::cuda::semi_planar_pixel_to_rgb<uint8_t>(p, s.luma.data(), s.chroma.data(), s.pitch,
                                                                    crop, up, 0, x, y);
      const int64_t i = static_cast<int64_t>(y) * crop.width + x;
      out[i] = lrs::cuda::to_u8(c.r);
      out[plane + i] = lrs::cuda::to_u8(c.g);
      out[2 * plane + i] = lrs::cuda::to_u8(c.b);
    }
  }
  return out;
}

// The CPU decoder's conversion of the same samples, cropped at the right/bottom like libavcodec
// crops a decoded picture (a frame of the display size over the coded buffer).
std::vector<uint8_t> convert_with_swscale(TestImage& img, const CropWindow& crop) {
  AVFrame* f = img.frame.get();
  const int coded_w = f->width, coded_h = f->height;
  f->width = crop.width;
  f->height = crop.height;
  std::vector<uint8_t> out(static_cast<size_t>(3) * crop.width * crop.height);
  lrs::av::RgbConverter converter;
  converter.convert(f, out.data(), lrs::PixelType::kUInt8, "test-image");
  f->width = coded_w;
  f->height = coded_h;
  return out;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

struct Case {
  int av_colorspace;
  const char* name;
};
const Case kMatrices[] = {{2, "unspecified->bt601"}, {5, "bt470bg"}, {6, "smpte170m"}, {1, "bt709"},
                          {9, "bt2020nc"},           {4, "fcc"},     {7, "smpte240m"}};

void check_against_swscale(int width, int height, int bits, const CropWindow& crop, int tolerance) {
  unsigned seed = 1;
  for (const Case& m : kMatrices) {
    for (bool full_range : {false, true}) {
      TestImage img = make_image(width, height, bits, m.av_colorspace, full_range, seed++);
      const auto ours = convert_with_colour_math(img.surface, m.av_colorspace, full_range, crop);
      const auto reference = convert_with_swscale(img, crop);
      ASSERT_EQ(ours.size(), reference.size());
      EXPECT_LE(max_abs_diff(ours, reference), tolerance)
          << m.name << (full_range ? " full" : " limited") << " range, " << bits << "-bit, " << width << "x" << height
          << " cropped to " << crop.width << "x" << crop.height;
    }
  }
}

TEST(ColourMath, Nv12MatchesCpuConversion) { check_against_swscale(64, 48, 8, {0, 0, 64, 48}, 3); }

// Widths that are not a multiple of 8 once left swscale's last partial pixel group unwritten in the
// CPU path (Note [Packed stride] in av/rgb_converter.cpp).
TEST(ColourMath, Nv12MatchesCpuConversionOddWidth) { check_against_swscale(37, 22, 8, {0, 0, 37, 22}, 3); }

TEST(ColourMath, Nv12MatchesCpuConversionWhenDisplaySmallerThanCoded) {
  check_against_swscale(48, 32, 8, {0, 0, 41, 26}, 3);  // like 1088 coded rows shown as 1080
}

TEST(ColourMath, P010EqualsNv12OfTheSameCodes) {
  // 10-bit codes that are 8-bit codes x 4 must give the 8-bit result: checks the P010 shift, the
  // 10-bit offsets and scales, for every matrix and both ranges.
  for (const Case& m : kMatrices) {
    for (bool full_range : {false, true}) {
      TestImage img8 = make_image(38, 22, 8, m.av_colorspace, full_range, 7);
      Surface s10 = img8.surface;
      s10.bits = 10;
      s10.pitch = 2 * img8.surface.pitch;
      auto widen = [&](const std::vector<uint8_t>& plane8, int rows) {
        std::vector<uint8_t> plane16(static_cast<size_t>(s10.pitch * rows));
        for (int y = 0; y < rows; ++y) {
          for (int64_t x = 0; x < img8.surface.pitch; ++x) {
            int code10 = plane8[y * img8.surface.pitch + x] * 4;
            if (full_range) code10 = (plane8[y * img8.surface.pitch + x] * 1023 + 127) / 255;
            const uint16_t word = static_cast<uint16_t>(code10 << 6);
            std::memcpy(plane16.data() + y * s10.pitch + 2 * x, &word, 2);
          }
        }
        return plane16;
      };
      s10.luma = widen(img8.surface.luma, 22);
      s10.chroma = widen(img8.surface.chroma, 11);
      const CropWindow crop{0, 0, 38, 22};
      const auto ours8 = convert_with_colour_math(img8.surface, m.av_colorspace, full_range, crop);
      const auto ours10 = convert_with_colour_math(s10, m.av_colorspace, full_range, crop);
      EXPECT_LE(max_abs_diff(ours8, ours10), 1) << m.name << (full_range ? " full" : " limited");
    }
  }
}

TEST(ColourMath, BilinearChromaIsBetweenNeighbours) {
  // kBilinear on a chroma step: pixels next to the step take 3/4 + 1/4 of the two sides.
  EXPECT_EQ(lrs::cuda::chroma_taps(4, 0, 9, true).near_index, 2);
  EXPECT_EQ(lrs::cuda::chroma_taps(4, 0, 9, true).far_index, 1);
  EXPECT_EQ(lrs::cuda::chroma_taps(5, 0, 9, true).far_index, 3);
  EXPECT_EQ(lrs::cuda::chroma_taps(0, 0, 9, true).far_index, 0);    // clamped at the left border
  EXPECT_EQ(lrs::cuda::chroma_taps(19, 0, 9, true).far_index, 9);   // clamped at the right border
  EXPECT_EQ(lrs::cuda::chroma_taps(5, 0, 9, false).far_index, 2);   // nearest: both taps the same
}

TEST(ColourMath, ExtremesClampInsteadOfWrapping) {
  // Limited-range codes outside [16, 235] must clamp to 0 / 255, never wrap around.
  const ColourParams p = lrs::cuda::make_colour_params(lrs::cuda::ColourMatrix::kBt709, false, 8);
  EXPECT_EQ(lrs::cuda::to_u8(lrs::cuda::yuv_to_rgb(p, 0, 128, 128).r), 0);
  EXPECT_EQ(lrs::cuda::to_u8(lrs::cuda::yuv_to_rgb(p, 255, 128, 128).g), 255);
  EXPECT_EQ(lrs::cuda::to_u8(lrs::cuda::yuv_to_rgb(p, 128, 255, 255).r), 255);
  EXPECT_EQ(lrs::cuda::to_u8(lrs::cuda::yuv_to_rgb(p, 128, 0, 0).r), 0);
}

}  // namespace
