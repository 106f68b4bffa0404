// Frame stash contracts (Note [Frame stash]): a decoder with a stash returns bitwise the frames one
// without returns, for any order, dtype and budget; with room for the pass's needs it decodes every
// frame of a pass once; the budget is never exceeded, shared by several decoders; a new pass starts
// over.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "av/cpu_decoder.h"
#include "av/frame_stash.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::PixelType;
using lrs::av::CpuDecoderOptions;
using lrs::av::CpuVideoDecoder;
using lrs::av::FrameStashBudget;
using lrs::test::ClipSpec;

constexpr int64_t kUnlimited = int64_t{1} << 40;

ClipSpec coloured_clip(const std::string& encoder) {
  ClipSpec s;
  s.encoder = encoder;
  s.coloured = true;
  s.num_frames = 48;
  s.gop = encoder == "libsvtav1" ? 2 : 6;
  return s;
}

// One pass over every frame in a shuffled order, in requests of 1-4 frames (a DataLoader batch's
// requests to one file), returning each request's bytes.
std::vector<std::vector<uint8_t>> one_pass(CpuVideoDecoder& decoder, int64_t num_frames, int fps, unsigned seed,
                                           PixelType dtype) {
  std::vector<int64_t> order(static_cast<size_t>(num_frames));
  for (int64_t i = 0; i < num_frames; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937 gen(seed);
  std::shuffle(order.begin(), order.end(), gen);
  std::vector<std::vector<uint8_t>> out;
  for (size_t at = 0; at < order.size();) {
    const size_t n = std::min<size_t>(1 + gen() % 4, order.size() - at);
    std::vector<double> times;
    for (size_t i = at; i < at + n; ++i) times.push_back(static_cast<double>(order[i]) / fps);
    const lrs::FrameBatch batch = decoder.get_frames_at(times, 1e-4, dtype);
    out.emplace_back(batch.data, batch.data + batch.size_bytes());
    at += n;
  }
  return out;
}

class StashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StashTest, FramesAreBitwiseThoseDecodingGivesForAnyBudgetAndDtype) {
  const ClipSpec s = coloured_clip(GetParam());
  const std::string path = lrs::test::clip_path(s);
  for (PixelType dtype : {PixelType::kUInt8, PixelType::kFloat32}) {
    CpuVideoDecoder plain(path);
    const auto expected = one_pass(plain, s.num_frames, s.fps, 3, dtype);
    const int64_t frame_bytes = int64_t{64} * 64 * 3 / 2;
    for (int64_t budget : {kUnlimited, 3 * frame_bytes + 100, int64_t{1}}) {
      auto shared = std::make_shared<FrameStashBudget>(budget);
      CpuVideoDecoder stashed(path, CpuDecoderOptions{1, shared});
      EXPECT_EQ(one_pass(stashed, s.num_frames, s.fps, 3, dtype), expected) << "budget " << budget;
      EXPECT_LE(shared->peak_bytes(), budget);
      EXPECT_LE(stashed.stats().frames_decoded, plain.stats().frames_decoded) << "budget " << budget;
    }
  }
}

TEST_P(StashTest, WithRoomEveryFrameOfAPassIsDecodedOnceAndNothingIsLeftOver) {
  const ClipSpec s = coloured_clip(GetParam());
  auto budget = std::make_shared<FrameStashBudget>(kUnlimited);
  CpuVideoDecoder decoder(lrs::test::clip_path(s), CpuDecoderOptions{1, budget});
  for (unsigned pass = 0; pass < 2; ++pass) {
    budget->begin_pass();  // a new epoch: frames served in the last one are wanted again
    const lrs::DecoderStats before = decoder.stats();
    one_pass(decoder, s.num_frames, s.fps, 11 + pass, PixelType::kUInt8);
    lrs::DecoderStats did = decoder.stats();
    did -= before;
    EXPECT_EQ(did.frames_decoded, s.num_frames) << "pass " << pass;
    EXPECT_EQ(did.frames_requested, s.num_frames);
    EXPECT_GT(did.frames_from_stash, 0);
    EXPECT_EQ(budget->used_bytes(), 0) << "every kept frame was requested in the pass";
  }
}

TEST_P(StashTest, WithoutANewPassServedFramesAreNotKeptAgain) {
  const ClipSpec s = coloured_clip(GetParam());
  auto budget = std::make_shared<FrameStashBudget>(kUnlimited);
  CpuVideoDecoder decoder(lrs::test::clip_path(s), CpuDecoderOptions{1, budget});
  one_pass(decoder, s.num_frames, s.fps, 5, PixelType::kUInt8);
  const lrs::DecoderStats first = decoder.stats();
  one_pass(decoder, s.num_frames, s.fps, 6, PixelType::kUInt8);  // same pass: every frame served already
  lrs::DecoderStats second = decoder.stats();
  second -= first;
  EXPECT_EQ(second.frames_stashed, 0);
  EXPECT_EQ(second.frames_from_stash, 0);
  EXPECT_EQ(budget->used_bytes(), 0);
}

INSTANTIATE_TEST_SUITE_P(Codecs, StashTest, ::testing::Values("libx264", "libx265", "libsvtav1"));

TEST(FrameStash, DecodersSharingABudgetNeverExceedItTogether) {
  const ClipSpec s = coloured_clip("libsvtav1");
  const std::string path = lrs::test::clip_path(s);
  const int64_t frame_bytes = int64_t{64} * 64 * 3 / 2;
  auto budget = std::make_shared<FrameStashBudget>(5 * frame_bytes);
  CpuVideoDecoder a(path, CpuDecoderOptions{1, budget});
  CpuVideoDecoder b(path, CpuDecoderOptions{1, budget});
  CpuVideoDecoder plain(path);
  for (unsigned seed = 0; seed < 3; ++seed) {
    const auto expected = one_pass(plain, s.num_frames, s.fps, seed, PixelType::kUInt8);
    EXPECT_EQ(one_pass(a, s.num_frames, s.fps, seed, PixelType::kUInt8), expected);
    EXPECT_EQ(one_pass(b, s.num_frames, s.fps, seed, PixelType::kUInt8), expected);
    budget->begin_pass();
  }
  EXPECT_GT(budget->peak_bytes(), 0);
  EXPECT_LE(budget->peak_bytes(), 5 * frame_bytes);
}

TEST(FrameStash, BudgetBelowOneByteIsInvalid) {
  EXPECT_THROW(FrameStashBudget(0), lrs::InvalidInput);
}

}  // namespace
