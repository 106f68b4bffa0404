// Episode segments through the shared Demuxer (Note [Episode segments]): every frame of every
// episode decoded from a ByteSource (header pieces + one media range, from files, memory or both)
// equals the whole-file decoder's frame bitwise, in random request order; the segment's frame
// table is exactly its frames; requests outside it, index mismatches, reads outside the fetched
// ranges and truncated segments or headers are errors naming the URL.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "av/cpu_decoder.h"
#include "av/gray_frames.h"
#include "av/sample_index.h"
#include "byte_ranges.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::av::CpuVideoDecoder;
using lrs::test::Backing;
using lrs::test::EpisodeRange;
using lrs::test::EpisodesSpec;

const std::string kUrl = "https://hub.example/datasets/org/name/resolve/main/videos/cam/chunk-000/file-001.mp4";

lrs::av::SampleIndex index_of(const std::string& path) {
  return lrs::av::scan_sample_index(*lrs::test::make_source(kUrl, path, Backing::kMemory));
}

std::vector<double> seconds_of(const std::vector<int64_t>& pts, const lrs::av::SampleIndex& index) {
  std::vector<double> out;
  for (int64_t p : pts) out.push_back(static_cast<double>(p) * index.time_base_num / index.time_base_den);
  return out;
}

// Decodes `times` in a shuffled order through `segment` and checks each frame against `whole`.
void expect_frames_equal(CpuVideoDecoder& segment, CpuVideoDecoder& whole, std::vector<double> times, uint32_t seed) {
  std::mt19937 gen(seed);
  std::shuffle(times.begin(), times.end(), gen);
  for (size_t start = 0; start < times.size(); start += 3) {
    const std::vector<double> request(times.begin() + static_cast<ptrdiff_t>(start),
                                      times.begin() + static_cast<ptrdiff_t>(std::min(start + 3, times.size())));
    const lrs::FrameBatch got = segment.get_frames_at(request, 1e-4);
    const lrs::FrameBatch want = whole.get_frames_at(request, 1e-4);
    ASSERT_EQ(got.size_bytes(), want.size_bytes());
    for (int64_t f = 0; f < got.num_frames; ++f) {
      const uint8_t* a = got.data + f * got.frame_bytes();
      ASSERT_TRUE(std::equal(a, a + got.frame_bytes(), want.data + f * want.frame_bytes()))
          << "frame at " << request[static_cast<size_t>(f)] << "s differs from the whole-file decoder's";
      const auto& all = whole.frame_times();
      const int64_t expected = std::lower_bound(all.begin(), all.end(), request[static_cast<size_t>(f)] - 1e-6) - all.begin();
      EXPECT_EQ(lrs::test::read_frame_index(a, static_cast<int>(got.height), static_cast<int>(got.width)), expected);
    }
  }
}

class SegmentTest : public ::testing::TestWithParam<std::tuple<std::string, bool, Backing>> {};

