// Elastic resume: which frames of an interrupted epoch the consumers of earlier layouts (world
// size × DataLoader workers) did not emit, derived by replaying their schedules without any I/O,
// and the equal split of those frames among the consumers of a new layout (Note [Elastic resume]).
//
// ElasticPass owns the leftover pieces: O(episodes + frames still in the interrupted consumers'
// pools). Building one costs O(samples consumed in the epoch × pool walk) (Note [Episode pool]);
// it is immutable afterwards, so thread-safe. The free functions are pure: thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sampling/consumer_schedule.h"
#include "sampling/epoch_plan.h"

namespace lrs::sampling {

// Note [Elastic resume]
// ~~~~~~~~~~~~~~~~~~~~~
// A run stopped mid-epoch under one layout (W ranks × w workers) resumes under another (W' × w').
// The epoch's frames are split in phases: phase 0 is the epoch's regular pass (Note [Epoch plan],
// C0 = W·max(w, 1) consumers); phase j ≥ 1 is an elastic pass of layout j over the frames phases
// 0..j-1 left. The resume state records, per phase, its layout, batch size, drop_last and how many
// batches each rank's trainer consumed from it (all ranks step together, so one count).
//
// What a phase consumed. In a pass where every consumer has n samples, the DataLoader of each
// rank takes batch k from worker k mod w (Note [Resume arithmetic]); after B batches worker k had
// cw = B/w + (B mod w > k) of its batches consumed, i.e. min(cw·b, n) samples; with drop_last
// exactly cw·b (a finished worker's partial batch was never delivered, so its frames count as
// left over). Batches the workers had prefetched but the trainer never received count as not
// emitted: their frames are left over too. Every rank's worker k consumed the same count.
//
// Which frames. The leftover after a phase is derived by replaying each of its consumers'
// schedules (the same pieces and RNG stream it used) for exactly that count with skip(), then
// reading what it had not drawn (ConsumerSchedule::unconsumed). No parquet row, no video: the
// schedules work on episode lengths only. The frames no consumer of the phase owned (its remainder,
// fewer than its consumer count) are left over as well.
//
// Canonical order. Leftover frames keep the epoch's permuted frame sequence order: consumer 0's
// leftover, then consumer 1's, ..., then the remainder; within an episode frames ascend. Adjacent
// pieces of the same episode (an episode cut between two consumers) are merged, so each episode
// is one piece of the leftover: a whole range, or explicit frames where a pool had drawn some.
// The leftover is not permuted again: the epoch's episode order is already a uniform permutation,
// a second one would add no randomness but would scatter every new consumer's work over more
// episodes (more parquet reads), and shuffle=false keeps reading in dataset order.
//
// The new split. With L leftover frames and C' new consumers, each gets n' = L / C' frames: the
// contiguous slice [c'·n', (c'+1)·n') of the leftover in canonical order (cutting pieces at the
// boundaries); the last L mod C' < C' frames are left out of the epoch, as in a regular plan.
// A new consumer runs the ordinary episode pool (Note [Episode pool]) over its pieces, drawing
// from its own stream keyed by (seed, epoch, rank', worker', kElasticPoolDraw) and mixed with the
// phase index, so a later phase in the same epoch never repeats an earlier phase's numbers. Every
// new consumer emits n' samples, so ranks stay in lock-step and later resumes inside this pass
// are the usual O(1) arithmetic over n'. Epochs after it are regular epochs of the new layout.

// One layout's stretch of an interrupted epoch.
struct Phase {
  int64_t world_size = 1;
  int64_t num_workers = 0;  // the DataLoader's; 0 means the main process is the consumer
  int64_t batch_size = 1;
  bool drop_last = false;
  int64_t batches = 0;  // batches each rank's trainer consumed from this phase's pass
};

// Batches each rank's DataLoader yields in a pass where every consumer has `samples` samples:
// max(num_workers, 1) · batches_per_epoch(samples, batch_size, drop_last).
int64_t pass_batches(int64_t samples, int64_t batch_size, int64_t num_workers, bool drop_last);

// Samples worker `worker` of a rank emitted into the first `batches` batches of such a pass
// (Note [Elastic resume]). Throws InvalidInput for arguments out of range or `batches` above
// pass_batches.
int64_t consumed_samples(int64_t batches, int64_t batch_size, int64_t num_workers, int64_t worker,
                         int64_t samples, bool drop_last);

// Frames of an epoch of `total_frames` frames left after `phases`: arithmetic only, O(Σ workers).
// Throws InvalidInput naming the phase for a bad field.
int64_t leftover_frames(int64_t total_frames, std::span<const Phase> phases);

// The RNG key of consumer (rank, worker) in elastic phase `phase` of `epoch`.
uint64_t elastic_key(uint64_t seed, int64_t epoch, int64_t phase, int64_t rank, int64_t worker);

class ElasticPass {
 public:
  // Replays `phases` of `epoch` (phases[0] = the epoch's regular pass) with pool size `pool_size`
  // and keeps what they left, in canonical order. Throws InvalidInput for bad plan inputs,
  // epoch < 0, pool_size < 1 or a bad phase (naming it).
  ElasticPass(const PlanInputs& inputs, int64_t epoch, std::span<const Phase> phases, int64_t pool_size);

  int64_t epoch() const { return epoch_; }
  int64_t phase() const { return phase_; }  // this pass's index: phases.size()
  int64_t leftover() const { return leftover_; }
  const std::vector<Piece>& pieces() const { return pieces_; }

  // n' = leftover / num_consumers. Throws InvalidInput for num_consumers < 1.
  int64_t samples_per_consumer(int64_t num_consumers) const;

  // Consumer c's pieces: the slice [c·n', (c+1)·n') of the leftover. Throws InvalidInput for
  // num_consumers < 1 or c outside [0, num_consumers).
  std::vector<Piece> slice(int64_t consumer, int64_t num_consumers) const;

  // The schedule of consumer (rank, worker) of the new layout over its slice. Throws InvalidInput
  // for rank/worker out of range.
  ConsumerSchedule schedule(int64_t rank, int64_t world_size, int64_t worker, int64_t num_workers) const;

 private:
  uint64_t seed_ = 0;
  bool shuffle_ = true;
  int64_t pool_size_ = 1;
  int64_t epoch_ = 0;
  int64_t phase_ = 0;
  int64_t leftover_ = 0;
  std::vector<Piece> pieces_;
};

}  // namespace lrs::sampling
