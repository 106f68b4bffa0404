// ByteSource contracts: validation errors name the URL; the reader serves fetched bytes, ends the
// stream after the media range, reports any other read outside the fetched ranges (Note [Fetched
// byte ranges]), and reads zeros for unfetched bytes only under the zero-fill policy.
#include <gtest/gtest.h>

extern "C" {
#include <libavformat/avio.h>
#include <libavutil/error.h>
}

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "av/byte_source.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::av::BytePiece;
using lrs::av::ByteReader;
using lrs::av::ByteSource;
using lrs::av::PieceBacking;
using lrs::av::ReadPolicy;

const std::string kUrl = "https://example.org/videos/file-000.mp4";

// 100 bytes "file": byte i has value i.
std::shared_ptr<const std::string> file_bytes() {
  auto bytes = std::make_shared<std::string>(100, '\0');
  for (int i = 0; i < 100; ++i) (*bytes)[static_cast<size_t>(i)] = static_cast<char>(i);
  return bytes;
}

BytePiece memory_piece(int64_t begin, int64_t end) {
  static const auto bytes = file_bytes();
  return BytePiece{begin, end - begin, PieceBacking::memory(bytes, begin)};
}

// Header [0, 20) from memory, media [50, 60) + [60, 70) from a file and memory.
std::shared_ptr<const ByteSource> sample_source() {
  const std::string path = lrs::test::write_file("bytes_0_100.bin", *file_bytes());
  std::vector<BytePiece> pieces = {memory_piece(0, 20), BytePiece{50, 10, PieceBacking::file(path, 50)},
                                   memory_piece(60, 70)};
  return std::make_shared<ByteSource>(kUrl, 100, std::move(pieces), 50, 70, 0);
}

// Seeks to `pos` and reads up to `n` bytes; returns what avio_read returned, bytes into `out`.
int read_at(ByteReader& reader, int64_t pos, int n, std::string* out) {
  out->assign(static_cast<size_t>(n), '\xff');
  avio_seek(reader.context(), pos, SEEK_SET);
  const int got = avio_read(reader.context(), reinterpret_cast<unsigned char*>(out->data()), n);
  out->resize(got > 0 ? static_cast<size_t>(got) : 0);
  return got;
}

void expect_invalid(const std::function<void()>& make, const std::string& reason) {
  try {
    make();
    FAIL() << "expected InvalidInput (" << reason << ")";
  } catch (const lrs::InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kUrl), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
}

TEST(ByteSource, KeyNamesUrlAndMediaRange) {
  const auto source = sample_source();
  EXPECT_EQ(source->key(), kUrl + "#50-70");
  EXPECT_EQ(source->name(), kUrl);
  EXPECT_EQ(source->size(), 100);
  const ByteSource header_only(kUrl, 100, {memory_piece(0, 20)});
  EXPECT_EQ(header_only.key(), kUrl + "#0-100");
  EXPECT_FALSE(header_only.has_media());
}

TEST(ByteSource, RejectsInconsistentPiecesNamingTheUrl) {
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20), memory_piece(10, 30)}); }, "overlaps");
  expect_invalid([] { ByteSource(kUrl, 10, {memory_piece(0, 20)}); }, "past the end of the file");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20), memory_piece(50, 60)}, 50, 70, 0); },
                 "do not cover the media range");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20), memory_piece(50, 70)}, 50, 70); }, "start_pts");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20)}, -1, -1, 3); }, "no media range");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20), memory_piece(50, 80)}, 50, 70, 0); },
                 "runs past media_end");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 60)}, 50, 70, 0); }, "overlaps the media range");
  expect_invalid([] { ByteSource(kUrl, 100, {memory_piece(0, 20)}, 70, 50, 0); }, "media range");
  expect_invalid([] { ByteSource(kUrl, 100, {BytePiece{0, 30, PieceBacking::memory(file_bytes(), 80)}}); },
                 "memory backing");
  const std::string short_file = lrs::test::write_file("bytes_short.bin", "0123456789");
  expect_invalid([&] { ByteSource(kUrl, 100, {BytePiece{0, 20, PieceBacking::file(short_file, 0)}}); },
                 "truncated download");
  EXPECT_THROW(ByteSource(kUrl, 100, {BytePiece{0, 20, PieceBacking::file("/nonexistent/piece.bin", 0)}}),
               lrs::FileNotFound);
}

TEST(ByteSource, ReaderServesFetchedBytesFromFilesAndMemory) {
  ByteReader reader(sample_source(), ReadPolicy::kStrict);
  std::string got;
  ASSERT_EQ(read_at(reader, 5, 10, &got), 10);
  EXPECT_EQ(got, file_bytes()->substr(5, 10));
  // Across the file piece and the memory piece of the media range.
  ASSERT_EQ(read_at(reader, 55, 10, &got), 10);
  EXPECT_EQ(got, file_bytes()->substr(55, 10));
  EXPECT_NO_THROW(reader.rethrow_if_failed());
  EXPECT_EQ(avio_size(reader.context()), 100);
}

