// Resume arithmetic: where each DataLoader worker's consumer stands after a run consumed a given
// number of batches, computed in O(1) without replaying anything (see Note [Resume arithmetic]).
//
// Pure functions, no state: thread-safe.
#pragma once

#include <cstdint>

namespace lrs::sampling {

// Note [Resume arithmetic]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// Resume state is {batches_consumed B (over the whole run), batch_size b}. A torch DataLoader over
// an IterableDataset with W = max(num_workers, 1) workers batches inside each worker and, with
// in_order=True, returns batch k of the run from worker k mod W. Every consumer emits exactly n
// samples per epoch (Note [Epoch plan]), so every worker yields the same number of batches per
// epoch, nb = ceil(n / b), or floor(n / b) with drop_last (torch drops each worker's partial last
// batch). Each epoch therefore contributes W · nb batches, a multiple of W, so the round robin
// restarts at worker 0 at every epoch boundary and "k mod W" stays exact across epochs.
// Worker w has consumed cw = B / W + (B mod W > w ? 1 : 0) of its batches, so it resumes in
// epoch cw / nb after skipping (cw mod nb) · b samples of that epoch (never more than n: a
// completed epoch, partial last batch included, rolls over to the next one).
// When nb = 0 (n = 0, or drop_last with n < b) no batch is ever produced: B must be 0 and the
// answer is {epoch 0, skip 0}.
//
// What the dataset layer does with it: the first DataLoader iteration after a resume is the rest
// of epoch e0 = min over workers of their epoch (the one whose batches are still due), and a new
// iterator's round robin starts at its worker 0, whereas the uninterrupted run would take the
// next batch from worker B mod W. So in that first iteration worker i plays the role of worker
// (i + B) mod W (its consumer, RNG stream and resume point); a role whose resume epoch is past e0
// has finished e0 and yields nothing then (torch skips exhausted workers, keeping the order).
// Later iterations use the identity mapping again. This holds for one layout (world size ×
// workers); when the layout changes, Note [Elastic resume] (elastic.h) re-splits the epoch's rest,
// and this arithmetic applies again inside the new pass with its own per-consumer count.

struct ResumePoint {
  int64_t epoch = 0;
  int64_t samples_to_skip = 0;
  friend bool operator==(const ResumePoint&, const ResumePoint&) = default;
};

// Batches per epoch of one worker whose consumer emits samples_per_epoch samples.
// Throws InvalidInput for batch_size < 1 or samples_per_epoch < 0.
int64_t batches_per_epoch(int64_t samples_per_epoch, int64_t batch_size, bool drop_last);

// Where worker `worker` (of num_workers; 0 means the main process only, worker 0) resumes after
// batches_consumed batches of the run. Throws InvalidInput for batches_consumed < 0,
// batch_size < 1, num_workers < 0, worker outside [0, max(num_workers, 1)), samples_per_epoch < 0,
// or batches_consumed > 0 when no batch can ever be produced.
ResumePoint resume_point(int64_t batches_consumed, int64_t batch_size, int64_t num_workers,
                         int64_t worker, int64_t samples_per_epoch, bool drop_last);

}  // namespace lrs::sampling
