// Depth-map frames (av/gray_frames.h): 12-bit gray codes of a lossless gray12le HEVC clip come back
// exactly, for any request order, duplicates and B-frames, through the same decoder as RGB requests;
// a timestamp off the frame grid raises FrameTimestampError naming the file.
#include <gtest/gtest.h>

#include <vector>

#include "av/cpu_decoder.h"
#include "av/gray_frames.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

lrs::test::ClipSpec gray_clip() {
  lrs::test::ClipSpec spec;
  spec.encoder = "libx265";
  spec.width = 48;
  spec.height = 32;
  spec.fps = 10;
  spec.num_frames = 24;
  spec.gop = 4;
  spec.max_b_frames = 2;
  spec.gray12 = true;
  return spec;
}

void expect_frame(const lrs::av::GrayBatch& batch, int slot, int index) {
  const int16_t* frame = batch.data + static_cast<int64_t>(slot) * batch.frame_values();
  for (int y = 0; y < batch.height; ++y) {
    for (int x = 0; x < batch.width; ++x) {
      ASSERT_EQ(frame[static_cast<int64_t>(y) * batch.width + x], lrs::test::gray12_code(index, x, y))
          << "slot " << slot << " frame " << index << " at (" << x << ", " << y << ")";
    }
  }
}

}  // namespace

TEST(GrayFrames, CodesComeBackExactlyInRequestOrder) {
  lrs::av::CpuVideoDecoder decoder(lrs::test::clip_path(gray_clip()));
  EXPECT_EQ(decoder.info().pixel_format, "gray12le");
  // Not frame 23: with B-frames, x265 + the mp4 muxer leave the last packet flagged discard (no
  // decoder outputs it; PyAV decodes 23 frames too).
  const std::vector<int> wanted = {17, 3, 3, 0, 22, 9, 10, 17};
  std::vector<double> timestamps;
  for (int i : wanted) timestamps.push_back(i / 10.0);
  const lrs::av::GrayBatch batch = lrs::av::get_gray12_frames_at(decoder, timestamps, 1e-4);
  ASSERT_EQ(batch.num_frames, static_cast<int64_t>(wanted.size()));
  ASSERT_EQ(batch.height, 32);
  ASSERT_EQ(batch.width, 48);
  for (size_t slot = 0; slot < wanted.size(); ++slot) expect_frame(batch, static_cast<int>(slot), wanted[slot]);
}

TEST(GrayFrames, SharesTheDecoderWithRgbRequests) {
  lrs::av::CpuVideoDecoder decoder(lrs::test::clip_path(gray_clip()));
  const std::vector<double> first = {0.5};
  const lrs::FrameBatch rgb = decoder.get_frames_at(first, 1e-4);  // gray12 -> RGB through swscale
  EXPECT_EQ(rgb.num_frames, 1);
  const std::vector<double> later = {0.6, 0.2};
  const lrs::av::GrayBatch gray = lrs::av::get_gray12_frames_at(decoder, later, 1e-4);
  expect_frame(gray, 0, 6);
  expect_frame(gray, 1, 2);
}

TEST(GrayFrames, OffGridTimestampNamesTheFile) {
  const std::string path = lrs::test::clip_path(gray_clip());
  lrs::av::CpuVideoDecoder decoder(path);
  const std::vector<double> timestamps = {0.35};
  try {
    lrs::av::get_gray12_frames_at(decoder, timestamps, 1e-4);
    FAIL() << "expected FrameTimestampError";
  } catch (const lrs::FrameTimestampError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}
