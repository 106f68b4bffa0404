#include "sampling/epoch_plan.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <utility>

#include "common/errors.h"
#include "common/rng.h"

namespace lrs::sampling {

namespace {

void check_epoch(int64_t epoch) {
  if (epoch < 0) throw InvalidInput("epoch plan: epoch must be >= 0, got " + std::to_string(epoch));
}

}  // namespace

int64_t workers_per_rank(int64_t worker, int64_t num_workers) {
  if (num_workers < 0) {
    throw InvalidInput("sampling: num_workers must be >= 0, got " + std::to_string(num_workers));
  }
  const int64_t workers = std::max<int64_t>(num_workers, 1);
  if (worker < 0 || worker >= workers) {
    throw InvalidInput("sampling: worker must be in [0, " + std::to_string(workers) +
                       ") for num_workers=" + std::to_string(num_workers) + ", got " +
                       std::to_string(worker));
  }
  return workers;
}

int64_t consumer_id(int64_t rank, int64_t world_size, int64_t worker, int64_t num_workers) {
  if (world_size < 1) {
    throw InvalidInput("sampling: world_size must be >= 1, got " + std::to_string(world_size));
  }
  if (rank < 0 || rank >= world_size) {
    throw InvalidInput("sampling: rank must be in [0, world_size=" + std::to_string(world_size) +
                       "), got " + std::to_string(rank));
  }
  const int64_t workers = workers_per_rank(worker, num_workers);
  if (world_size > std::numeric_limits<int64_t>::max() / workers) {
    throw InvalidInput("sampling: world_size * num_workers overflows int64");
  }
  return rank * workers + worker;
}

EpochPlan::EpochPlan(PlanInputs inputs, int64_t num_consumers)
    : inputs_(std::move(inputs)), num_consumers_(num_consumers) {
  if (num_consumers_ < 1) {
    throw InvalidInput("epoch plan: num_consumers must be >= 1, got " +
                       std::to_string(num_consumers_));
  }
  const auto& lengths = inputs_.episode_lengths;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 1) {
      throw InvalidInput("epoch plan: episode_lengths[" + std::to_string(i) +
                         "] must be >= 1 frame, got " + std::to_string(lengths[i]));
    }
    if (total_frames_ > std::numeric_limits<int64_t>::max() - lengths[i]) {
      throw InvalidInput("epoch plan: the total number of frames overflows int64");
    }
    total_frames_ += lengths[i];
  }
}

std::vector<int64_t> EpochPlan::episode_order(int64_t epoch) const {
  check_epoch(epoch);
  std::vector<int64_t> order(inputs_.episode_lengths.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  if (inputs_.shuffle) {
    RngStream rng(derive_key(inputs_.seed, static_cast<uint64_t>(epoch), 0, 0,
                             RngPurpose::kEpochPermutation));
    fisher_yates_shuffle(std::span<int64_t>(order), rng);
  }
  return order;
}

std::vector<Segment> EpochPlan::segments(int64_t epoch, int64_t consumer) const {
  check_epoch(epoch);
  if (consumer < 0 || consumer >= num_consumers_) {
    throw InvalidInput("epoch plan: consumer must be in [0, " + std::to_string(num_consumers_) +
                       "), got " + std::to_string(consumer));
  }
  const int64_t n = samples_per_consumer();
  const int64_t slice_begin = consumer * n;
  const int64_t slice_end = slice_begin + n;
  std::vector<Segment> out;
  if (n == 0) return out;
  int64_t offset = 0;  // position of the current episode's first frame in the permuted sequence
  for (int64_t pos : episode_order(epoch)) {
    const int64_t length = inputs_.episode_lengths[static_cast<size_t>(pos)];
    const int64_t lo = std::max(offset, slice_begin);
    const int64_t hi = std::min(offset + length, slice_end);
    if (lo < hi) out.push_back(Segment{pos, lo - offset, hi - offset});
    offset += length;
    if (offset >= slice_end) break;
  }
  return out;
}

}  // namespace lrs::sampling
