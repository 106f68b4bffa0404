// Contracts of cpp/sampling/epoch_plan.h: every frame exactly once per epoch across consumers
// (but a remainder < C), equal per-consumer counts, contiguous slices of the permuted frame
// sequence, per-(seed, epoch) permutations that are reproducible and change between epochs.
#include "sampling/epoch_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/errors.h"

namespace lrs::sampling {
namespace {

using Frame = std::pair<int64_t, int64_t>;  // (episode_pos, frame offset)

std::vector<Frame> frames_of(const std::vector<Segment>& segments) {
  std::vector<Frame> out;
  for (const Segment& s : segments)
    for (int64_t f = s.begin; f < s.end; ++f) out.emplace_back(s.episode_pos, f);
  return out;
}

// The whole epoch as one sequence: the episodes in epoch order, each one's frames ascending.
std::vector<Frame> permuted_sequence(const EpochPlan& plan, int64_t epoch) {
  std::vector<Frame> out;
  for (int64_t pos : plan.episode_order(epoch))
    for (int64_t f = 0; f < plan.inputs().episode_lengths[static_cast<size_t>(pos)]; ++f)
      out.emplace_back(pos, f);
  return out;
}

std::vector<std::vector<int64_t>> length_sets() {
  return {{1}, {5}, {3, 1, 4, 1, 5, 9, 2, 6}, {100, 1, 1, 37}, {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
          {2, 3}, {50, 60, 70}};
}

TEST(EpochPlan, EveryFrameExactlyOnceAcrossConsumersButARemainderBelowC) {
  for (const auto& lengths : length_sets()) {
    for (int64_t consumers = 1; consumers <= 17; ++consumers) {  // includes C > episodes and C > N
      for (bool shuffle : {true, false}) {
        const EpochPlan plan(PlanInputs{lengths, 11, shuffle}, consumers);
        const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
        ASSERT_EQ(plan.total_frames(), total);
        ASSERT_LT(plan.dropped_per_epoch(), consumers);
        for (int64_t epoch : {0, 1, 5}) {
          const std::vector<Frame> sequence = permuted_sequence(plan, epoch);
          std::set<Frame> seen;
          for (int64_t c = 0; c < consumers; ++c) {
            const std::vector<Frame> mine = frames_of(plan.segments(epoch, c));
            ASSERT_EQ(static_cast<int64_t>(mine.size()), plan.samples_per_consumer()) << "consumer " << c;
            // Consumer c's frames are the slice [c*n, (c+1)*n) of the permuted sequence.
            const auto n = static_cast<size_t>(plan.samples_per_consumer());
            ASSERT_TRUE(std::equal(mine.begin(), mine.end(), sequence.begin() + static_cast<ptrdiff_t>(c * n)));
            for (const Frame& f : mine) ASSERT_TRUE(seen.insert(f).second) << "frame read twice";
          }
          // Exactly the frames of the sequence's tail are missing, fewer than C of them.
          const auto kept = static_cast<size_t>(plan.samples_per_consumer() * consumers);
          ASSERT_EQ(seen.size(), kept);
          ASSERT_EQ(static_cast<int64_t>(sequence.size() - kept), plan.dropped_per_epoch());
          for (size_t i = kept; i < sequence.size(); ++i) ASSERT_EQ(seen.count(sequence[i]), 0u);
        }
      }
    }
  }
}

TEST(EpochPlan, SegmentsAreNonEmptyRangesInsideTheirEpisode) {
  const std::vector<int64_t> lengths = {3, 1, 4, 1, 5, 9, 2, 6};
  const EpochPlan plan(PlanInputs{lengths, 3, true}, 4);
  for (int64_t c = 0; c < 4; ++c) {
    for (const Segment& s : plan.segments(2, c)) {
      EXPECT_GE(s.begin, 0);
      EXPECT_LT(s.begin, s.end);
      EXPECT_LE(s.end, lengths[static_cast<size_t>(s.episode_pos)]);
    }
  }
}

TEST(EpochPlan, PermutationIsReproducibleAndChangesWithEpochAndSeed) {
  std::vector<int64_t> lengths(30);
  std::iota(lengths.begin(), lengths.end(), int64_t{1});
  const EpochPlan a(PlanInputs{lengths, 42, true}, 3);
  const EpochPlan b(PlanInputs{lengths, 42, true}, 5);  // the order does not depend on C
  const EpochPlan other_seed(PlanInputs{lengths, 43, true}, 3);
  std::set<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 8; ++epoch) {
    const std::vector<int64_t> order = a.episode_order(epoch);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> identity(lengths.size());
    std::iota(identity.begin(), identity.end(), int64_t{0});
    ASSERT_EQ(sorted, identity) << "not a permutation";
    EXPECT_EQ(order, b.episode_order(epoch));
    EXPECT_EQ(order, EpochPlan(PlanInputs{lengths, 42, true}, 3).episode_order(epoch));
    EXPECT_NE(order, other_seed.episode_order(epoch));
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 8u) << "every epoch has its own order";
}

TEST(EpochPlan, DroppedRemainderChangesBetweenEpochsWhenShuffling) {
  const std::vector<int64_t> lengths = {10, 11, 12, 13, 14, 15, 16, 17};  // N = 108, C = 5: r = 3
  const EpochPlan plan(PlanInputs{lengths, 1, true}, 5);
  ASSERT_EQ(plan.dropped_per_epoch(), 3);
  std::set<std::vector<Frame>> dropped;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    const std::vector<Frame> seq = permuted_sequence(plan, epoch);
    dropped.insert(std::vector<Frame>(seq.end() - 3, seq.end()));
  }
  EXPECT_GT(dropped.size(), 1u);
}

TEST(EpochPlan, NoShuffleKeepsDatasetOrder) {
  const std::vector<int64_t> lengths = {4, 2, 3};
  const EpochPlan plan(PlanInputs{lengths, 9, false}, 2);
  for (int64_t epoch : {0, 3}) {
    EXPECT_EQ(plan.episode_order(epoch), (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(plan.segments(epoch, 0), (std::vector<Segment>{{0, 0, 4}}));
    EXPECT_EQ(plan.segments(epoch, 1), (std::vector<Segment>{{1, 0, 2}, {2, 0, 2}}));
  }
}

TEST(EpochPlan, ConsumerIdsEnumerateRanksTimesWorkers) {
  for (int64_t world = 1; world <= 4; ++world) {
    for (int64_t num_workers = 0; num_workers <= 3; ++num_workers) {
      const int64_t workers = std::max<int64_t>(num_workers, 1);
      std::set<int64_t> ids;
      for (int64_t rank = 0; rank < world; ++rank)
        for (int64_t w = 0; w < workers; ++w) ids.insert(consumer_id(rank, world, w, num_workers));
      ASSERT_EQ(static_cast<int64_t>(ids.size()), world * workers);
      EXPECT_EQ(*ids.begin(), 0);
      EXPECT_EQ(*ids.rbegin(), world * workers - 1);
    }
  }
  EXPECT_EQ(consumer_id(1, 2, 2, 3), 5);
}

TEST(EpochPlan, RejectsBadArgumentsNamingThem) {
  const auto message_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const InvalidInput& e) {
      return e.what();
    }
    return "no InvalidInput";
  };
  EXPECT_NE(message_of([] { EpochPlan(PlanInputs{{3, 0, 2}, 0, true}, 1); }).find("episode_lengths[1]"),
            std::string::npos);
  EXPECT_NE(message_of([] { EpochPlan(PlanInputs{{3}, 0, true}, 0); }).find("num_consumers"), std::string::npos);
  EXPECT_NE(message_of([] { EpochPlan(PlanInputs{{INT64_MAX, 1}, 0, true}, 1); }).find("overflows"),
            std::string::npos);
  const EpochPlan plan(PlanInputs{{3, 4}, 0, true}, 2);
  EXPECT_NE(message_of([&] { plan.segments(0, 2); }).find("consumer"), std::string::npos);
  EXPECT_NE(message_of([&] { plan.segments(-1, 0); }).find("epoch"), std::string::npos);
  EXPECT_NE(message_of([&] { plan.episode_order(-1); }).find("epoch"), std::string::npos);
  EXPECT_NE(message_of([] { consumer_id(2, 2, 0, 1); }).find("rank"), std::string::npos);
  EXPECT_NE(message_of([] { consumer_id(0, 0, 0, 1); }).find("world_size"), std::string::npos);
  EXPECT_NE(message_of([] { consumer_id(0, 1, 1, 0); }).find("worker"), std::string::npos);
  EXPECT_NE(message_of([] { consumer_id(0, 1, 0, -1); }).find("num_workers"), std::string::npos);
  // An empty selection is a valid plan that reads nothing.
  const EpochPlan empty(PlanInputs{{}, 0, true}, 3);
  EXPECT_EQ(empty.total_frames(), 0);
  EXPECT_TRUE(empty.segments(0, 2).empty());
}

}  // namespace
}  // namespace lrs::sampling
