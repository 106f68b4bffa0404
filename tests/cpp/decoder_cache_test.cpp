// DecoderCache contracts: LRU order, stats, failed opens cache nothing, concurrent use is safe.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"
#include "test_media.h"

namespace {

using lrs::DecoderCache;
using lrs::test::ClipSpec;

lrs::DecoderFactory cpu_factory(std::atomic<int>* opens = nullptr) {
  return [opens](const lrs::VideoSource& source) {
    if (opens) ++*opens;
    return std::make_unique<lrs::av::CpuVideoDecoder>(source);
  };
}

std::vector<std::string> three_clips() {
  std::vector<std::string> paths;
  for (int frames : {30, 31, 32}) {
    ClipSpec s;
    s.num_frames = frames;
    paths.push_back(lrs::test::clip_path(s));
  }
  return paths;
}

TEST(DecoderCache, DefaultCapacityIsPoolWorkingSetCappedAt128) {
  EXPECT_EQ(lrs::default_decoder_cache_capacity(4, 2), 10);
  EXPECT_EQ(lrs::default_decoder_cache_capacity(64, 3), 128);
  EXPECT_EQ(lrs::default_decoder_cache_capacity(0, 0), 2);
}

TEST(DecoderCache, EvictsLeastRecentlyUsedAndCountsHitsMissesEvictions) {
  const auto p = three_clips();
  std::atomic<int> opens = 0;
  DecoderCache cache(2, cpu_factory(&opens));
  const std::vector<double> t = {0.0};
  cache.get_frames_at(p[0], t, 1e-4);  // miss
  cache.get_frames_at(p[1], t, 1e-4);  // miss
  cache.get_frames_at(p[0], t, 1e-4);  // hit: p[0] most recent, p[1] least
  cache.get_frames_at(p[2], t, 1e-4);  // miss, evicts p[1]
  cache.get_frames_at(p[0], t, 1e-4);  // hit
  cache.get_frames_at(p[1], t, 1e-4);  // miss (was evicted), evicts p[2]
  const lrs::DecoderCacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 2);
  EXPECT_EQ(s.misses, 4);
  EXPECT_EQ(s.evictions, 2);
  EXPECT_EQ(s.open_decoders, 2);
  EXPECT_EQ(s.capacity, 2);
  EXPECT_EQ(opens.load(), 4);
  cache.clear();
  EXPECT_EQ(cache.stats().open_decoders, 0);
}

TEST(DecoderCache, FailedOpenCachesNothingAndRethrows) {
  DecoderCache cache(4, cpu_factory());
  const std::vector<double> t = {0.0};
  EXPECT_THROW(cache.get_frames_at("/nonexistent/video.mp4", t, 1e-4), lrs::FileNotFound);
  EXPECT_EQ(cache.stats().open_decoders, 0);
  EXPECT_THROW(cache.get_frames_at("/nonexistent/video.mp4", t, 1e-4), lrs::FileNotFound);
  EXPECT_EQ(cache.stats().misses, 2);
}

TEST(DecoderCache, ByteBoundEvictsLeastRecentlyUsedButKeepsTheNewest) {
  const auto p = three_clips();  // 64x64 clips: one decoder's estimate is the same for each
  DecoderCache probe(8, cpu_factory());
  const std::vector<double> t = {0.0};
  probe.get_frames_at(p[0], t, 1e-4);
  const int64_t one = probe.stats().bytes;
  ASSERT_GT(one, 0);

  DecoderCache cache(8, cpu_factory(), 2 * one);
  cache.get_frames_at(p[0], t, 1e-4);
  cache.get_frames_at(p[1], t, 1e-4);
  EXPECT_EQ(cache.stats().open_decoders, 2);
  cache.get_frames_at(p[0], t, 1e-4);  // p[1] is now least recently used
  cache.get_frames_at(p[2], t, 1e-4);  // over the byte bound: p[1] goes
  lrs::DecoderCacheStats s = cache.stats();
  EXPECT_EQ(s.open_decoders, 2);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_LE(s.bytes, s.max_bytes);
  cache.get_frames_at(p[0], t, 1e-4);
  EXPECT_EQ(cache.stats().hits, 2);  // p[0] survived

  DecoderCache tiny(8, cpu_factory(), 1);  // smaller than one decoder: the newest still stays
  tiny.get_frames_at(p[0], t, 1e-4);
  tiny.get_frames_at(p[1], t, 1e-4);
  EXPECT_EQ(tiny.stats().open_decoders, 1);
  EXPECT_THROW(DecoderCache(8, cpu_factory(), -1), lrs::InvalidInput);
}

TEST(DecoderCache, RejectsZeroCapacity) { EXPECT_THROW(DecoderCache(0, cpu_factory()), lrs::InvalidInput); }

TEST(DecoderCache, SeveralDecodersOfOneFileWhenAllowed) {
  const auto p = three_clips();
  std::atomic<int> opens = 0;
  DecoderCache cache(4, cpu_factory(&opens), 0, /*max_decoders_per_file=*/2);
  {
    DecoderCache::Lease first = cache.lease(p[0]);
    DecoderCache::Lease second = cache.lease(p[0]);  // the first is busy: a second decoder opens
    EXPECT_NE(&first.decoder(), &second.decoder());
    EXPECT_EQ(opens.load(), 2);
  }
  DecoderCache::Lease again = cache.lease(p[0]);  // both idle now: one is reused
  EXPECT_EQ(opens.load(), 2);
  const lrs::DecoderCacheStats s = cache.stats();
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.open_decoders, 2);
  EXPECT_EQ(s.opened_by_backend.at("cpu"), 2);
  EXPECT_THROW(DecoderCache(4, cpu_factory(), 0, 0), lrs::InvalidInput);
}

TEST(DecoderCache, ABusyFileBeyondItsLimitWaitsForItsDecoder) {
  const auto p = three_clips();
  std::atomic<int> opens = 0;
  DecoderCache cache(4, cpu_factory(&opens));  // one decoder per file
  std::atomic<bool> got = false;
  std::thread other;
  {
    DecoderCache::Lease held = cache.lease(p[1]);
    other = std::thread([&] {
      DecoderCache::Lease waited = cache.lease(p[1]);
      got = true;
    });
    EXPECT_FALSE(got.load());  // it cannot have the decoder while `held` lives
  }
  other.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(opens.load(), 1);
}

TEST(DecoderCache, ConcurrentDecodesReturnTheRightFrames) {
  const auto p = three_clips();
  DecoderCache cache(2, cpu_factory());
  std::atomic<int> wrong = 0;
  std::atomic<int> calls = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        const std::string& path = p[(t + i) % 3];
        const int64_t frame = (7 * t + 3 * i) % 30;
        const std::vector<double> ts = {static_cast<double>(frame) / 30.0};
        const lrs::FrameBatch b = cache.get_frames_at(path, ts, 1e-4);
        ++calls;
        if (lrs::test::read_frame_index(b.data, static_cast<int>(b.height), static_cast<int>(b.width)) != frame) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  const lrs::DecoderCacheStats s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, calls.load());
  EXPECT_LE(s.open_decoders, 2);
}

}  // namespace
