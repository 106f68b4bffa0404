// Contracts of cpp/sampling/consumer_schedule.h: the consumers' schedules together read exactly
// the epoch plan (each frame once), draws are without replacement and uniform over the pool, the
// pool never exceeds pool_size, skip(k) equals drawing k, pool events are consistent with the
// samples, shuffle=false is sequential, and bad arguments raise typed errors.
#include "sampling/consumer_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "chi_square.h"
#include "common/errors.h"
#include "schedule_helpers.h"

namespace lrs::sampling {
namespace {

using test::drain;
using test::Frame;
using test::frames_of;

const std::vector<int64_t> kLengths = {13, 1, 40, 7, 22, 3, 3, 30, 9, 16, 2};  // N = 146

TEST(ConsumerSchedule, ConsumersTogetherReadThePlanExactlyOnce) {
  for (int64_t world = 1; world <= 4; ++world) {
    for (int64_t num_workers = 0; num_workers <= 3; ++num_workers) {
      const int64_t workers = std::max<int64_t>(num_workers, 1);
      for (bool shuffle : {true, false}) {
        const PlanInputs inputs{kLengths, 5, shuffle};
        const EpochPlan plan(inputs, world * workers);
        for (int64_t epoch : {0, 1}) {
          std::set<Frame> seen;
          for (int64_t rank = 0; rank < world; ++rank) {
            for (int64_t w = 0; w < workers; ++w) {
              ConsumerSchedule s(inputs, epoch, rank, world, w, num_workers, 3);
              const std::vector<Frame> got = drain(s);
              ASSERT_EQ(static_cast<int64_t>(got.size()), plan.samples_per_consumer());
              ASSERT_EQ(s.total(), plan.samples_per_consumer());
              ASSERT_EQ(s.remaining(), 0);
              // The same frames as the plan's slice, each once (without replacement).
              std::vector<Frame> expected = frames_of(plan.segments(epoch, consumer_id(rank, world, w, num_workers)));
              std::vector<Frame> sorted = got;
              std::sort(sorted.begin(), sorted.end());
              std::sort(expected.begin(), expected.end());
              ASSERT_EQ(sorted, expected);
              for (const Frame& f : got) ASSERT_TRUE(seen.insert(f).second) << "frame read twice";
            }
          }
          ASSERT_EQ(static_cast<int64_t>(seen.size()), plan.total_frames() - plan.dropped_per_epoch());
        }
      }
    }
  }
}

TEST(ConsumerSchedule, NoShuffleIsSequentialWhateverThePoolSize) {
  const PlanInputs inputs{kLengths, 5, false};
  for (int64_t pool : {1, 2, 64}) {
    ConsumerSchedule s(inputs, 3, 1, 2, 0, 0, pool);
    const EpochPlan plan(inputs, 2);
    EXPECT_EQ(drain(s), frames_of(plan.segments(3, 1))) << "pool " << pool;
  }
}

TEST(ConsumerSchedule, ShuffleDependsOnSeedEpochAndConsumerAndIsReproducible) {
  const auto run = [](uint64_t seed, int64_t epoch, int64_t pool) {
    ConsumerSchedule s(PlanInputs{kLengths, seed, true}, epoch, 0, 1, 0, 0, pool);
    return drain(s);
  };
  const std::vector<Frame> base = run(5, 0, 4);
  EXPECT_EQ(base, run(5, 0, 4));
  EXPECT_NE(base, run(6, 0, 4));
  EXPECT_NE(base, run(5, 1, 4));
  ConsumerSchedule seq(PlanInputs{kLengths, 5, false}, 0, 0, 1, 0, 0, 4);
  EXPECT_NE(base, drain(seq)) << "shuffle=true came out sequential";

  // Pool of one segment: episodes are not interleaved, frames inside one are shuffled.
  const std::vector<Frame> single = run(5, 0, 1);
  std::set<int64_t> finished;
  for (size_t i = 1; i < single.size(); ++i) {
    if (single[i].first != single[i - 1].first) {
      ASSERT_TRUE(finished.insert(single[i - 1].first).second) << "episode revisited with pool 1";
    }
  }
}

TEST(ConsumerSchedule, PoolBoundAndEventsMatchTheSamples) {
  for (int64_t pool_size : {1, 2, 3, 5, 64}) {
    const PlanInputs inputs{kLengths, 8, true};
    ConsumerSchedule s(inputs, 2, 0, 2, 1, 2, pool_size);  // consumer 1 of 4
    const std::vector<Segment> planned = EpochPlan(inputs, 4).segments(2, 1);
    std::vector<Segment> loaded = s.take_admitted();  // the constructor admits the initial pool
    EXPECT_TRUE(s.take_evicted().empty());
    std::vector<Segment> all_admitted = loaded, all_evicted;
    std::vector<int64_t> drawn(planned.size());
    std::vector<int64_t> ep(1), fr(1);
    for (int64_t batch : {1, 1, 4, 9, 2, 1000}) {
      ep.assign(static_cast<size_t>(batch), 0);
      fr.assign(static_cast<size_t>(batch), 0);
      const int64_t k = s.next(ep, fr);
      const std::vector<Segment> admitted = s.take_admitted();
      all_admitted.insert(all_admitted.end(), admitted.begin(), admitted.end());
      loaded.insert(loaded.end(), admitted.begin(), admitted.end());
      // Every sample comes from a loaded segment.
      for (int64_t i = 0; i < k; ++i) {
        const auto it = std::find_if(loaded.begin(), loaded.end(), [&](const Segment& g) {
          return g.episode_pos == ep[static_cast<size_t>(i)] && g.begin <= fr[static_cast<size_t>(i)] &&
                 fr[static_cast<size_t>(i)] < g.end;
        });
        ASSERT_NE(it, loaded.end()) << "sample from a segment that was never admitted";
        const auto idx = static_cast<size_t>(
            std::find(planned.begin(), planned.end(), *it) - planned.begin());
        ++drawn[idx];
      }
      // Evicted segments are exactly those whose frames are all drawn.
      for (const Segment& g : s.take_evicted()) {
        const auto idx = static_cast<size_t>(std::find(planned.begin(), planned.end(), g) - planned.begin());
        ASSERT_EQ(drawn[idx], g.size()) << "evicted before its last frame";
        loaded.erase(std::find(loaded.begin(), loaded.end(), g));
        all_evicted.push_back(g);
      }
      EXPECT_EQ(s.pool(), loaded) << "pool() = admitted minus evicted, in admission order";
      EXPECT_LE(static_cast<int64_t>(s.pool().size()), pool_size);
      for (size_t i = 0; i < planned.size(); ++i) {
        const bool in_pool = std::find(loaded.begin(), loaded.end(), planned[i]) != loaded.end();
        if (in_pool) {
          EXPECT_LT(drawn[i], planned[i].size()) << "exhausted segment still in the pool";
        }
      }
    }
    EXPECT_EQ(s.remaining(), 0);
    EXPECT_EQ(all_admitted, planned) << "segments are admitted in plan order";
    std::vector<Segment> evicted_sorted = all_evicted, planned_sorted = planned;
    const auto by_pos = [](const Segment& a, const Segment& b) { return a.episode_pos < b.episode_pos; };
    std::sort(evicted_sorted.begin(), evicted_sorted.end(), by_pos);
    std::sort(planned_sorted.begin(), planned_sorted.end(), by_pos);
    EXPECT_EQ(evicted_sorted, planned_sorted) << "every segment evicted once";
  }
}

TEST(ConsumerSchedule, SkipEqualsDrawingAndDiscarding) {
  const PlanInputs inputs{kLengths, 21, true};
  const int64_t total = ConsumerSchedule(inputs, 1, 1, 3, 0, 1, 3).total();
  for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{13}, total / 2, total - 1, total}) {
    ConsumerSchedule drawn(inputs, 1, 1, 3, 0, 1, 3);
    ConsumerSchedule skipped(inputs, 1, 1, 3, 0, 1, 3);
    std::vector<int64_t> ep(static_cast<size_t>(k)), fr(static_cast<size_t>(k));
    ASSERT_EQ(drawn.next(ep, fr), k);
    skipped.skip(k);
    EXPECT_EQ(skipped.emitted(), k);
    EXPECT_EQ(skipped.pool(), drawn.pool());
    EXPECT_EQ(skipped.take_admitted(), drawn.take_admitted());
    EXPECT_EQ(skipped.take_evicted(), drawn.take_evicted());
    EXPECT_EQ(drain(skipped), drain(drawn)) << "k=" << k;
  }
  // Skips in pieces equal one skip.
  ConsumerSchedule pieces(inputs, 1, 1, 3, 0, 1, 3), whole(inputs, 1, 1, 3, 0, 1, 3);
  pieces.skip(3);
  pieces.skip(0);
  pieces.skip(8);
  whole.skip(11);
  EXPECT_EQ(drain(pieces), drain(whole));
}

