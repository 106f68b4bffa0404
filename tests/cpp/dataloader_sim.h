// Test helper: a brute-force simulation of a torch DataLoader over an IterableDataset (per-worker
// batching, in-order round robin, exhausted workers skipped, a new iteration per epoch), the
// reference the resume and elastic-resume arithmetic is checked against.
// Header-only, pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace lrs::test {

struct Batch {
  int64_t worker;
  int64_t epoch;
  int64_t first_sample;  // offset of the batch's first sample in the worker's epoch
};

// The batches of `epochs` DataLoader epochs in the order the trainer sees them.
inline std::vector<Batch> simulate_dataloader(int64_t samples_per_worker, int64_t batch_size, int64_t workers,
                                              bool drop_last, int64_t epochs) {
  std::vector<Batch> out;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    std::vector<std::deque<Batch>> queues(static_cast<size_t>(workers));
    for (int64_t w = 0; w < workers; ++w) {
      for (int64_t start = 0; start < samples_per_worker; start += batch_size) {
        const bool partial = start + batch_size > samples_per_worker;
        if (partial && drop_last) break;
        queues[static_cast<size_t>(w)].push_back({w, epoch, start});
      }
    }
    // In-order round robin: next worker in turn; a worker that is exhausted is skipped.
    size_t live = 0;
    for (const auto& q : queues) live += q.empty() ? 0 : 1;
    for (int64_t turn = 0; live > 0; turn = (turn + 1) % workers) {
      auto& q = queues[static_cast<size_t>(turn)];
      if (q.empty()) continue;
      out.push_back(q.front());
      q.pop_front();
      if (q.empty()) --live;
    }
  }
  return out;
}

}  // namespace lrs::test
