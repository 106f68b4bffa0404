// ConsumerSchedule: the stream of samples (episode_pos, frame) one consumer (rank × worker) reads
// in one epoch, drawn from a bounded pool of episode segments (see Note [Episode pool]), with an
// exact fast-forward (skip) for resume and admission/eviction events that tell the caller which
// segments' rows to load and when to free them (see Note [Pool events]).
//
// Owns its planned pieces (O(episodes of this consumer), plus the explicit frames of an elastic
// pass's partly drawn episodes) and, for the admitted ones, an array of their not-yet-drawn frames
// (O(pool frames)); never O(N). NOT thread-safe: one thread drives a schedule at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/rng.h"
#include "sampling/epoch_plan.h"

namespace lrs::sampling {

// Note [Episode pool]
// ~~~~~~~~~~~~~~~~~~~
// A consumer's slice of the epoch plan is a list of segments (Note [Epoch plan]). Reading it in
// order would give long runs of consecutive frames of one episode; shuffling it fully would need
// every episode in memory. The pool is the middle ground: up to pool_size segments are admitted
// (in plan order); each draw picks a uniformly random remaining frame across the whole pool,
// without replacement. Concretely, with R frames left in the pool, draw r = bounded(R) from the
// stream keyed by (seed, epoch, rank, worker, kPoolDraw), walk the pool in admission order
// subtracting each segment's remaining count until r falls in one, take element r of that
// segment's remaining-frames array and swap-remove it (its last element moves into the hole). A
// segment whose frames are all drawn is evicted at once, and the next planned segment is admitted
// at the end of the pool. Everything is integer arithmetic on the portable stream (Note [Portable
// randomness]), so the order is identical on every platform.
//
// The walk is O(pool_size) per draw, which for pools of tens to a few hundred segments costs less
// than the memory traffic a tree would add; 1,000,000 draws with a pool of 64 take well under a
// second.
//
// With shuffle = false the order is strictly sequential: segments in plan order, frames
// ascending, no random numbers. Segments are still admitted up to pool_size ahead, so the caller
// can load rows ahead the same way in both modes; the pool size never changes the order.
//
// Note [Pool events]
// ~~~~~~~~~~~~~~~~~~
// take_admitted() and take_evicted() return the segments admitted / evicted since the last call,
// in order. The initial pool is admitted by the constructor. A next() call may admit segments and
// return samples from them in the same call, so after each next() the caller should:
//   1. take_admitted() and load those segments' rows,
//   2. build the samples next() returned,
//   3. take_evicted() and free those rows: an evicted segment's last sample was returned by a
//      next() that has already happened.
// A segment can be admitted and evicted within one call (one shorter than the batch). skip()
// records events exactly as drawing would; after a skip, take both lists and load pool().
// In an elastic pass a planned piece may hold explicit frames (Note [Elastic resume]); the events
// then report its span, and the pool draws from exactly those frames.

class ConsumerSchedule {
 public:
  // The schedule of consumer (rank, worker) for `epoch` of the plan defined by `inputs`, with
  // C = world_size · max(num_workers, 1) consumers (Note [Consumers]). Throws InvalidInput for
  // bad plan inputs, epoch < 0, rank/worker out of range or pool_size < 1.
  ConsumerSchedule(const PlanInputs& inputs, int64_t epoch, int64_t rank, int64_t world_size,
                   int64_t worker, int64_t num_workers, int64_t pool_size);

  // A schedule over explicit planned pieces (an elastic pass, Note [Elastic resume]) drawing from
  // the stream `rng_key`; `epoch` is informational. Each episode must appear at most once. Throws
  // InvalidInput for pool_size < 1, epoch < 0 or a piece that is empty, outside its span or whose
  // frames are not ascending.
  ConsumerSchedule(std::vector<Piece> planned, bool shuffle, uint64_t rng_key, int64_t epoch,
                   int64_t pool_size);

  int64_t total() const { return total_; }  // n: samples this consumer emits in the epoch
  int64_t emitted() const { return emitted_; }
  int64_t remaining() const { return total_ - emitted_; }
  int64_t epoch() const { return epoch_; }

  // Fills up to episode_pos.size() samples (the two spans must have equal size) and returns how
  // many were written; 0 once the epoch is done. Throws InvalidInput when the sizes differ.
  int64_t next(std::span<int64_t> episode_pos, std::span<int64_t> frame);

  // Fast-forward: leaves the schedule exactly as drawing k samples would (RNG position, pool,
  // events), without output. Throws InvalidInput for k < 0 and OutOfRange for k > remaining().
  void skip(int64_t k);

  // The segments currently admitted and not exhausted, in admission order (their full ranges).
  std::vector<Segment> pool() const;

  // The frames not drawn yet, in plan order: the pool's entries (admission order = plan order),
  // then the pieces not admitted yet; frames ascending within a piece. O(pool frames + pieces).
  std::vector<Piece> unconsumed() const;

  std::vector<Segment> take_admitted();  // Note [Pool events]
  std::vector<Segment> take_evicted();

 private:
  struct Entry {
    Segment segment;                 // the piece's span
    int64_t left = 0;                // frames not yet drawn
    // shuffle: the frames not yet drawn (any order); sequential: the piece's explicit frames
    // (empty for a whole range), read front to back.
    std::vector<int64_t> frames;
  };

  // Draws k <= remaining() samples; writes them when the pointers are not null.
  void draw(int64_t k, int64_t* episode_pos, int64_t* frame);
  void admit();

  std::vector<Piece> planned_;
  size_t next_planned_ = 0;
  std::vector<Entry> pool_;
  int64_t pool_frames_ = 0;  // Σ left over the pool
  int64_t pool_size_ = 1;
  bool shuffle_ = true;
  RngStream rng_;
  int64_t total_ = 0;
  int64_t emitted_ = 0;
  int64_t epoch_ = 0;
  std::vector<Segment> admitted_;
  std::vector<Segment> evicted_;
};

}  // namespace lrs::sampling