TEST(ConsumerSchedule, DrawsAreUniformOverThePool) {
  // One consumer whose whole epoch fits in the pool: the first draw is uniform over all frames,
  // checked over many seeds.
  const std::vector<int64_t> lengths = {3, 5, 2, 6};  // 16 frames
  std::map<Frame, int64_t> first;
  for (uint64_t seed = 0; seed < 16000; ++seed) {
    ConsumerSchedule s(PlanInputs{lengths, seed, true}, 0, 0, 1, 0, 0, 8);
    std::vector<int64_t> ep(1), fr(1);
    s.next(ep, fr);
    ++first[{ep[0], fr[0]}];
  }
  ASSERT_EQ(first.size(), 16u);
  std::vector<int64_t> counts;
  for (const auto& [frame, count] : first) counts.push_back(count);
  EXPECT_LT(test::chi_square_uniform(counts), test::chi_square_critical(15));
}

TEST(ConsumerSchedule, NextAfterTheEndReturnsNothing) {
  ConsumerSchedule s(PlanInputs{{4}, 0, true}, 0, 0, 1, 0, 0, 2);
  EXPECT_EQ(drain(s).size(), 4u);
  std::vector<int64_t> ep(3), fr(3);
  EXPECT_EQ(s.next(ep, fr), 0);
  s.skip(0);
  // More consumers than frames: everybody gets zero samples.
  ConsumerSchedule idle(PlanInputs{{2}, 0, true}, 0, 2, 3, 0, 0, 2);
  EXPECT_EQ(idle.total(), 0);
  EXPECT_TRUE(idle.pool().empty());
  EXPECT_EQ(idle.next(ep, fr), 0);
}

