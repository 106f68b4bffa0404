// The CPU half of the hybrid cpu->cuda path (Note [Hybrid path] in cuda/hybrid_decoder.h), which runs
// here without a GPU: a picture decoded by CpuVideoDecoder::decode_frame (dav1d for AV1), packed
// into the planar staging layout (av/planar_yuv.h) and converted with the colour math the GPU kernel
// runs (cuda/colour_math.h planar_pixel_to_rgb) equals the CPU decoder's RGB frame (swscale) within
// Note [Colour conversion parity]'s tolerance. Only the copy to the GPU and the launch are left for
// a GPU run (tests/test_cuda.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

#include "av/cpu_decoder.h"
#include "av/planar_yuv.h"
#include "av/rgb_converter.h"
#include "common/errors.h"
#include "cuda/colour_math.h"
#include "test_media.h"

namespace {

using lrs::av::CpuVideoDecoder;
using lrs::test::ClipSpec;

// What the planar kernel writes for one staged picture: [3, H, W] uint8.
std::vector<uint8_t> convert_staged(const std::vector<uint8_t>& staged, const lrs::av::PlanarYuvLayout& l,
                                    const AVFrame* frame) {
  using namespace lrs::cuda;
  const ColourParams p =
      make_colour_params(matrix_for_av_colorspace(frame->colorspace), lrs::av::is_full_range(frame), l.bit_depth);
  const PlanarYuv src{staged.data(), staged.data() + l.cb_offset, staged.data() + l.cr_offset, l.luma_pitch,
                      l.chroma_pitch};
  const CropWindow whole{0, 0, l.width, l.height};
  const int64_t plane = static_cast<int64_t>(l.width) * l.height;
  std::vector<uint8_t> out(static_cast<size_t>(3 * plane));
  for (int y = 0; y < l.height; ++y) {
    for (int x = 0; x < l.width; ++x) {
      const Rgb c = l.bit_depth > 8 ? planar_pixel_to_rgb<uint16_t>(p, src, whole, ChromaUpsampling::kNearest, 0, x, y)
                                    : planar_pixel_to_rgb<uint8_t>(p, src, whole, ChromaUpsampling::kNearest, 0, x, y);
      const int64_t i = static_cast<int64_t>(y) * l.width + x;
      out[i] = to_u8(c.r);
      out[plane + i] = to_u8(c.g);
      out[2 * plane + i] = to_u8(c.b);
    }
  }
  return out;
}

class HybridHostTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HybridHostTest, StagedPlanarPictureConvertsLikeTheCpuDecoder) {
  ClipSpec s;
  s.encoder = GetParam();
  s.width = 96;
  s.height = 64;
  s.num_frames = 12;
  s.gop = s.encoder == "libsvtav1" ? 2 : 6;
  s.coloured = true;
  const std::string path = lrs::test::clip_path(s);
  CpuVideoDecoder staging(path);  // the hybrid decoder's CPU half
  CpuVideoDecoder reference(path);
  const auto& info = staging.info();
  const int depth = lrs::av::planar_420_bit_depth(av_get_pix_fmt(info.pixel_format.c_str()));
  ASSERT_EQ(depth, 8) << info.pixel_format;
  const lrs::av::PlanarYuvLayout layout = lrs::av::planar_yuv_layout(info.width, info.height, depth);
  EXPECT_EQ(layout.total_bytes, info.width * info.height * 3 / 2);  // 1.5 bytes per pixel cross PCIe
  std::vector<uint8_t> staged(static_cast<size_t>(layout.total_bytes));
  double total_diff = 0;
  int64_t samples = 0;
  for (int64_t frame : {7, 0, 3, 11, 4}) {  // random access, as the decode stage asks
    const double t = staging.frame_times()[static_cast<size_t>(frame)];
    const AVFrame* picture = &staging.decode_frame(frame);
    lrs::av::pack_planar_yuv(picture, layout, staged.data(), path);
    const std::vector<uint8_t> ours = convert_staged(staged, layout, picture);
    const lrs::FrameBatch expected = reference.get_frames_at(std::vector<double>{t}, 1e-4);
    ASSERT_EQ(static_cast<int64_t>(ours.size()), expected.frame_bytes());
    int worst = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      const int d = std::abs(int(ours[i]) - int(expected.data[i]));
      worst = std::max(worst, d);
      total_diff += d;
    }
    samples += static_cast<int64_t>(ours.size());
    EXPECT_LE(worst, 3) << "frame " << frame;  // Note [Colour conversion parity]
  }
  // swscale's fixed-point tables round differently from float math: on saturated colours about
  // half the samples differ by 1 (measured mean 0.53 on AV1, below 0.5 on H.264); a swapped or
  // misplaced plane would give tens.
  EXPECT_LT(total_diff / static_cast<double>(samples), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Codecs, HybridHostTest, ::testing::Values("libsvtav1", "libx264"));

TEST(PlanarYuv, LayoutOfOddSizesRoundsChromaUp) {
  const auto l8 = lrs::av::planar_yuv_layout(37, 21, 8);
  EXPECT_EQ(l8.luma_pitch, 37);
  EXPECT_EQ(l8.chroma_pitch, 19);
  EXPECT_EQ(l8.chroma_height, 11);
  EXPECT_EQ(l8.cb_offset, 37 * 21);
  EXPECT_EQ(l8.cr_offset, 37 * 21 + 19 * 11);
  EXPECT_EQ(l8.total_bytes, 37 * 21 + 2 * 19 * 11);
  const auto l10 = lrs::av::planar_yuv_layout(37, 21, 10);
  EXPECT_EQ(l10.total_bytes, 2 * l8.total_bytes);
}

TEST(PlanarYuv, OnlyPlanar420FormatsAreStaged) {
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_YUV420P), 8);
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_YUVJ420P), 8);
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_YUV420P10LE), 10);
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_NV12), 0);  // semi-planar
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_YUV444P), 0);
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_YUV420P10BE), 0);
  EXPECT_EQ(lrs::av::planar_420_bit_depth(AV_PIX_FMT_RGB24), 0);
}

TEST(PlanarYuv, PackingAPictureOfAnotherShapeNamesTheFile) {
  lrs::av::UniqueFrame frame(av_frame_alloc());
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = 32;
  frame->height = 16;
  ASSERT_GE(av_frame_get_buffer(frame.get(), 0), 0);
  const auto layout = lrs::av::planar_yuv_layout(64, 16, 8);
  std::vector<uint8_t> out(static_cast<size_t>(layout.total_bytes));
  try {
    lrs::av::pack_planar_yuv(frame.get(), layout, out.data(), "clip.mp4");
    FAIL() << "expected InvalidInput";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("clip.mp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("32x16"), std::string::npos) << e.what();
  }
}

}  // namespace