TEST_P(SegmentTest, EveryEpisodeDecodesBitwiseLikeTheWholeFile) {
  const auto& [encoder, faststart, backing] = GetParam();
  const EpisodesSpec spec = lrs::test::episodes_spec(encoder, faststart);
  const std::string path = lrs::test::episodes_clip_path(spec);
  const lrs::av::SampleIndex index = index_of(path);
  CpuVideoDecoder whole(path);
  std::vector<int64_t> all_pts = index.pts;
  std::sort(all_pts.begin(), all_pts.end());
  size_t first = 0;
  for (size_t e = 0; e < spec.episode_frames.size(); ++e) {  // the first, middle and last episode of the file
    const size_t last = first + static_cast<size_t>(spec.episode_frames[e]) - 1;
    const EpisodeRange range = lrs::test::episode_range(index, all_pts[first], all_pts[last]);
    CpuVideoDecoder segment(lrs::test::make_source(kUrl, path, backing, &range));
    EXPECT_EQ(segment.info().path, kUrl);
    // The frame table is exactly this episode's frames, on the file's clock.
    const std::vector<double> expected = seconds_of(range.segment_pts, index);
    ASSERT_EQ(segment.frame_times().size(), expected.size()) << "episode " << e;
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(segment.frame_times()[i], expected[i], 1e-9);
    EXPECT_EQ(range.segment_pts.size(), static_cast<size_t>(spec.episode_frames[e]));
    expect_frames_equal(segment, whole, expected, static_cast<uint32_t>(e));
    first = last + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, SegmentTest,
    ::testing::Combine(::testing::Values("libx264", "libx265", "libsvtav1"), ::testing::Bool(),
                       ::testing::Values(Backing::kFile, Backing::kMemory, Backing::kMixed)),
    [](const auto& info) {
      const Backing b = std::get<2>(info.param);
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_faststart" : "_moov_at_end") +
             (b == Backing::kFile ? "_file" : (b == Backing::kMemory ? "_memory" : "_mixed"));
    });

class MidGopTest : public ::testing::TestWithParam<std::string> {};

// An episode whose first frame is not a keyframe: the range starts at the keyframe before it, and
// the segment holds (and decodes) the frames from that keyframe on.
TEST_P(MidGopTest, RangeStartsAtThePreviousKeyframe) {
  EpisodesSpec spec = lrs::test::episodes_spec(GetParam(), true);
  spec.episode_frames = {40};  // one encoder run: keyframes every gop frames
  const std::string path = lrs::test::episodes_clip_path(spec);
  const lrs::av::SampleIndex index = index_of(path);
  std::vector<int64_t> pts = index.pts;
  std::sort(pts.begin(), pts.end());
  const int gop = spec.clip.gop;
  const EpisodeRange range = lrs::test::episode_range(index, pts[static_cast<size_t>(gop + 1)], pts[30]);
  EXPECT_EQ(range.start_pts, pts[static_cast<size_t>(gop)]);
  CpuVideoDecoder segment(lrs::test::make_source(kUrl, path, Backing::kMixed, &range));
  CpuVideoDecoder whole(path);
  EXPECT_EQ(segment.frame_times().front(), whole.frame_times()[static_cast<size_t>(gop)]);
  EXPECT_GE(segment.frame_times().back(), whole.frame_times()[30]);
  expect_frames_equal(segment, whole, segment.frame_times(), 5);
}

INSTANTIATE_TEST_SUITE_P(Codecs, MidGopTest, ::testing::Values("libx264", "libx265", "libsvtav1"));

// Depth maps (lossless 12-bit gray HEVC) from an episode segment: the exact codes of the whole file.
TEST(Segment, DepthEpisodeDecodesExactlyLikeTheWholeFile) {
  EpisodesSpec spec = lrs::test::episodes_spec("libx265", true);
  spec.clip.gray12 = true;
  const std::string path = lrs::test::episodes_clip_path(spec);
  const lrs::av::SampleIndex index = index_of(path);
  std::vector<int64_t> pts = index.pts;
  std::sort(pts.begin(), pts.end());
  const EpisodeRange last = lrs::test::episode_range(index, pts[35], pts[59]);
  CpuVideoDecoder segment(lrs::test::make_source(kUrl, path, Backing::kMixed, &last));
  CpuVideoDecoder whole(path);
  std::vector<double> times = segment.frame_times();
  std::reverse(times.begin(), times.end());
  const lrs::av::GrayBatch got = lrs::av::get_gray12_frames_at(segment, times, 1e-4);
  const lrs::av::GrayBatch want = lrs::av::get_gray12_frames_at(whole, times, 1e-4);
  ASSERT_EQ(got.num_frames, 25);
  const int64_t values = got.num_frames * got.height * got.width;
  EXPECT_TRUE(std::equal(got.data, got.data + values, want.data));
  EXPECT_EQ(got.data[0], lrs::test::gray12_code(59, 0, 0));  // the last frame of the file, first requested
}

struct Fixture {
  std::string path;
  lrs::av::SampleIndex index;
  EpisodeRange middle;  // the second episode
  std::vector<int64_t> pts;
};

Fixture fixture() {
  const EpisodesSpec spec = lrs::test::episodes_spec("libx264", true);
  Fixture f;
  f.path = lrs::test::episodes_clip_path(spec);
  f.index = index_of(f.path);
  f.pts = f.index.pts;
  std::sort(f.pts.begin(), f.pts.end());
  f.middle = lrs::test::episode_range(f.index, f.pts[20], f.pts[34]);
  return f;
}

void expect_invalid(const std::function<void()>& run, const std::string& reason) {
  try {
    run();
    FAIL() << "expected InvalidInput (" << reason << ")";
  } catch (const lrs::InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kUrl), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
}

TEST(Segment, RequestOutsideTheSegmentNamesUrlAndTheFetchedRange) {
  const Fixture f = fixture();
  CpuVideoDecoder segment(lrs::test::make_source(kUrl, f.path, Backing::kMemory, &f.middle));
  const double tb = static_cast<double>(f.index.time_base_num) / f.index.time_base_den;
  for (int64_t frame : {0, 19, 35, 59}) {
    const std::vector<double> t = {static_cast<double>(f.pts[static_cast<size_t>(frame)]) * tb};
    try {
      segment.get_frames_at(t, 1e-4);
      FAIL() << "frame " << frame << " is outside the episode";
    } catch (const lrs::FrameTimestampError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(kUrl), std::string::npos) << msg;
      EXPECT_NE(msg.find("outside the fetched episode range"), std::string::npos) << msg;
    }
  }
}

