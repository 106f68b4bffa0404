// CpuVideoDecoder contracts: the right frames (identity read from pixels) for any request order,
// one GOP decoded once, LeRobot's tolerance rule, stream info.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::av::CpuVideoDecoder;
using lrs::test::ClipSpec;

std::vector<int64_t> frame_indices(const lrs::FrameBatch& batch) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch.num_frames; ++i) {
    out.push_back(lrs::test::read_frame_index(batch.data + i * batch.frame_bytes(), static_cast<int>(batch.height),
                                              static_cast<int>(batch.width)));
  }
  return out;
}

std::vector<double> times_of(const std::vector<int64_t>& frames, int fps) {
  std::vector<double> out;
  for (int64_t f : frames) out.push_back(static_cast<double>(f) / fps);
  return out;
}

class CodecTest : public ::testing::TestWithParam<std::string> {
 protected:
  ClipSpec spec() const {
    ClipSpec s;
    s.encoder = GetParam();
    s.gop = s.encoder == "libsvtav1" ? 2 : 10;
    return s;
  }
};

TEST_P(CodecTest, RandomAccessReturnsRequestedFramesInRequestOrder) {
  const ClipSpec s = spec();
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  ASSERT_EQ(decoder.info().num_frames, s.num_frames);
  std::mt19937 gen(7);
  std::uniform_int_distribution<int64_t> pick(0, s.num_frames - 1);
  for (int round = 0; round < 20; ++round) {
    std::vector<int64_t> want(1 + round % 6);
    for (auto& f : want) f = pick(gen);
    const lrs::FrameBatch batch = decoder.get_frames_at(times_of(want, s.fps), 1e-4);
    ASSERT_EQ(batch.num_frames, static_cast<int64_t>(want.size()));
    EXPECT_EQ(frame_indices(batch), want) << "round " << round;
  }
}

TEST_P(CodecTest, SequentialReadNeverSeeksAfterTheFirstFrame) {
  const ClipSpec s = spec();
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  for (int64_t f = 0; f < s.num_frames; ++f) {
    const lrs::FrameBatch batch = decoder.get_frames_at(times_of({f}, s.fps), 1e-4);
    ASSERT_EQ(frame_indices(batch), std::vector<int64_t>{f});
  }
  EXPECT_EQ(decoder.stats().seeks, 1);
  EXPECT_EQ(decoder.stats().frames_decoded, s.num_frames);
}

TEST_P(CodecTest, DuplicatesAndReverseOrderWithinOneGopDecodeItOnce) {
  const ClipSpec s = spec();
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  std::vector<int64_t> want;
  for (int64_t f = 2 * s.gop + s.gop - 1; f >= 2 * s.gop; --f) want.push_back(f);
  want.push_back(want.front());
  const lrs::FrameBatch batch = decoder.get_frames_at(times_of(want, s.fps), 1e-4);
  EXPECT_EQ(frame_indices(batch), want);
  EXPECT_EQ(decoder.stats().seeks, 1);
  EXPECT_LE(decoder.stats().frames_decoded, s.gop);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values("libx264", "libx265", "libsvtav1"));

TEST(CpuDecoder, StreamInfoDescribesTheClip) {
  ClipSpec s;
  s.width = 96;
  s.height = 64;
  s.fps = 15;
  s.num_frames = 31;
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  const lrs::StreamInfo& info = decoder.info();
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.pixel_format, "yuv420p");
  EXPECT_EQ(info.width, 96);
  EXPECT_EQ(info.height, 64);
  EXPECT_NEAR(info.fps, 15.0, 1e-6);
  // 31 frames encoded, 30 shown: FFmpeg 5.1's mp4 muxer ends the edit list before the last picture
  // (packets without duration, B-frames), and the demuxer flags that sample discard. PyAV and
  // torchcodec show 30 too (Note [Discarded samples] in av/frame_table.h).
  EXPECT_EQ(info.num_frames, 30);
  ASSERT_EQ(decoder.frame_times().size(), 30u);
  EXPECT_NEAR(decoder.frame_times()[29], 29.0 / 15, 1e-6);
  EXPECT_NEAR(info.duration_s, 2.0, 1e-6);
  EXPECT_EQ(decoder.backend(), "cpu");
}

