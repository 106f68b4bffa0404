// DecodeStage contracts (Note [Decode stage]) on the CPU device: every slice of a batch holds the
// frames a CpuVideoDecoder returns for the same request (uint8, or float32 bitwise uint8 / 255; from
// files or ByteSources), batches come back in the order asked for while later ones decode ahead,
// errors name the file and fail only their batch, malformed batches are refused, stats count frames
// per backend. Plus the device layer (decode/decoder_factory.h):
// parsing, and CUDA requests without a usable GPU raising CudaUnavailable.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "decode/decode_stage.h"
#include "decode/decoder_factory.h"
#include "test_media.h"

namespace {

using lrs::BatchRequest;
using lrs::CameraShape;
using lrs::DecodeStage;
using lrs::DecodeStageOptions;
using lrs::FrameRequest;
using lrs::test::ClipSpec;

struct Camera {
  std::string path;
  int num_frames;
  int fps;
};

std::vector<Camera> two_cameras() {
  ClipSpec a;  // H.264 with B-frames
  ClipSpec b;
  b.encoder = "libsvtav1";
  b.gop = 2;
  b.num_frames = 45;
  return {{lrs::test::clip_path(a), a.num_frames, a.fps}, {lrs::test::clip_path(b), b.num_frames, b.fps}};
}

// A batch of `batch_size` samples, `frames` timestamps per camera, random frames (with repeats).
BatchRequest random_batch(const std::vector<Camera>& cams, int64_t batch_size, int64_t frames, std::mt19937& gen) {
  BatchRequest b;
  b.batch_size = batch_size;
  for (size_t c = 0; c < cams.size(); ++c) b.cameras.push_back(CameraShape{frames, 64, 64});
  for (int64_t s = 0; s < batch_size; ++s) {
    for (size_t c = 0; c < cams.size(); ++c) {
      FrameRequest r{static_cast<int>(c), s, cams[c].path, {}};
      std::uniform_int_distribution<int> pick(0, cams[c].num_frames - 1);
      for (int64_t t = 0; t < frames; ++t) r.timestamps_s.push_back(static_cast<double>(pick(gen)) / cams[c].fps);
      b.requests.push_back(std::move(r));
    }
  }
  std::shuffle(b.requests.begin(), b.requests.end(), gen);  // the order of requests does not matter
  return b;
}

void expect_slices_equal_decoder(const BatchRequest& b, const std::vector<lrs::FrameBatch>& out) {
  ASSERT_EQ(out.size(), b.cameras.size());
  for (const FrameRequest& r : b.requests) {
    lrs::av::CpuVideoDecoder reference(r.source.name());  // the file itself, also for a ByteSource of it
    const lrs::FrameBatch expected = reference.get_frames_at(r.timestamps_s, 1e-4, b.dtype);
    const lrs::FrameBatch& got = out[static_cast<size_t>(r.camera)];
    ASSERT_EQ(got.dtype, b.dtype);
    ASSERT_EQ(got.num_frames, b.batch_size * b.cameras[r.camera].frames_per_sample);
    const uint8_t* slice = got.data + r.sample * b.cameras[r.camera].frames_per_sample * got.frame_bytes();
    EXPECT_EQ(std::memcmp(slice, expected.data, static_cast<size_t>(expected.size_bytes())), 0)
        << "camera " << r.camera << " sample " << r.sample;
  }
}

DecodeStageOptions cpu_options(int threads, int ahead) {
  DecodeStageOptions o;
  o.threads = threads;
  o.max_batches_ahead = ahead;
  o.cache_capacity = 8;  // >= files x threads: no eviction, so every open is a first open
  return o;
}

TEST(DecodeStage, SlicesEqualTheCpuDecoderAndBatchesComeBackInOrder) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(3, 3));
  std::mt19937 gen(11);
  std::vector<BatchRequest> sent;
  std::vector<int64_t> tickets;
  for (int i = 0; i < 3; ++i) {  // three batches in flight before the first is taken
    sent.push_back(random_batch(cams, 5, 1 + i, gen));
    tickets.push_back(stage.submit(sent.back()));
  }
  for (int i = 0; i < 6; ++i) {
    const auto out = stage.take(tickets[static_cast<size_t>(i)]);
    expect_slices_equal_decoder(sent[static_cast<size_t>(i)], out);
    if (i + 3 < 6) {
      sent.push_back(random_batch(cams, 4, 3, gen));
      tickets.push_back(stage.submit(sent.back()));
    }
  }
  const auto stats = stage.stats();
  EXPECT_EQ(stats.batches_submitted, 6);
  EXPECT_EQ(stats.batches_taken, 6);
  int64_t frames = 0;
  for (const auto& b : sent) {
    for (const auto& r : b.requests) frames += static_cast<int64_t>(r.timestamps_s.size());
  }
  EXPECT_EQ(stats.frames, frames);
  EXPECT_EQ(stats.frames_by_backend.at("cpu"), frames);
  // Decoders are reused; threads may decode one file at once, each with its own decoder of it.
  const int64_t opened = stats.cache.opened_by_backend.at("cpu");
  EXPECT_GE(opened, 2);
  EXPECT_LE(opened, 2 * 3);
  int64_t requests = 0;
  for (const auto& b : sent) requests += static_cast<int64_t>(b.requests.size());
  EXPECT_EQ(stats.cache.hits + stats.cache.misses, requests);
}

