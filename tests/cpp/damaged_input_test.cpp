// A corpus of damaged inputs: every one gives a typed error naming the file (or decodes what is
// intact), never a crash, hang or leak (this test also runs under ASan/UBSan). Each input is opened
// both ways the Demuxer opens: as a local path, and as a ByteSource holding the whole file in memory
// (named by a URL).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "test_media.h"

namespace {

using lrs::av::CpuVideoDecoder;
using lrs::test::ClipSpec;

enum class Open { kPath, kBytes };  // a local path, or the whole file as a ByteSource in memory

class DamagedInput : public ::testing::TestWithParam<Open> {
 protected:
  // Opens `path` and decodes every frame; returns how many decoded (-1: the open failed). Errors
  // must be InvalidInput (FrameTimestampError included) naming the file or URL.
  int64_t open_and_decode_all(const std::string& path) const;
  void expect_invalid(const std::string& path, const std::string& reason) const;
  // Opens, or throws what opening `path` the parameter's way throws.
  std::unique_ptr<CpuVideoDecoder> open(const std::string& path, std::string* name) const;
};

std::unique_ptr<CpuVideoDecoder> DamagedInput::open(const std::string& path, std::string* name) const {
  if (GetParam() == Open::kPath) {
    *name = path;
    return std::make_unique<CpuVideoDecoder>(path);
  }
  *name = "https://damaged.example/" + path.substr(path.rfind('/') + 1);
  const auto bytes = std::make_shared<const std::string>(lrs::test::read_file(path));
  const auto size = static_cast<int64_t>(bytes->size());
  std::vector<lrs::av::BytePiece> pieces;
  if (size > 0) pieces.push_back({0, size, lrs::av::PieceBacking::memory(bytes, 0)});
  return std::make_unique<CpuVideoDecoder>(std::make_shared<lrs::av::ByteSource>(*name, size, std::move(pieces)));
}

int64_t DamagedInput::open_and_decode_all(const std::string& path) const {
  std::string name;
  try {
    const std::unique_ptr<CpuVideoDecoder> opened = open(path, &name);
    CpuVideoDecoder& decoder = *opened;
    int64_t ok = 0;
    for (double t : decoder.frame_times()) {
      try {
        const std::vector<double> ts = {t};
        decoder.get_frames_at(ts, 1e-4);
        ++ok;
      } catch (const lrs::InvalidInput& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
    return ok;
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    return -1;
  }
}

void DamagedInput::expect_invalid(const std::string& path, const std::string& reason) const {
  std::string name;
  try {
    open(path, &name);
    FAIL() << path << " opened, expected InvalidInput (" << reason << ")";
  } catch (const lrs::InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
}

TEST(DamagedInputPath, MissingFileIsFileNotFound) {
  EXPECT_THROW(CpuVideoDecoder("/nonexistent/dir/file-000.mp4"), lrs::FileNotFound);
}

TEST(DamagedInputPath, DirectoryIsInvalid) {
  const std::string dir = LRS_TEST_DATA_DIR;
  try {
    CpuVideoDecoder decoder(dir);
    FAIL() << "a directory opened";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

TEST(DamagedInputPath, FifoIsInvalidNotAHang) {
  // Opening a FIFO without a writer for reading blocks forever: it must be refused before that.
  const std::string path = std::string(LRS_TEST_DATA_DIR) + "/fifo-" + std::to_string(::getpid()) + ".mp4";
  ::unlink(path.c_str());
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  try {
    CpuVideoDecoder decoder(path);
    FAIL() << "a FIFO opened";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  ::unlink(path.c_str());
}

TEST_P(DamagedInput, ZeroBytesTextAndRandomBytesAreInvalid) {
  expect_invalid(lrs::test::write_file("zero.mp4", ""), "empty");
  expect_invalid(lrs::test::write_file("text.mp4", "this is not a video, just some text\n"), "not a readable video");
  std::mt19937 gen(3);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(gen());
  expect_invalid(lrs::test::write_file("noise.mp4", noise), "not a readable video");
}

TEST_P(DamagedInput, TruncatedFilesDecodeTheirIntactPrefixOrFailCleanly) {
  for (const char* encoder : {"libx264", "libsvtav1"}) {
    ClipSpec s;
    s.encoder = encoder;
    s.gop = 4;
    const std::string good = lrs::test::read_file(lrs::test::clip_path(s));
    for (double keep : {0.02, 0.3, 0.6, 0.95}) {
      const std::string name = std::string("trunc_") + encoder + "_" + std::to_string(static_cast<int>(keep * 100)) + ".mp4";
      const std::string path = lrs::test::write_file(name, good.substr(0, static_cast<size_t>(good.size() * keep)));
      const int64_t decoded = open_and_decode_all(path);
      EXPECT_LT(decoded, s.num_frames) << path;  // never invents frames
    }
  }
}

TEST_P(DamagedInput, CorruptedPayloadNeverCrashes) {
  ClipSpec s;
  s.gop = 5;
  const std::string good = lrs::test::read_file(lrs::test::clip_path(s));
  std::mt19937 gen(11);
  for (int variant = 0; variant < 6; ++variant) {
    std::string bad = good;
    std::uniform_int_distribution<size_t> where(bad.size() / 10, bad.size() - 1);
    for (int i = 0; i < 40; ++i) bad[where(gen)] = static_cast<char>(gen());
    const std::string path = lrs::test::write_file("corrupt_" + std::to_string(variant) + ".mp4", bad);
    const int64_t decoded = open_and_decode_all(path);
    EXPECT_LE(decoded, s.num_frames) << path;
  }
}

TEST_P(DamagedInput, HeaderOnlyFileHasNoFrames) {
  ClipSpec s;
  const std::string good = lrs::test::read_file(lrs::test::clip_path(s));
  // mp4 with the moov box only (x264 writes moov at the end: keep the tail, drop mdat content).
  const std::string path = lrs::test::write_file("header_only.mp4", good.substr(0, 64));
  expect_invalid(path, "");
}

INSTANTIATE_TEST_SUITE_P(OpenedAs, DamagedInput, ::testing::Values(Open::kPath, Open::kBytes),
                         [](const auto& info) { return info.param == Open::kPath ? "path" : "bytes"; });

}  // namespace