TEST(CpuDecoder, EveryShownFrameDecodesAndADiscardedOneIsNoFrame) {
  ClipSpec s;
  s.width = 96;
  s.height = 64;
  s.fps = 15;
  s.num_frames = 31;  // the last sample lies outside the edit list (see StreamInfoDescribesTheClip)
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  const std::vector<double>& times = decoder.frame_times();
  ASSERT_EQ(times.size(), 30u);
  const std::vector<double> backwards(times.rbegin(), times.rend());
  std::vector<int64_t> want(30);
  for (int i = 0; i < 30; ++i) want[i] = 29 - i;
  EXPECT_EQ(frame_indices(decoder.get_frames_at(backwards, 1e-4)), want);
  EXPECT_THROW(decoder.get_frames_at(std::vector<double>{30.0 / 15}, 1e-4), lrs::FrameTimestampError);
}

TEST(CpuDecoder, TimestampWithinToleranceSnapsToNearestFrame) {
  ClipSpec s;
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  const std::vector<double> t = {10.0 / 30 + 4e-5, 11.0 / 30 - 4e-5};
  EXPECT_EQ(frame_indices(decoder.get_frames_at(t, 1e-4)), (std::vector<int64_t>{10, 11}));
  // A loose tolerance picks the nearer neighbour, as LeRobot does.
  const std::vector<double> between = {10.4 / 30};
  EXPECT_EQ(frame_indices(decoder.get_frames_at(between, 0.5 / 30)), std::vector<int64_t>{10});
}

TEST(CpuDecoder, TimestampOutsideToleranceNamesFileTimestampAndNearestFrame) {
  ClipSpec s;
  const std::string path = lrs::test::clip_path(s);
  CpuVideoDecoder decoder(path);
  const std::vector<double> off = {10.5 / 30};
  try {
    decoder.get_frames_at(off, 1e-4);
    FAIL() << "expected FrameTimestampError";
  } catch (const lrs::FrameTimestampError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("0.350000s"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nearest frame #1"), std::string::npos) << msg;  // #10 or #11
  }
  const std::vector<double> outside = {5.0};
  try {
    decoder.get_frames_at(outside, 1e-4);
    FAIL() << "expected FrameTimestampError";
  } catch (const lrs::FrameTimestampError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the stream"), std::string::npos) << e.what();
  }
  const std::vector<double> negative = {-1.0};
  EXPECT_THROW(decoder.get_frames_at(negative, 1e-4), lrs::FrameTimestampError);
}

TEST(CpuDecoder, EmptyRequestGivesEmptyBatch) {
  CpuVideoDecoder decoder(lrs::test::clip_path(ClipSpec{}));
  const lrs::FrameBatch batch = decoder.get_frames_at({}, 1e-4);
  EXPECT_EQ(batch.num_frames, 0);
  EXPECT_EQ(batch.height, 64);
}

TEST(CpuDecoder, BatchOwnsItsMemoryAfterTheDecoderIsGone) {
  lrs::FrameBatch batch;
  {
    CpuVideoDecoder decoder(lrs::test::clip_path(ClipSpec{}));
    const std::vector<double> t = {0.5};
    batch = decoder.get_frames_at(t, 1e-4);
  }
  EXPECT_EQ(frame_indices(batch), std::vector<int64_t>{15});
}

TEST(CpuDecoder, MultithreadedDecodeGivesTheSameFrames) {
  ClipSpec s;
  CpuVideoDecoder one(lrs::test::clip_path(s), {.threads = 1, .stash = nullptr});
  CpuVideoDecoder two(lrs::test::clip_path(s), {.threads = 2, .stash = nullptr});
  const std::vector<double> t = times_of({59, 3, 30, 31, 0}, s.fps);
  const lrs::FrameBatch a = one.get_frames_at(t, 1e-4);
  const lrs::FrameBatch b = two.get_frames_at(t, 1e-4);
  ASSERT_EQ(a.size_bytes(), b.size_bytes());
  EXPECT_TRUE(std::equal(a.data, a.data + a.size_bytes(), b.data));
}

}  // namespace