TEST(DecodeStage, FloatBatchesAreTheDecodersFloatFramesBitwise) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(2, 2));
  std::mt19937 gen(17);
  BatchRequest b = random_batch(cams, 4, 3, gen);
  b.dtype = lrs::PixelType::kFloat32;
  const auto out = stage.take(stage.submit(b));
  expect_slices_equal_decoder(b, out);
  // and those are the uint8 frames / 255 (Note [Float frames]), so nothing else needs to convert
  BatchRequest bytes = b;
  bytes.dtype = lrs::PixelType::kUInt8;
  const auto u8 = stage.take(stage.submit(bytes));
  for (size_t c = 0; c < out.size(); ++c) {
    const auto* f = reinterpret_cast<const float*>(out[c].data);
    const int64_t n = out[c].size_bytes() / 4;
    ASSERT_EQ(n, u8[c].size_bytes());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f[i], static_cast<float>(u8[c].data[i]) / 255.0f) << i;
  }
}

// A camera whose video is a ByteSource (here: the whole file in memory, as a remote file's fetched
// bytes would be) decodes through the stage like the file.
TEST(DecodeStage, DecodesByteSourcesLikeTheirFiles) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(2, 2));
  std::mt19937 gen(23);
  BatchRequest b = random_batch(cams, 3, 2, gen);
  const std::string bytes = lrs::test::read_file(cams[1].path);
  const auto all = std::make_shared<const std::string>(bytes);
  const auto size = static_cast<int64_t>(bytes.size());
  // Named like the file, so the reference decodes the file itself.
  const lrs::VideoSource memory(std::make_shared<lrs::av::ByteSource>(
      cams[1].path, size, std::vector<lrs::av::BytePiece>{{0, size, lrs::av::PieceBacking::memory(all, 0)}}));
  for (FrameRequest& r : b.requests) {
    if (r.camera == 1) r.source = memory;
  }
  expect_slices_equal_decoder(b, stage.take(stage.submit(b)));
}

TEST(DecodeStage, AnErrorNamesTheFileAndFailsOnlyItsBatch) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(2, 2));
  std::mt19937 gen(3);
  BatchRequest bad = random_batch(cams, 3, 2, gen);
  bad.requests[1].source = "/nonexistent/clip.mp4";
  const int64_t t_bad = stage.submit(bad);
  const BatchRequest good = random_batch(cams, 3, 2, gen);
  const int64_t t_good = stage.submit(good);
  try {
    stage.take(t_bad);
    FAIL() << "expected FileNotFound";
  } catch (const lrs::FileNotFound& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/clip.mp4"), std::string::npos) << e.what();
  }
  expect_slices_equal_decoder(good, stage.take(t_good));
  EXPECT_THROW(stage.take(t_bad), lrs::InvalidInput);  // already taken
}

TEST(DecodeStage, TimestampWithoutAFrameRaisesFrameTimestampError) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(1, 1));
  std::mt19937 gen(5);
  BatchRequest b = random_batch(cams, 2, 1, gen);
  b.requests[0].timestamps_s[0] = 1000.0;
  const int64_t t = stage.submit(b);
  EXPECT_THROW(stage.take(t), lrs::FrameTimestampError);
}

