// Frame outputs and what random access costs: float32 frames equal uint8 / 255 bit for bit,
// decode_into writes the same frames into caller memory (and refuses memory of the wrong size),
// the decoder's counters follow the GOP structure (Note [Seeking]), the cache keeps the counters of
// closed decoders, and decode_files decodes several files at once into the right places.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"
#include "decode/multi_decode.h"
#include "test_media.h"

namespace {

using lrs::PixelType;
using lrs::av::CpuVideoDecoder;
using lrs::test::ClipSpec;

std::vector<double> times_of(const std::vector<int64_t>& frames, int fps) {
  std::vector<double> out;
  for (int64_t f : frames) out.push_back(static_cast<double>(f) / fps);
  return out;
}

int64_t identity(const uint8_t* frame, const lrs::FrameBatch& b) {
  return lrs::test::read_frame_index(frame, static_cast<int>(b.height), static_cast<int>(b.width));
}

class FloatTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FloatTest, Float32FramesAreTheUint8FramesDividedBy255) {
  ClipSpec s;
  s.encoder = GetParam();
  s.width = GetParam() == "libsvtav1" ? 64 : 70;  // 70: not a multiple of swscale's 8-pixel groups
  s.gop = GetParam() == "libsvtav1" ? 2 : 10;
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  const std::vector<double> t = times_of({0, 7, 3, 29, 7, 59}, s.fps);
  const lrs::FrameBatch u8 = decoder.get_frames_at(t, 1e-4, PixelType::kUInt8);
  const lrs::FrameBatch f32 = decoder.get_frames_at(t, 1e-4, PixelType::kFloat32);
  ASSERT_EQ(f32.dtype, PixelType::kFloat32);
  ASSERT_EQ(f32.size_bytes(), 4 * u8.size_bytes());
  const auto* values = reinterpret_cast<const float*>(f32.data);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < u8.size_bytes(); ++i) {
    const float want = static_cast<float>(u8.data[i]) / 255.0f;
    mismatches += std::memcmp(&values[i], &want, sizeof(float)) != 0;
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Codecs, FloatTest, ::testing::Values("libx264", "libx265", "libsvtav1"));

TEST(DecodeInto, WritesTheRequestedFramesIntoCallerMemory) {
  ClipSpec s;
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  const std::vector<int64_t> want = {12, 3, 12, 40};
  const int64_t frame_bytes = 3 * s.height * s.width;
  std::vector<uint8_t> memory(static_cast<size_t>(frame_bytes * 5), 0);
  // Destinations anywhere in the caller's memory, here in reverse slot order.
  std::vector<uint8_t*> slots;
  for (int i = 3; i >= 0; --i) slots.push_back(memory.data() + i * frame_bytes);
  decoder.decode_into(times_of(want, s.fps), 1e-4, {slots, PixelType::kUInt8, s.height, s.width});
  lrs::FrameBatch probe;
  probe.height = s.height;
  probe.width = s.width;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(identity(slots[i], probe), want[i]) << i;
  EXPECT_TRUE(std::all_of(memory.begin() + 4 * frame_bytes, memory.end(), [](uint8_t v) { return v == 0; }));
}

// Repeats of a frame in one request (Note [Repeated frames]) hold the bytes a request of that frame
// alone gets, in both dtypes, wherever the repeats sit in the request.
TEST(DecodeInto, RepeatedFramesEqualTheFrameDecodedAlone) {
  ClipSpec s;
  s.width = 70;  // not a multiple of swscale's 8-pixel groups
  s.gop = 10;
  CpuVideoDecoder batch_decoder(lrs::test::clip_path(s));
  CpuVideoDecoder single_decoder(lrs::test::clip_path(s));
  const std::vector<int64_t> want = {21, 4, 21, 21, 4, 33, 21};
  for (PixelType dtype : {PixelType::kUInt8, PixelType::kFloat32}) {
    const lrs::FrameBatch batch = batch_decoder.get_frames_at(times_of(want, s.fps), 1e-4, dtype);
    const int64_t frame_bytes = batch.size_bytes() / static_cast<int64_t>(want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const lrs::FrameBatch alone = single_decoder.get_frames_at(times_of({want[i]}, s.fps), 1e-4, dtype);
      ASSERT_EQ(alone.size_bytes(), frame_bytes);
      EXPECT_EQ(std::memcmp(batch.data + static_cast<int64_t>(i) * frame_bytes, alone.data, frame_bytes), 0)
          << "slot " << i << " (frame " << want[i] << "), " << lrs::pixel_type_name(dtype);
    }
  }
  EXPECT_EQ(batch_decoder.stats().frames_reused, 2 * 4);  // per dtype: 21 three more times, 4 once more
}

