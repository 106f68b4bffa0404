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

void check_pool_size(int64_t pool_size) {
  if (pool_size < 1) {
    throw InvalidInput("consumer schedule: pool_size must be >= 1, got " + std::to_string(pool_size));
  }
}

void check_piece(const Piece& p, size_t i) {
  const std::string where = "consumer schedule: planned piece " + std::to_string(i) + " (episode_pos " +
                            std::to_string(p.episode_pos) + ")";
  if (p.episode_pos < 0 || p.begin < 0 || p.begin >= p.end) {
    throw InvalidInput(where + " needs episode_pos >= 0 and 0 <= begin < end, got [" +
                       std::to_string(p.begin) + ", " + std::to_string(p.end) + ")");
  }
  for (size_t k = 0; k < p.frames.size(); ++k) {
    const int64_t f = p.frames[k];
    if (f < p.begin || f >= p.end || (k > 0 && f <= p.frames[k - 1])) {
      throw InvalidInput(where + ": frames must be ascending inside [begin, end); frame " +
                         std::to_string(k) + " is " + std::to_string(f));
    }
  }
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
  check_pool_size(pool_size);
  const EpochPlan plan = plan_for(inputs, world_size, num_workers);
  for (const Segment& s : plan.segments(epoch, consumer)) planned_.push_back(Piece::whole(s));
  total_ = plan.samples_per_consumer();
  admit();
}

ConsumerSchedule::ConsumerSchedule(std::vector<Piece> planned, bool shuffle, uint64_t rng_key,
                                   int64_t epoch, int64_t pool_size)
    : planned_(std::move(planned)), pool_size_(pool_size), shuffle_(shuffle), rng_(rng_key), epoch_(epoch) {
  if (epoch < 0) throw InvalidInput("consumer schedule: epoch must be >= 0, got " + std::to_string(epoch));
  check_pool_size(pool_size);
  for (size_t i = 0; i < planned_.size(); ++i) {
    check_piece(planned_[i], i);
    total_ += planned_[i].size();
  }
  admit();
}

void ConsumerSchedule::admit() {
  while (std::cmp_less(pool_.size(), pool_size_) && next_planned_ < planned_.size()) {
    Piece& p = planned_[next_planned_++];
    Entry entry{p.span(), p.size(), {}};
    if (p.explicit_frames()) {
      entry.frames = std::move(p.frames);  // a planned piece is admitted once
    } else if (shuffle_) {
      entry.frames.resize(static_cast<size_t>(entry.left));
      std::iota(entry.frames.begin(), entry.frames.end(), p.begin);
    }
    pool_frames_ += entry.left;
    admitted_.push_back(entry.segment);
    pool_.push_back(std::move(entry));
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
      auto& rem = e.frames;
      f = rem[static_cast<size_t>(r)];
      rem[static_cast<size_t>(r)] = rem.back();
      rem.pop_back();
      --e.left;
    } else {
      Entry& e = pool_[0];
      f = e.frames.empty() ? e.segment.end - e.left
                           : e.frames[e.frames.size() - static_cast<size_t>(e.left)];
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

std::vector<Piece> ConsumerSchedule::unconsumed() const {
  std::vector<Piece> out;
  out.reserve(pool_.size() + (planned_.size() - next_planned_));
  for (const Entry& e : pool_) {
    Piece p{e.segment.episode_pos, 0, 0, {}};
    if (shuffle_) {
      p.frames = e.frames;
      std::sort(p.frames.begin(), p.frames.end());
    } else if (e.frames.empty()) {
      p.frames.resize(static_cast<size_t>(e.left));
      std::iota(p.frames.begin(), p.frames.end(), e.segment.end - e.left);
    } else {
      p.frames.assign(e.frames.end() - e.left, e.frames.end());
    }
    p.begin = p.frames.front();
    p.end = p.frames.back() + 1;
    if (p.end - p.begin == p.size()) p.frames.clear();  // contiguous: a whole range again
    out.push_back(std::move(p));
  }
  out.insert(out.end(), planned_.begin() + static_cast<std::ptrdiff_t>(next_planned_), planned_.end());
  return out;
}

std::vector<Segment> ConsumerSchedule::take_admitted() { return std::exchange(admitted_, {}); }

std::vector<Segment> ConsumerSchedule::take_evicted() { return std::exchange(evicted_, {}); }

}  // namespace lrs::sampling