TEST(ConsumerSchedule, RejectsBadArguments) {
  const PlanInputs inputs{kLengths, 0, true};
  EXPECT_THROW(ConsumerSchedule(inputs, 0, 0, 1, 0, 0, 0), InvalidInput);
  EXPECT_THROW(ConsumerSchedule(inputs, -1, 0, 1, 0, 0, 4), InvalidInput);
  EXPECT_THROW(ConsumerSchedule(inputs, 0, 1, 1, 0, 0, 4), InvalidInput);
  EXPECT_THROW(ConsumerSchedule(inputs, 0, 0, 1, 2, 2, 4), InvalidInput);
  EXPECT_THROW(ConsumerSchedule(PlanInputs{{3, -2}, 0, true}, 0, 0, 1, 0, 0, 4), InvalidInput);
  ConsumerSchedule s(inputs, 0, 0, 1, 0, 0, 4);
  EXPECT_THROW(s.skip(-1), InvalidInput);
  EXPECT_THROW(s.skip(s.total() + 1), OutOfRange);
  std::vector<int64_t> a(2), b(3);
  EXPECT_THROW(s.next(a, b), InvalidInput);
  EXPECT_EQ(s.emitted(), 0) << "a failed call changes nothing";
}

}  // namespace
}  // namespace lrs::sampling