TEST(DecodeInto, RefusesMemoryOfTheWrongSizeOrCountNamingTheFile) {
  ClipSpec s;
  const std::string path = lrs::test::clip_path(s);
  CpuVideoDecoder decoder(path);
  std::vector<float> memory(static_cast<size_t>(3 * s.height * (s.width + 1)));
  std::vector<uint8_t*> one = {reinterpret_cast<uint8_t*>(memory.data())};
  const std::vector<double> t = {0.0};
  try {
    decoder.decode_into(t, 1e-4, {one, PixelType::kFloat32, s.height, s.width + 1});
    FAIL() << "expected InvalidInput";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("but the video is"), std::string::npos) << e.what();
  }
  const std::vector<double> two = {0.0, 0.1};
  EXPECT_THROW(decoder.decode_into(two, 1e-4, {one, PixelType::kFloat32, s.height, s.width}), lrs::InvalidInput);
  std::vector<uint8_t*> misaligned = {reinterpret_cast<uint8_t*>(memory.data()) + 1};
  EXPECT_THROW(decoder.decode_into(t, 1e-4, {misaligned, PixelType::kFloat32, s.height, s.width}), lrs::InvalidInput);
  // GPU memory is not the CPU decoder's to write (the decode stage and the CUDA backends share this
  // FrameDestinations contract; Note [Batch fill]).
  try {
    decoder.decode_into(t, 1e-4,
                        {one, PixelType::kFloat32, s.height, s.width, lrs::DecodeDevice{lrs::DeviceKind::kCUDA, 0}});
    FAIL() << "expected InvalidInput";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(decoder.stats().frames_decoded, 0);  // refused before decoding anything
}

// A clip without B-frames, keyframes every `gop` frames: decoded counts are exact.
ClipSpec gop_clip(int gop) {
  ClipSpec s;
  s.gop = gop;
  s.max_b_frames = 0;
  s.num_frames = 40;
  return s;
}

TEST(DecoderStats, ARandomAccessDecodesFromItsKeyframe) {
  const ClipSpec s = gop_clip(8);
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  ASSERT_EQ(decoder.info().num_keyframes, 5);
  decoder.get_frames_at(times_of({19}, s.fps), 1e-4);  // keyframe 16, then 17, 18, 19
  lrs::DecoderStats st = decoder.stats();
  EXPECT_EQ(st.seeks, 1);
  EXPECT_EQ(st.flushes, 1);
  EXPECT_EQ(st.frames_decoded, 4);
  EXPECT_EQ(st.keyframes_decoded, 1);
  EXPECT_EQ(st.frames_converted, 1);
  EXPECT_EQ(st.frames_requested, 1);

  decoder.get_frames_at(times_of({22}, s.fps), 1e-4);  // same GOP, ahead: decode on, no seek
  st = decoder.stats();
  EXPECT_EQ(st.seeks, 1);
  EXPECT_EQ(st.frames_decoded, 7);

  decoder.get_frames_at(times_of({23, 24}, s.fps), 1e-4);  // the last of the GOP, then the next GOP
  st = decoder.stats();
  EXPECT_EQ(st.seeks, 1) << "a request in the next GOP that costs no more than a seek must not seek";
  EXPECT_EQ(st.forward_gop_skips, 1);
  EXPECT_EQ(st.frames_decoded, 9);
  EXPECT_EQ(st.keyframes_decoded, 2);

  decoder.get_frames_at(times_of({24, 24}, s.fps), 1e-4);  // the frame held, requested twice
  st = decoder.stats();
  EXPECT_EQ(st.frames_decoded, 9);
  EXPECT_EQ(st.frames_reused, 2);

  decoder.get_frames_at(times_of({35}, s.fps), 1e-4);  // a later GOP, far: seek to keyframe 32
  st = decoder.stats();
  EXPECT_EQ(st.seeks, 2);
  EXPECT_EQ(st.frames_decoded, 13);

  decoder.get_frames_at(times_of({2}, s.fps), 1e-4);  // behind: seek back to keyframe 0
  st = decoder.stats();
  EXPECT_EQ(st.seeks, 3);
  EXPECT_EQ(st.flushes, 3);
  EXPECT_EQ(st.frames_decoded, 16);
  EXPECT_EQ(st.keyframes_decoded, 4);
  EXPECT_GT(st.decode_ns, 0);
  EXPECT_GE(st.decode_ns, st.keyframe_decode_ns);
  EXPECT_GT(st.convert_ns, 0);
}

