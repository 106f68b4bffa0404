// The epoch plan: which frames of which episodes each consumer (rank × worker) reads in an epoch,
// so that every frame is read exactly once per epoch across all consumers and every consumer
// reads the same number of frames (see Note [Epoch plan] and Note [Consumers]).
//
// EpochPlan owns a copy of the selected episodes' lengths (O(episodes)); it computes permutations
// and slices on demand and holds no per-epoch state. Immutable after construction, so thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace lrs::sampling {

// Note [Epoch plan]
// ~~~~~~~~~~~~~~~~~
// For epoch e the selected episodes (positions 0..E-1 in `episode_lengths`, the "episode_pos")
// are put in an order: a Fisher–Yates permutation drawn from the stream keyed by
// (seed, e, 0, 0, kEpochPermutation) when shuffling, dataset order otherwise. The permuted
// episodes' frames are concatenated into one sequence of N = Σ lengths frames. Every one of the
// C consumers gets the same count n = N / C (integer division) and consumer c takes the contiguous
// slice [c·n, (c+1)·n) of that sequence. Consequences:
//  * an episode may be split between two (or more) consumers; each consumer then sees a Segment,
//    a [begin, end) range of frame offsets within the episode;
//  * the remainder r = N - n·C (< C frames) is the tail of the permuted sequence and is dropped
//    for that epoch. When shuffling, the tail belongs to whichever episode comes last, so which
//    frames are dropped changes from epoch to epoch; without shuffling the same last r frames of
//    the last episode are dropped every epoch. Dropping them is what gives every consumer exactly
//    n samples, which keeps distributed ranks in lock-step and makes resume pure arithmetic
//    (see resume.h);
//  * when N < C, n = 0: nobody reads anything.
//
// Note [Consumers]
// ~~~~~~~~~~~~~~~~
// A consumer is one DataLoader worker of one rank. With W workers per rank (W = max(num_workers,
// 1): num_workers = 0 means the main process is the only consumer of its rank) there are
// C = world_size · W consumers, and consumer c = rank · W + worker.

// A contiguous range of frames [begin, end) of the episode at position episode_pos.
struct Segment {
  int64_t episode_pos = 0;
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
  friend bool operator==(const Segment&, const Segment&) = default;
};

// The frames of one episode that a consumer reads: the whole range [begin, end) when `frames` is
// empty, otherwise exactly `frames` (ascending, inside [begin, end) = their span). Explicit frames
// appear only in an elastic pass, for an episode an interrupted consumer had partly drawn
// (Note [Elastic resume] in elastic.h).
struct Piece {
  int64_t episode_pos = 0;
  int64_t begin = 0;
  int64_t end = 0;
  std::vector<int64_t> frames;

  static Piece whole(const Segment& s) { return Piece{s.episode_pos, s.begin, s.end, {}}; }
  bool explicit_frames() const { return !frames.empty(); }
  int64_t size() const { return frames.empty() ? end - begin : static_cast<int64_t>(frames.size()); }
  Segment span() const { return Segment{episode_pos, begin, end}; }
  friend bool operator==(const Piece&, const Piece&) = default;
};

// What defines the plan, independent of the number of consumers.
struct PlanInputs {
  std::vector<int64_t> episode_lengths;  // frames of each selected episode, dataset order
  uint64_t seed = 0;
  bool shuffle = true;
};

// W = max(num_workers, 1) after checking num_workers >= 0 and worker in [0, W) (InvalidInput
// naming the bad one). See Note [Consumers].
int64_t workers_per_rank(int64_t worker, int64_t num_workers);

// The consumer id of (rank, worker) with W = max(num_workers, 1) workers per rank, after
// validating every argument (InvalidInput naming the bad one). See Note [Consumers].
int64_t consumer_id(int64_t rank, int64_t world_size, int64_t worker, int64_t num_workers);

class EpochPlan {
 public:
  // Throws InvalidInput for a length < 1, a total that overflows int64, or num_consumers < 1.
  EpochPlan(PlanInputs inputs, int64_t num_consumers);

  const PlanInputs& inputs() const { return inputs_; }
  int64_t num_consumers() const { return num_consumers_; }
  int64_t total_frames() const { return total_frames_; }                  // N
  int64_t samples_per_consumer() const { return total_frames_ / num_consumers_; }  // n
  int64_t dropped_per_epoch() const { return total_frames_ % num_consumers_; }     // r

  // The episode positions in epoch order (a permutation of 0..E-1). epoch >= 0.
  std::vector<int64_t> episode_order(int64_t epoch) const;

  // Consumer c's ordered segments for the epoch: its slice [c·n, (c+1)·n) of the permuted frame
  // sequence (Note [Epoch plan]). Throws InvalidInput for epoch < 0 or c outside [0, C).
  std::vector<Segment> segments(int64_t epoch, int64_t consumer) const;

 private:
  PlanInputs inputs_;
  int64_t num_consumers_ = 1;
  int64_t total_frames_ = 0;
};

}  // namespace lrs::sampling