TEST(DecodeStage, FramesOfAnotherSizeThanTheCameraNameTheFile) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(1, 1));
  std::mt19937 gen(5);
  BatchRequest b = random_batch(cams, 1, 1, gen);
  b.cameras[0].width = 32;
  const int64_t t = stage.submit(b);
  try {
    stage.take(t);
    FAIL() << "expected InvalidInput";
  } catch (const lrs::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(cams[0].path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("64x64"), std::string::npos) << e.what();
  }
}

TEST(DecodeStage, RefusesBatchesThatDoNotCoverEverySampleOnce) {
  const auto cams = two_cameras();
  DecodeStage stage(cpu_options(1, 1));
  std::mt19937 gen(9);
  BatchRequest missing = random_batch(cams, 3, 1, gen);
  missing.requests.pop_back();
  EXPECT_THROW(stage.submit(missing), lrs::InvalidInput);
  BatchRequest twice = random_batch(cams, 3, 1, gen);
  twice.requests.push_back(twice.requests.front());
  EXPECT_THROW(stage.submit(twice), lrs::InvalidInput);
  BatchRequest short_window = random_batch(cams, 3, 2, gen);
  short_window.requests[2].timestamps_s.pop_back();
  EXPECT_THROW(stage.submit(short_window), lrs::InvalidInput);
  // Nothing was queued: the stage still serves a good batch.
  const BatchRequest good = random_batch(cams, 2, 1, gen);
  expect_slices_equal_decoder(good, stage.take(stage.submit(good)));
}

TEST(DecodeStage, RejectsBadOptions) {
  EXPECT_THROW(DecodeStage(cpu_options(0, 1)), lrs::InvalidInput);
  EXPECT_THROW(DecodeStage(cpu_options(1, 0)), lrs::InvalidInput);
}

TEST(DecoderFactory, ParsesDevicesAndBackends) {
  EXPECT_EQ(lrs::parse_decode_device("cpu").kind, lrs::DeviceKind::kCPU);
  EXPECT_EQ(lrs::parse_decode_device("cuda").kind, lrs::DeviceKind::kCUDA);
  EXPECT_EQ(lrs::parse_decode_device("cuda").index, 0);
  EXPECT_EQ(lrs::parse_decode_device("cuda:3").index, 3);
  EXPECT_EQ(lrs::parse_decode_device("cuda:3").str(), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "CUDA", "cuda:1x", ""}) {
    EXPECT_THROW(lrs::parse_decode_device(bad), lrs::InvalidInput) << bad;
  }
  EXPECT_EQ(lrs::parse_cuda_backend("auto"), lrs::CudaBackend::kAuto);
  EXPECT_EQ(lrs::parse_cuda_backend("nvdec"), lrs::CudaBackend::kNvdec);
  EXPECT_EQ(lrs::parse_cuda_backend("cpu->cuda"), lrs::CudaBackend::kHybrid);
  EXPECT_THROW(lrs::parse_cuda_backend("hybrid"), lrs::InvalidInput);
}

TEST(DecoderFactory, CudaWithoutAUsableGpuRaisesCudaUnavailable) {
  const lrs::DecodeDevice cuda = lrs::parse_decode_device("cuda");
  try {
    lrs::require_device(cuda);
    GTEST_SKIP() << "a GPU is usable here; this checks the no-GPU errors";
  } catch (const lrs::CudaUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("unavailable"), std::string::npos) << e.what();
  }
  const std::string clip = lrs::test::clip_path(ClipSpec{});
  for (lrs::CudaBackend backend : {lrs::CudaBackend::kAuto, lrs::CudaBackend::kHybrid}) {
    lrs::DecoderOptions options;
    options.device = cuda;
    options.cuda_backend = backend;
    EXPECT_THROW(lrs::open_decoder(clip, options), lrs::CudaUnavailable);
  }
  DecodeStageOptions o = cpu_options(1, 1);
  o.decoder.device = cuda;
  EXPECT_THROW(DecodeStage{o}, lrs::CudaUnavailable);
  DecodeStageOptions pinned = cpu_options(1, 1);
  pinned.pin_memory = true;  // pinned host memory needs the driver too
  EXPECT_THROW(DecodeStage{pinned}, lrs::CudaUnavailable);
}

}  // namespace
