// scan_sample_index contracts: from the header bytes alone (unfetched bytes read as zeros) it lists
// exactly the samples a full-file demux gives (position, size, pts, dts, keyframe), for AV1,
// H.264 with B-frames and HEVC, with the moov before or after the mdat; a truncated header is an
// error naming the URL.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "av/demuxer.h"
#include "av/sample_index.h"
#include "byte_ranges.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::test::Backing;
using lrs::test::EpisodesSpec;

const std::string kUrl = "s3://bucket/videos/observation.images.cam/chunk-000/file-003.mp4";

// What the decoder's own demuxer sees when it reads the whole file.
lrs::av::SampleIndex full_file_scan(const std::string& path) {
  lrs::av::Demuxer demuxer(path);
  lrs::av::SampleIndex out;
  lrs::av::UniquePacket packet(av_packet_alloc());
  while (demuxer.read_packet(packet.get())) {
    out.pos.push_back(packet->pos);
    out.size.push_back(packet->size);
    out.pts.push_back(packet->pts);
    out.dts.push_back(packet->dts);
    out.key.push_back((packet->flags & AV_PKT_FLAG_KEY) != 0 ? 1 : 0);
    av_packet_unref(packet.get());
  }
  return out;
}

class SampleIndexTest : public ::testing::TestWithParam<std::tuple<std::string, bool, Backing>> {};

TEST_P(SampleIndexTest, HeaderOnlyIndexEqualsFullFileScan) {
  const auto& [encoder, faststart, backing] = GetParam();
  const std::string path = lrs::test::episodes_clip_path(lrs::test::episodes_spec(encoder, faststart));
  const auto header = lrs::test::make_source(kUrl, path, backing);
  const lrs::av::SampleIndex index = lrs::av::scan_sample_index(*header);
  const lrs::av::SampleIndex full = full_file_scan(path);
  ASSERT_EQ(index.pos.size(), 60u);  // 20 + 15 + 25 frames
  EXPECT_EQ(index.pos, full.pos);
  EXPECT_EQ(index.size, full.size);
  EXPECT_EQ(index.pts, full.pts);
  EXPECT_EQ(index.dts, full.dts);
  EXPECT_EQ(index.key, full.key);
  // Samples are contiguous in decode order: each episode is one byte range.
  for (size_t i = 1; i < index.pos.size(); ++i) EXPECT_EQ(index.pos[i], index.pos[i - 1] + index.size[i - 1]);
  const lrs::av::Demuxer demuxer(path);
  EXPECT_EQ(index.time_base_num, demuxer.time_base().num);
  EXPECT_EQ(index.time_base_den, demuxer.time_base().den);
  EXPECT_EQ(index.width, 64);
  EXPECT_EQ(index.height, 64);
  EXPECT_EQ(index.codec, encoder == "libsvtav1" ? "av1" : (encoder == "libx264" ? "h264" : "hevc"));
  if (encoder == "libx264") {
    bool reordered = false;
    for (size_t i = 0; i < index.pts.size(); ++i) reordered |= index.pts[i] != index.dts[i] + (index.pts[0] - index.dts[0]);
    EXPECT_TRUE(reordered) << "the H.264 clip should have B-frames";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, SampleIndexTest,
    ::testing::Combine(::testing::Values("libx264", "libx265", "libsvtav1"), ::testing::Bool(),
                       ::testing::Values(Backing::kFile, Backing::kMemory)),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_faststart" : "_moov_at_end") +
             (std::get<2>(info.param) == Backing::kFile ? "_file" : "_memory");
    });

TEST(SampleIndex, TruncatedHeaderIsInvalidInputNamingTheUrl) {
  const std::string path = lrs::test::episodes_clip_path(lrs::test::episodes_spec("libx264", true));
  const std::string bytes = lrs::test::read_file(path);
  const std::vector<lrs::test::Range> header = lrs::test::header_ranges(bytes);
  ASSERT_FALSE(header.empty());
  for (double keep : {0.02, 0.5, 0.9}) {
    const auto cut = static_cast<int64_t>(static_cast<double>(header.front().end) * keep);
    const auto data = std::make_shared<const std::string>(bytes.substr(0, static_cast<size_t>(cut)));
    const lrs::av::ByteSource source(kUrl, static_cast<int64_t>(bytes.size()),
                                     {lrs::av::BytePiece{0, cut, lrs::av::PieceBacking::memory(data, 0)}});
    try {
      lrs::av::scan_sample_index(source);
      ADD_FAILURE() << "a header cut to " << cut << " bytes was accepted";
    } catch (const lrs::InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(kUrl), std::string::npos) << e.what();
    }
  }
}

}  // namespace