TEST(DecoderStats, DecodedPerRequestedFollowsTheGopStructure) {
  const ClipSpec s = gop_clip(2);  // lerobot's GOP
  CpuVideoDecoder decoder(lrs::test::clip_path(s));
  std::mt19937 gen(3);
  std::uniform_int_distribution<int64_t> pick(0, s.num_frames - 1);
  int64_t expected = 0;
  int64_t last = s.num_frames;  // requests go backwards, so every one seeks
  for (int i = 0; i < 30; ++i) {
    const int64_t f = pick(gen) % std::max<int64_t>(last, 1);
    if (f >= last) continue;
    decoder.get_frames_at(times_of({f}, s.fps), 1e-4);
    expected += f % 2 + 1;  // the keyframe, plus the frame after it when that is the target
    last = f;
    if (last == 0) break;
  }
  const lrs::DecoderStats st = decoder.stats();
  EXPECT_EQ(st.frames_decoded, expected);
  EXPECT_EQ(st.seeks, st.frames_requested);
  EXPECT_EQ(st.keyframes_decoded, st.frames_requested);
}

TEST(DecoderCache, DecoderTotalsSurviveEviction) {
  std::vector<std::string> paths;
  for (int frames : {30, 31}) {
    ClipSpec s;
    s.num_frames = frames;
    paths.push_back(lrs::test::clip_path(s));
  }
  lrs::DecoderCache cache(1, [](const lrs::VideoSource& s) { return std::make_unique<CpuVideoDecoder>(s); });
  const std::vector<double> t = {0.0, 1.0 / 30};
  cache.get_frames_at(paths[0], t, 1e-4);
  cache.get_frames_at(paths[1], t, 1e-4);  // evicts the first decoder
  cache.get_frames_at(paths[0], t, 1e-4);
  const lrs::DecoderCacheStats st = cache.stats();
  EXPECT_EQ(st.evictions, 2);
  EXPECT_EQ(st.decoder.frames_requested, 6);
  EXPECT_EQ(st.decoder.frames_decoded, 6);
  EXPECT_EQ(st.decoder.seeks, 3);
}

TEST(DecodeFiles, DecodesSeveralFilesInParallelIntoTheirPlaces) {
  std::vector<ClipSpec> specs(3);
  specs[1].encoder = "libx265";
  specs[2].num_frames = 45;
  lrs::DecoderCache cache(4, [](const lrs::VideoSource& s) { return std::make_unique<CpuVideoDecoder>(s); });
  const int64_t frame_bytes = 3 * 64 * 64 * 4;
  std::vector<uint8_t> memory(static_cast<size_t>(frame_bytes * 7));
  auto slot = [&](int i) { return memory.data() + i * frame_bytes; };
  std::vector<lrs::FileRequest> requests = {
      {lrs::test::clip_path(specs[0]), times_of({5, 1}, 30), {slot(0), slot(1)}, 64, 64},
      {lrs::test::clip_path(specs[1]), times_of({20}, 30), {slot(2)}, 64, 64},
      {lrs::test::clip_path(specs[2]), times_of({44, 2}, 30), {slot(3), slot(4)}, 64, 64},
      {lrs::test::clip_path(specs[0]), times_of({9, 29}, 30), {slot(5), slot(6)}, 64, 64},  // merged
  };
  lrs::decode_files(cache, requests, 1e-4, PixelType::kFloat32, 3);
  lrs::FrameBatch probe;
  probe.height = 64;
  probe.width = 64;
  const std::vector<int64_t> want = {5, 1, 20, 44, 2, 9, 29};
  for (int i = 0; i < 7; ++i) {
    std::vector<uint8_t> u8(static_cast<size_t>(3 * 64 * 64));
    const auto* f = reinterpret_cast<const float*>(slot(i));
    for (size_t k = 0; k < u8.size(); ++k) u8[k] = static_cast<uint8_t>(f[k] * 255.0f + 0.5f);
    EXPECT_EQ(identity(u8.data(), probe), want[static_cast<size_t>(i)]) << i;
  }
  EXPECT_EQ(cache.stats().misses, 3);  // one decoder per file: the two requests of file 0 merged
  EXPECT_EQ(cache.stats().hits, 0);
}

TEST(DecodeFiles, ReportsTheFirstFailureAfterEveryFileFinished) {
  lrs::DecoderCache cache(4, [](const lrs::VideoSource& s) { return std::make_unique<CpuVideoDecoder>(s); });
  std::vector<uint8_t> memory(static_cast<size_t>(3 * 64 * 64 * 2));
  std::vector<lrs::FileRequest> requests = {
      {lrs::test::clip_path(ClipSpec{}), times_of({3}, 30), {memory.data()}, 64, 64},
      {"/nonexistent/clip.mp4", times_of({0}, 30), {memory.data() + 3 * 64 * 64}, 64, 64},
  };
  EXPECT_THROW(lrs::decode_files(cache, requests, 1e-4, PixelType::kUInt8, 2), lrs::FileNotFound);
  lrs::FrameBatch probe;
  probe.height = 64;
  probe.width = 64;
  EXPECT_EQ(identity(memory.data(), probe), 3);  // the good file still decoded
  requests[1].destinations.push_back(memory.data());
  EXPECT_THROW(lrs::decode_files(cache, requests, 1e-4, PixelType::kUInt8, 1), lrs::InvalidInput);
}

}  // namespace