TEST(Segment, IndexMismatchIsInvalidInput) {
  const Fixture f = fixture();
  EpisodeRange wrong_pts = f.middle;
  wrong_pts.start_pts = f.pts[0];  // the first episode's keyframe
  expect_invalid([&] { CpuVideoDecoder(lrs::test::make_source(kUrl, f.path, Backing::kMemory, &wrong_pts)); },
                 "index mismatch");
  EpisodeRange not_a_keyframe = f.middle;  // range starting at the second sample of the episode
  const auto second = std::find(f.index.pos.begin(), f.index.pos.end(), f.middle.bytes.begin) + 1;
  not_a_keyframe.bytes.begin = *second;
  expect_invalid([&] { CpuVideoDecoder(lrs::test::make_source(kUrl, f.path, Backing::kMemory, &not_a_keyframe)); },
                 "index mismatch");
}

TEST(Segment, TruncatedSegmentIsInvalidInputNeverAFrame) {
  const Fixture f = fixture();
  for (int64_t cut : {1, 7, 100}) {
    EpisodeRange truncated = f.middle;
    truncated.bytes.end -= cut;  // the last sample is cut
    expect_invalid([&] { CpuVideoDecoder(lrs::test::make_source(kUrl, f.path, Backing::kMixed, &truncated)); },
                   "truncated segment");
  }
}

// The moov cut short, before the mdat (faststart) or at the file's tail.
TEST(Segment, TruncatedHeaderIsInvalidInput) {
  for (bool faststart : {true, false}) {
    const std::string path = lrs::test::episodes_clip_path(lrs::test::episodes_spec("libx264", faststart));
    const lrs::av::SampleIndex index = index_of(path);
    std::vector<int64_t> pts = index.pts;
    std::sort(pts.begin(), pts.end());
    const EpisodeRange middle = lrs::test::episode_range(index, pts[20], pts[34]);
    const std::string bytes = lrs::test::read_file(path);
    const std::vector<lrs::test::Range> header = lrs::test::header_ranges(bytes);
    const auto all = std::make_shared<const std::string>(bytes);
    const lrs::test::Range moov = faststart ? header.front() : header.back();
    for (double keep : {0.05, 0.5, 0.95}) {
      std::vector<lrs::av::BytePiece> pieces = {{middle.bytes.begin, middle.bytes.end - middle.bytes.begin,
                                                 lrs::av::PieceBacking::memory(all, middle.bytes.begin)}};
      for (const lrs::test::Range& r : header) {
        const int64_t end = r.begin == moov.begin ? r.begin + static_cast<int64_t>(static_cast<double>(r.end - r.begin) * keep) : r.end;
        pieces.push_back({r.begin, end - r.begin, lrs::av::PieceBacking::memory(all, r.begin)});
      }
      expect_invalid(
          [&] {
            CpuVideoDecoder(std::make_shared<lrs::av::ByteSource>(kUrl, static_cast<int64_t>(bytes.size()), pieces,
                                                                   middle.bytes.begin, middle.bytes.end,
                                                                   middle.start_pts));
          },
          "");
    }
  }
}

TEST(Segment, ReadOutsideTheFetchedRangesIsReportedNotPapered) {
  const Fixture f = fixture();
  // No media range: the header alone cannot be decoded, and the read past it is named.
  expect_invalid([&] { CpuVideoDecoder(lrs::test::make_source(kUrl, f.path, Backing::kMemory)); },
                 "outside the fetched ranges");
}

TEST(Segment, WholeFileInMemoryDecodesLikeTheFile) {
  const Fixture f = fixture();
  const std::string bytes = lrs::test::read_file(f.path);
  const auto all = std::make_shared<const std::string>(bytes);
  const auto size = static_cast<int64_t>(bytes.size());
  CpuVideoDecoder memory(std::make_shared<lrs::av::ByteSource>(
      kUrl, size, std::vector<lrs::av::BytePiece>{{0, size, lrs::av::PieceBacking::memory(all, 0)}}));
  CpuVideoDecoder whole(f.path);
  EXPECT_EQ(memory.frame_times(), whole.frame_times());
  expect_frames_equal(memory, whole, whole.frame_times(), 9);
}

}  // namespace
