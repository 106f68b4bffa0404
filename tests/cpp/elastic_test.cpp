// Contracts of cpp/sampling/elastic.h: consumed_samples equals a simulated DataLoader's round
// robin; the replay leaves exactly the frames the interrupted consumers did not emit (brute force:
// drain every old consumer and drop what the trainer received), in canonical order with one piece
// per episode, also after a chain of elastic phases; the new consumers read that leftover exactly
// once with equal counts, so that before + after cover the epoch but fewer than C' frames; no
// phases gives the regular plan; schedules over explicit pieces skip as they draw; bad phases are
// rejected naming them.
#include "sampling/elastic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/rng.h"
#include "dataloader_sim.h"
#include "schedule_helpers.h"

namespace lrs::sampling {
namespace {

using test::drain;
using test::Frame;
using test::frames_of;

const std::vector<int64_t> kLengths = {13, 1, 40, 7, 22, 3, 3, 30, 9, 16, 2, 25, 11};  // N = 182
constexpr int64_t kPool = 3;
constexpr int64_t kEpoch = 2;

struct Layout {
  int64_t world_size;
  int64_t num_workers;
  int64_t workers() const { return std::max<int64_t>(num_workers, 1); }
  int64_t consumers() const { return world_size * workers(); }
};

std::set<Frame> all_frames() {
  std::set<Frame> out;
  for (size_t pos = 0; pos < kLengths.size(); ++pos)
    for (int64_t f = 0; f < kLengths[pos]; ++f) out.emplace(static_cast<int64_t>(pos), f);
  return out;
}

// Samples worker w of each rank delivered in the first `batches` batches, by simulating the
// DataLoader (the reference for consumed_samples).
std::vector<int64_t> delivered_by_worker(int64_t samples, int64_t b, int64_t workers, bool drop_last,
                                         int64_t batches) {
  const std::vector<test::Batch> run = test::simulate_dataloader(samples, b, workers, drop_last, 1);
  std::vector<int64_t> out(static_cast<size_t>(workers), 0);
  for (int64_t i = 0; i < batches; ++i) {
    const test::Batch& x = run.at(static_cast<size_t>(i));
    out[static_cast<size_t>(x.worker)] += std::min(b, samples - x.first_sample);
  }
  return out;
}

// What the trainer received from a pass, by draining every consumer: schedules[c] is consumer
// c = rank * workers + worker of the layout.
std::vector<Frame> received(std::vector<ConsumerSchedule>& schedules, const Layout& layout, int64_t b,
                            bool drop_last, int64_t batches) {
  const int64_t n = schedules.front().total();
  const std::vector<int64_t> per_worker = delivered_by_worker(n, b, layout.workers(), drop_last, batches);
  std::vector<Frame> out;
  for (size_t c = 0; c < schedules.size(); ++c) {
    const std::vector<Frame> all = drain(schedules[c]);
    const int64_t k = per_worker[c % static_cast<size_t>(layout.workers())];
    out.insert(out.end(), all.begin(), all.begin() + k);
  }
  return out;
}

std::vector<ConsumerSchedule> regular_schedules(const PlanInputs& inputs, const Layout& l) {
  std::vector<ConsumerSchedule> out;
  for (int64_t r = 0; r < l.world_size; ++r)
    for (int64_t w = 0; w < l.workers(); ++w)
      out.emplace_back(inputs, kEpoch, r, l.world_size, w, l.num_workers, kPool);
  return out;
}

std::vector<ConsumerSchedule> elastic_schedules(const ElasticPass& pass, const Layout& l) {
  std::vector<ConsumerSchedule> out;
  for (int64_t r = 0; r < l.world_size; ++r)
    for (int64_t w = 0; w < l.workers(); ++w) out.push_back(pass.schedule(r, l.world_size, w, l.num_workers));
  return out;
}

// Adds frames to `seen`, failing on a frame that is already there.
void add_once(std::set<Frame>& seen, const std::vector<Frame>& frames, const std::string& what) {
  for (const Frame& f : frames) {
    ASSERT_TRUE(seen.insert(f).second) << what << ": frame (" << f.first << ", " << f.second << ") twice";
  }
}

// Pieces are one per episode, in the epoch's episode order, frames ascending inside their span.
void expect_canonical(const std::vector<Piece>& pieces, const PlanInputs& inputs) {
  const std::vector<int64_t> order = EpochPlan(inputs, 1).episode_order(kEpoch);
  size_t at = 0;
  for (const Piece& p : pieces) {
    while (at < order.size() && order[at] != p.episode_pos) ++at;
    ASSERT_LT(at, order.size()) << "episode_pos " << p.episode_pos << " out of epoch order or twice";
    ++at;
    ASSERT_LT(p.begin, p.end);
    if (p.explicit_frames()) {
      EXPECT_TRUE(std::is_sorted(p.frames.begin(), p.frames.end()));
      EXPECT_EQ(p.frames.front(), p.begin);
      EXPECT_EQ(p.frames.back() + 1, p.end);
    }
  }
}

TEST(Elastic, ConsumedSamplesEqualTheDataLoaderRoundRobin) {
  for (int64_t num_workers : {0, 1, 2, 3}) {
    const int64_t workers = std::max<int64_t>(num_workers, 1);
    for (int64_t n : {0, 1, 5, 13}) {
      for (int64_t b : {1, 3, 4, 8}) {
        for (bool drop_last : {false, true}) {
          const int64_t total = pass_batches(n, b, num_workers, drop_last);
          ASSERT_EQ(total, static_cast<int64_t>(test::simulate_dataloader(n, b, workers, drop_last, 1).size()));
          for (int64_t batches = 0; batches <= total; ++batches) {
            const std::vector<int64_t> want = delivered_by_worker(n, b, workers, drop_last, batches);
            for (int64_t w = 0; w < workers; ++w) {
              EXPECT_EQ(consumed_samples(batches, b, num_workers, w, n, drop_last), want[static_cast<size_t>(w)])
                  << "B=" << batches << " b=" << b << " n=" << n << " W=" << num_workers << " w=" << w;
            }
          }
          EXPECT_THROW(consumed_samples(total + 1, b, num_workers, 0, n, drop_last), InvalidInput);
        }
      }
    }
  }
}

TEST(Elastic, ReplayLeavesExactlyWhatTheOldConsumersDidNotDeliver) {
  for (bool shuffle : {true, false}) {
    const PlanInputs inputs{kLengths, 7, shuffle};
    for (const Layout old : {Layout{1, 0}, Layout{2, 2}, Layout{3, 1}, Layout{4, 3}}) {
      for (int64_t b : {1, 3, 4}) {
        for (bool drop_last : {false, true}) {
          const int64_t n = EpochPlan(inputs, old.consumers()).samples_per_consumer();
          const int64_t total = pass_batches(n, b, old.num_workers, drop_last);
          for (int64_t batches : {int64_t{0}, int64_t{1}, total / 2, total - 1, total}) {
            if (batches < 0) continue;
            std::vector<ConsumerSchedule> schedules = regular_schedules(inputs, old);
            std::set<Frame> expected = all_frames();
            for (const Frame& f : received(schedules, old, b, drop_last, batches)) expected.erase(f);

            const Phase phase{old.world_size, old.num_workers, b, drop_last, batches};
            const ElasticPass pass(inputs, kEpoch, std::span<const Phase>(&phase, 1), kPool);
            const std::vector<Frame> got = frames_of(pass.pieces());
            const std::set<Frame> got_set(got.begin(), got.end());
            ASSERT_EQ(got.size(), got_set.size()) << "a leftover frame appears twice";
            ASSERT_EQ(got_set, expected) << "W=" << old.world_size << " w=" << old.num_workers << " b=" << b
                                         << " drop_last=" << drop_last << " B=" << batches;
            EXPECT_EQ(pass.leftover(), static_cast<int64_t>(expected.size()));
            EXPECT_EQ(leftover_frames(182, std::span<const Phase>(&phase, 1)), pass.leftover());
            expect_canonical(pass.pieces(), inputs);
          }
        }
      }
    }
  }
}

// Before (what the old layout delivered) + after (the new layout's elastic pass) cover every frame
// of the epoch once, but fewer than C' frames; every new consumer reads n' = L / C' frames.
TEST(Elastic, NewConsumersFinishTheEpochExactlyOnceWithEqualCounts) {
  const std::vector<std::pair<Layout, Layout>> changes = {
      {{2, 2}, {3, 1}}, {{1, 0}, {4, 2}}, {{4, 3}, {2, 2}}, {{1, 2}, {1, 3}}, {{2, 1}, {2, 0}}, {{3, 2}, {1, 0}}};
  for (bool shuffle : {true, false}) {
    const PlanInputs inputs{kLengths, 11, shuffle};
    for (const auto& [old, now] : changes) {
      for (bool drop_last : {false, true}) {
        const int64_t b = 3;
        const int64_t n = EpochPlan(inputs, old.consumers()).samples_per_consumer();
        const int64_t total = pass_batches(n, b, old.num_workers, drop_last);
        for (int64_t batches : {int64_t{1}, total / 2, total - 1}) {
          if (batches < 1) continue;
          std::vector<ConsumerSchedule> before_schedules = regular_schedules(inputs, old);
          std::set<Frame> seen;
          add_once(seen, received(before_schedules, old, b, drop_last, batches), "before");

          const Phase phase{old.world_size, old.num_workers, b, drop_last, batches};
          const ElasticPass pass(inputs, kEpoch, std::span<const Phase>(&phase, 1), kPool);
          const int64_t n_new = pass.samples_per_consumer(now.consumers());
          for (ConsumerSchedule& s : elastic_schedules(pass, now)) {
            ASSERT_EQ(s.total(), n_new);
            const std::vector<Frame> after = drain(s);
            ASSERT_EQ(static_cast<int64_t>(after.size()), n_new) << "new consumers' counts differ";
            add_once(seen, after, "after");
          }
          const int64_t left_out = 182 - static_cast<int64_t>(seen.size());
          EXPECT_EQ(left_out, pass.leftover() % now.consumers());
          EXPECT_LT(left_out, now.consumers());
        }
      }
    }
  }
}

// Two layout changes inside one epoch: (2x2) -> (3x1) -> (1x2). The second replay includes the
// first elastic pass's consumers; all three stretches together read the epoch once.
TEST(Elastic, ChainedPhasesReplayTheElasticPassesToo) {
  for (bool shuffle : {true, false}) {
    const PlanInputs inputs{kLengths, 5, shuffle};
    const Layout l0{2, 2}, l1{3, 1}, l2{1, 2};
    const int64_t b0 = 4, b1 = 2;
    const Phase p0{l0.world_size, l0.num_workers, b0, false, 5};
    std::vector<ConsumerSchedule> s0 = regular_schedules(inputs, l0);
    std::set<Frame> seen;
    add_once(seen, received(s0, l0, b0, false, p0.batches), "phase 0");

    const ElasticPass pass1(inputs, kEpoch, std::span<const Phase>(&p0, 1), kPool);
    std::vector<ConsumerSchedule> s1 = elastic_schedules(pass1, l1);
    const Phase p1{l1.world_size, l1.num_workers, b1, true, 7};
    add_once(seen, received(s1, l1, b1, true, p1.batches), "phase 1");

    const std::vector<Phase> phases = {p0, p1};
    const ElasticPass pass2(inputs, kEpoch, phases, kPool);
    EXPECT_EQ(pass2.phase(), 2);
    std::set<Frame> expected = all_frames();
    for (const Frame& f : seen) expected.erase(f);
    const std::vector<Frame> left = frames_of(pass2.pieces());
    ASSERT_EQ(std::set<Frame>(left.begin(), left.end()), expected);
    EXPECT_EQ(leftover_frames(182, phases), pass2.leftover());
    expect_canonical(pass2.pieces(), inputs);

    for (ConsumerSchedule& s : elastic_schedules(pass2, l2)) {
      ASSERT_EQ(s.total(), pass2.samples_per_consumer(l2.consumers()));
      add_once(seen, drain(s), "phase 2");
    }
    EXPECT_LT(182 - static_cast<int64_t>(seen.size()), l2.consumers());
  }
}

TEST(Elastic, WithoutPhasesTheSplitIsTheRegularPlan) {
  const PlanInputs inputs{kLengths, 3, true};
  const ElasticPass pass(inputs, kEpoch, {}, kPool);
  for (int64_t consumers : {1, 4, 7}) {
    const EpochPlan plan(inputs, consumers);
    for (int64_t c = 0; c < consumers; ++c) {
      std::vector<Piece> expected;
      for (const Segment& s : plan.segments(kEpoch, c)) expected.push_back(Piece::whole(s));
      EXPECT_EQ(pass.slice(c, consumers), expected) << "consumer " << c << " of " << consumers;
    }
  }
}

TEST(Elastic, ShuffleFalseReadsEveryNewSliceInDatasetOrder) {
  const PlanInputs inputs{kLengths, 3, false};
  const Phase phase{2, 2, 3, false, 9};
  const ElasticPass pass(inputs, kEpoch, std::span<const Phase>(&phase, 1), kPool);
  for (ConsumerSchedule& s : elastic_schedules(pass, Layout{3, 1})) {
    const std::vector<Frame> got = drain(s);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  }
}

TEST(Elastic, ExplicitPiecesSkipAsTheyDrawAndReportWhatIsLeft) {
  const std::vector<Piece> planned = {{4, 2, 11, {2, 5, 6, 10}}, {1, 0, 6, {}}, {7, 3, 9, {3, 8}}, {2, 0, 5, {}}};
  for (bool shuffle : {true, false}) {
    const uint64_t key = elastic_key(1, 0, 1, 0, 0);
    const int64_t total = ConsumerSchedule(planned, shuffle, key, 0, 2).total();
    ASSERT_EQ(total, 4 + 6 + 2 + 5);
    for (int64_t k = 0; k <= total; ++k) {
      ConsumerSchedule drawn(planned, shuffle, key, 0, 2), skipped(planned, shuffle, key, 0, 2);
      std::vector<int64_t> ep(static_cast<size_t>(k)), fr(static_cast<size_t>(k));
      ASSERT_EQ(drawn.next(ep, fr), k);
      skipped.skip(k);
      EXPECT_EQ(skipped.pool(), drawn.pool());
      EXPECT_EQ(skipped.take_evicted(), drawn.take_evicted());
      // unconsumed() = planned frames minus the drawn ones, in plan order.
      std::set<Frame> drawn_set;
      for (size_t i = 0; i < ep.size(); ++i) drawn_set.emplace(ep[i], fr[i]);
      std::vector<Frame> expected;
      for (const Frame& f : frames_of(planned))
        if (!drawn_set.count(f)) expected.push_back(f);
      EXPECT_EQ(frames_of(skipped.unconsumed()), expected) << "k=" << k;
      EXPECT_EQ(drain(skipped), drain(drawn));
    }
  }
}

TEST(Elastic, PassesDrawFromTheirOwnStreams) {
  const uint64_t regular = derive_key(9, 2, 1, 0, RngPurpose::kPoolDraw);
  std::set<uint64_t> keys = {regular};
  for (int64_t phase = 0; phase < 4; ++phase)
    for (int64_t rank = 0; rank < 3; ++rank) keys.insert(elastic_key(9, 2, phase, rank, 0));
  EXPECT_EQ(keys.size(), 13u);
}

TEST(Elastic, RejectsBadArgumentsNamingThePhase) {
  const PlanInputs inputs{kLengths, 0, true};
  const auto fails_with = [&](const std::vector<Phase>& phases, const std::string& needle) {
    try {
      ElasticPass(inputs, 0, phases, kPool);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  fails_with({{0, 1, 4, false, 0}}, "phase 0");
  fails_with({{1, -1, 4, false, 0}}, "num_workers");
  fails_with({{1, 1, 0, false, 0}}, "batch_size");
  fails_with({{2, 2, 4, false, 3}, {1, 0, 4, false, -1}}, "phase 1");
  fails_with({{1, 0, 1, false, 183}}, "batches must be in [0, 182]");
  EXPECT_THROW(ElasticPass(inputs, -1, {}, kPool), InvalidInput);
  EXPECT_THROW(ElasticPass(inputs, 0, {}, 0), InvalidInput);
  const ElasticPass pass(inputs, 0, {}, kPool);
  EXPECT_THROW(pass.slice(3, 3), InvalidInput);
  EXPECT_THROW(pass.schedule(2, 2, 0, 0), InvalidInput);
  EXPECT_THROW(ConsumerSchedule({{0, 3, 2, {}}}, true, 0, 0, 1), InvalidInput);
  EXPECT_THROW(ConsumerSchedule({{0, 0, 5, {3, 1}}}, true, 0, 0, 1), InvalidInput);
  EXPECT_THROW(ConsumerSchedule({{0, 0, 5, {1, 7}}}, true, 0, 0, 1), InvalidInput);
}

}  // namespace
}  // namespace lrs::sampling
