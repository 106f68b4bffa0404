#include "sampling/consumer_schedule.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "common/errors.h"

namespace lrs::sampling {

namespace {

EpochPlan plan_for(const PlanInputs& inputs, int64_t world_size, int64_t num_workers) {
  return EpochPlan(inputs, world_size * std::max<int64_t>(num_workers, 1));
}

}  // namespace

ConsumerSchedule::ConsumerSchedule(const PlanInputs& inputs, int64_t epoch, int64_t rank,
                                   int64_t world_size, int64_t worker, int64_t num_workers,
                                   int64_t pool_size)
    : pool_size_(pool_size),
      shuffle_(inputs.shuffle),
      rng_(derive_key(inputs.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(rank),
                      static_cast<uint64_t>(worker), RngPurpose::kPoolDraw)),
      epoch_(epoch) {
  const int64_t consumer = consumer_id(rank, world_size, worker, num_workers);
  if (pool_size < 1) {
    throw InvalidInput("consumer schedule: pool_size must be >= 1, got " +
                       std::to_string(pool_size));
  }
  const EpochPlan plan = plan_for(inputs, world_size, num_workers);
  planned_ = plan.segments(epoch, consumer);
  total_ = plan.samples_per_consumer();
  admit();
}

void ConsumerSchedule::admit() {
  while (std::cmp_less(pool_.size(), pool_size_) && next_planned_ < planned_.size()) {
    const Segment& s = planned_[next_planned_++];
    Entry entry{s, s.size(), {}};
    if (shuffle_) {
      entry.remaining.resize(static_cast<size_t>(s.size()));
      std::iota(entry.remaining.begin(), entry.remaining.end(), s.begin);
    }
    pool_frames_ += entry.left;
    pool_.push_back(std::move(entry));
    admitted_.push_back(s);
  }
}

void ConsumerSchedule::draw(int64_t k, int64_t* episode_pos, int64_t* frame) {
  for (int64_t i = 0; i < k; ++i) {
    size_t slot = 0;
    int64_t f = 0;
    if (shuffle_) {
      // Note [Episode pool]: locate the r-th remaining frame of the pool, swap-remove it.
      auto r = static_cast<int64_t>(rng_.bounded(static_cast<uint64_t>(pool_frames_)));
      while (r >= pool_[slot].left) r -= pool_[slot++].left;
      Entry& e = pool_[slot];
      auto& rem = e.remaining;
      f = rem[static_cast<size_t>(r)];
      rem[static_cast<size_t>(r)] = rem.back();
      rem.pop_back();
      --e.left;
    } else {
      Entry& e = pool_[0];
      f = e.segment.end - e.left;
      --e.left;
    }
    if (episode_pos != nullptr) {
      episode_pos[i] = pool_[slot].segment.episode_pos;
      frame[i] = f;
    }
    --pool_frames_;
    ++emitted_;
    if (pool_[slot].left == 0) {
      evicted_.push_back(pool_[slot].segment);
      pool_.erase(pool_.begin() + static_cast<std::ptrdiff_t>(slot));
      admit();
    }
  }
}

int64_t ConsumerSchedule::next(std::span<int64_t> episode_pos, std::span<int64_t> frame) {
  if (episode_pos.size() != frame.size()) {
    throw InvalidInput("consumer schedule: next() needs output spans of equal size, got " +
                       std::to_string(episode_pos.size()) + " and " +
                       std::to_string(frame.size()));
  }
  const int64_t k = std::min<int64_t>(static_cast<int64_t>(episode_pos.size()), remaining());
  draw(k, episode_pos.data(), frame.data());
  return k;
}

void ConsumerSchedule::skip(int64_t k) {
  if (k < 0) throw InvalidInput("consumer schedule: skip(k) needs k >= 0, got " + std::to_string(k));
  if (k > remaining()) {
    throw OutOfRange("consumer schedule: skip(" + std::to_string(k) + ") past the end of epoch " +
                     std::to_string(epoch_) + ": only " + std::to_string(remaining()) + " of " +
                     std::to_string(total_) + " samples remain");
  }
  draw(k, nullptr, nullptr);
}

std::vector<Segment> ConsumerSchedule::pool() const {
  std::vector<Segment> out;
  out.reserve(pool_.size());
  for (const Entry& e : pool_) out.push_back(e.segment);
  return out;
}

std::vector<Segment> ConsumerSchedule::take_admitted() { return std::exchange(admitted_, {}); }

std::vector<Segment> ConsumerSchedule::take_evicted() { return std::exchange(evicted_, {}); }

}  // namespace lrs::sampling