TEST(ByteSource, ReadAfterTheMediaRangeIsEndOfFile) {
  ByteReader reader(sample_source(), ReadPolicy::kStrict);
  std::string got;
  ASSERT_EQ(read_at(reader, 66, 10, &got), 4);  // the rest of the media range, then EOF
  EXPECT_EQ(got, file_bytes()->substr(66, 4));
  EXPECT_EQ(read_at(reader, 80, 10, &got), AVERROR_EOF);
  EXPECT_NO_THROW(reader.rethrow_if_failed());
}

// After the media range, up to a header piece at the tail (a moov after the mdat), is end of file;
// past that piece's end the header was cut short: an error.
TEST(ByteSource, ReadPastATailHeaderPieceIsAnError) {
  ByteReader reader(std::make_shared<ByteSource>(kUrl, 100,
                                                 std::vector<BytePiece>{memory_piece(0, 20), memory_piece(30, 40),
                                                                        memory_piece(60, 80)},
                                                 30, 40, 0),
                    ReadPolicy::kStrict);
  std::string got;
  EXPECT_EQ(read_at(reader, 45, 10, &got), AVERROR_EOF);
  ASSERT_EQ(read_at(reader, 70, 10, &got), 10);
  EXPECT_NO_THROW(reader.rethrow_if_failed());
  EXPECT_LT(read_at(reader, 85, 10, &got), 0);
  expect_invalid([&] { reader.rethrow_if_failed(); }, "read bytes [85, 95) outside the fetched ranges");
}

TEST(ByteSource, ReadOutsideTheFetchedRangesIsAnErrorNamingUrlAndBytes) {
  ByteReader reader(sample_source(), ReadPolicy::kStrict);
  std::string got;
  EXPECT_LT(read_at(reader, 30, 10, &got), 0);
  ASSERT_TRUE(reader.failed());
  expect_invalid([&] { reader.rethrow_if_failed(); }, "read bytes [30, 40) outside the fetched ranges");
  EXPECT_FALSE(reader.failed());
}

TEST(ByteSource, ZeroFillPolicyReadsZerosForUnfetchedBytes) {
  ByteReader reader(sample_source(), ReadPolicy::kZeroFill);
  std::string got;
  ASSERT_EQ(read_at(reader, 15, 40, &got), 40);
  EXPECT_EQ(got.substr(0, 5), file_bytes()->substr(15, 5));
  EXPECT_EQ(got.substr(5, 30), std::string(30, '\0'));
  EXPECT_EQ(got.substr(35, 5), file_bytes()->substr(50, 5));
  ASSERT_EQ(read_at(reader, 90, 20, &got), 10);
  EXPECT_EQ(got, std::string(10, '\0'));
  EXPECT_NO_THROW(reader.rethrow_if_failed());
}

// libav's avio_seek reads behind a short backward seek (half a buffer before the buffer's start):
// that read may fall in an unfetched gap, is discarded, and is no error.
// Header [0, 20) and a tail [50, 100), as a file whose moov follows its mdat; the reader has
// buffered [60, 100).
std::unique_ptr<ByteReader> reader_buffering_the_tail() {
  auto reader = std::make_unique<ByteReader>(
      std::make_shared<ByteSource>(kUrl, 100, std::vector<BytePiece>{memory_piece(0, 20), memory_piece(50, 100)}),
      ReadPolicy::kStrict);
  avio_seek(reader->context(), 60, SEEK_SET);
  EXPECT_EQ(avio_r8(reader->context()), 60);
  return reader;
}

TEST(ByteSource, LibavReadBehindIntoAGapIsNotAnError) {
  const auto reader = reader_buffering_the_tail();
  AVIOContext* io = reader->context();
  avio_seek(io, 55, SEEK_SET);  // reads behind from 40, in the gap [20, 50)
  EXPECT_EQ(avio_r8(io), 55);
  EXPECT_NO_THROW(reader->rethrow_if_failed());
}

// The same position asked for by the demuxer itself, and read: an error.
TEST(ByteSource, AReadAtTheReadBehindPositionThatIsUsedIsAnError) {
  const auto reader = reader_buffering_the_tail();
  AVIOContext* io = reader->context();
  avio_seek(io, 40, SEEK_SET);  // exactly half the buffered bytes before the buffer: a plain seek
  avio_r8(io);
  expect_invalid([&] { reader->rethrow_if_failed(); }, "read bytes [40, ");
}

}  // namespace
