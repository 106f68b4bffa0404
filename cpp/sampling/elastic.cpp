#include "sampling/elastic.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "common/errors.h"
#include "common/rng.h"
#include "sampling/resume.h"

namespace lrs::sampling {

namespace {

std::string phase_name(size_t j) { return "elastic resume: phase " + std::to_string(j); }

void check_phase(const Phase& p, size_t j) {
  if (p.world_size < 1 || p.num_workers < 0 || p.batch_size < 1 || p.batches < 0) {
    throw InvalidInput(phase_name(j) + " needs world_size >= 1, num_workers >= 0, batch_size >= 1 and " +
                       "batches >= 0, got world_size=" + std::to_string(p.world_size) +
                       ", num_workers=" + std::to_string(p.num_workers) +
                       ", batch_size=" + std::to_string(p.batch_size) + ", batches=" + std::to_string(p.batches));
  }
  if (p.world_size > std::numeric_limits<int64_t>::max() / std::max<int64_t>(p.num_workers, 1)) {
    throw InvalidInput(phase_name(j) + ": world_size * num_workers overflows int64");
  }
}

int64_t consumers_of(const Phase& p) { return p.world_size * std::max<int64_t>(p.num_workers, 1); }

// A whole-range piece again when explicit frames turn out to be contiguous.
void compress(Piece& p) {
  if (p.explicit_frames() && p.frames.back() - p.frames.front() + 1 == p.size()) {
    p.begin = p.frames.front();
    p.end = p.frames.back() + 1;
    p.frames.clear();
  }
}

std::vector<int64_t> frames_of(const Piece& p) {
  if (p.explicit_frames()) return p.frames;
  std::vector<int64_t> out(static_cast<size_t>(p.size()));
  for (int64_t f = p.begin; f < p.end; ++f) out[static_cast<size_t>(f - p.begin)] = f;
  return out;
}

// Frames [from, to) (by rank within the piece) of p.
Piece cut(const Piece& p, int64_t from, int64_t to) {
  if (!p.explicit_frames()) return Piece{p.episode_pos, p.begin + from, p.begin + to, {}};
  Piece out{p.episode_pos, 0, 0, {p.frames.begin() + from, p.frames.begin() + to}};
  out.begin = out.frames.front();
  out.end = out.frames.back() + 1;
  compress(out);
  return out;
}

// Appends p in canonical order, merging it into the last piece when both are of one episode
// (Note [Elastic resume]: each episode is one piece of the leftover).
void append_merged(std::vector<Piece>& out, Piece p) {
  if (out.empty() || out.back().episode_pos != p.episode_pos) {
    out.push_back(std::move(p));
    return;
  }
  Piece& q = out.back();
  if (q.end > p.begin) {
    throw Error("elastic resume: internal error: episode_pos " + std::to_string(p.episode_pos) +
                " frames out of canonical order");
  }
  if (!q.explicit_frames() && !p.explicit_frames() && q.end == p.begin) {
    q.end = p.end;
    return;
  }
  std::vector<int64_t> frames = frames_of(q);
  const std::vector<int64_t> more = frames_of(p);
  frames.insert(frames.end(), more.begin(), more.end());
  q.frames = std::move(frames);
  q.end = p.end;
  compress(q);
}

// Reads a canonical sequence of pieces front to back, k frames at a time.
class Cursor {
 public:
  explicit Cursor(const std::vector<Piece>& pieces) : pieces_(pieces) {}

  // The next k frames (fewer at the end), as pieces.
  std::vector<Piece> take(int64_t k) {
    std::vector<Piece> out;
    while (k > 0 && index_ < pieces_.size()) {
      const Piece& p = pieces_[index_];
      const int64_t n = std::min(k, p.size() - offset_);
      out.push_back(offset_ == 0 && n == p.size() ? p : cut(p, offset_, offset_ + n));
      offset_ += n;
      k -= n;
      if (offset_ == p.size()) {
        ++index_;
        offset_ = 0;
      }
    }
    return out;
  }

  // Skips k frames without copying them.
  void skip(int64_t k) {
    while (k > 0 && index_ < pieces_.size()) {
      const int64_t n = std::min(k, pieces_[index_].size() - offset_);
      offset_ += n;
      k -= n;
      if (offset_ == pieces_[index_].size()) {
        ++index_;
        offset_ = 0;
      }
    }
  }

 private:
  const std::vector<Piece>& pieces_;
  size_t index_ = 0;
  int64_t offset_ = 0;
};

}  // namespace

int64_t pass_batches(int64_t samples, int64_t batch_size, int64_t num_workers, bool drop_last) {
  if (num_workers < 0) {
    throw InvalidInput("elastic resume: num_workers must be >= 0, got " + std::to_string(num_workers));
  }
  return std::max<int64_t>(num_workers, 1) * batches_per_epoch(samples, batch_size, drop_last);
}

int64_t consumed_samples(int64_t batches, int64_t batch_size, int64_t num_workers, int64_t worker,
                         int64_t samples, bool drop_last) {
  const int64_t workers = workers_per_rank(worker, num_workers);
  const int64_t total = pass_batches(samples, batch_size, num_workers, drop_last);
  if (batches < 0 || batches > total) {
    throw InvalidInput("elastic resume: batches must be in [0, " + std::to_string(total) +
                       "] for a pass of " + std::to_string(samples) + " samples per consumer, batch_size=" +
                       std::to_string(batch_size) + (drop_last ? " (drop_last)" : "") + " and " +
                       std::to_string(workers) + " worker(s), got " + std::to_string(batches));
  }
  // Note [Elastic resume]: round robin over the rank's workers, from worker 0.
  const int64_t cw = batches / workers + (batches % workers > worker ? 1 : 0);
  return std::min(cw * batch_size, samples);
}

int64_t leftover_frames(int64_t total_frames, std::span<const Phase> phases) {
  if (total_frames < 0) {
    throw InvalidInput("elastic resume: total_frames must be >= 0, got " + std::to_string(total_frames));
  }
  int64_t left = total_frames;
  for (size_t j = 0; j < phases.size(); ++j) {
    const Phase& p = phases[j];
    check_phase(p, j);
    const int64_t n = left / consumers_of(p);
    int64_t per_rank = 0;
    try {
      for (int64_t k = 0; k < std::max<int64_t>(p.num_workers, 1); ++k) {
        per_rank += consumed_samples(p.batches, p.batch_size, p.num_workers, k, n, p.drop_last);
      }
    } catch (const InvalidInput& e) {
      throw InvalidInput(phase_name(j) + ": " + e.what());
    }
    left -= per_rank * p.world_size;
  }
  return left;
}

uint64_t elastic_key(uint64_t seed, int64_t epoch, int64_t phase, int64_t rank, int64_t worker) {
  const uint64_t key = derive_key(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(rank),
                                  static_cast<uint64_t>(worker), RngPurpose::kElasticPoolDraw);
  return splitmix64(key ^ static_cast<uint64_t>(phase));
}

ElasticPass::ElasticPass(const PlanInputs& inputs, int64_t epoch, std::span<const Phase> phases,
                         int64_t pool_size)
    : seed_(inputs.seed),
      shuffle_(inputs.shuffle),
      pool_size_(pool_size),
      epoch_(epoch),
      phase_(static_cast<int64_t>(phases.size())) {
  if (pool_size < 1) {
    throw InvalidInput("elastic resume: pool_size must be >= 1, got " + std::to_string(pool_size));
  }
  const EpochPlan plan(inputs, 1);  // validates the lengths; one consumer: its slice is everything
  leftover_ = leftover_frames(plan.total_frames(), phases);  // validates the phases
  for (const Segment& s : plan.segments(epoch, 0)) pieces_.push_back(Piece::whole(s));

  for (size_t j = 0; j < phases.size(); ++j) {
    // Note [Elastic resume]: replay every consumer of phase j over its slice of what is left.
    const Phase& p = phases[j];
    const int64_t workers = std::max<int64_t>(p.num_workers, 1);
    const int64_t consumers = consumers_of(p);
    int64_t left = 0;
    for (const Piece& piece : pieces_) left += piece.size();
    const int64_t n = left / consumers;
    Cursor cursor(pieces_);
    std::vector<Piece> next;
    for (int64_t c = 0; c < consumers; ++c) {
      const int64_t rank = c / workers, worker = c % workers;
      const uint64_t key = j == 0 ? derive_key(seed_, static_cast<uint64_t>(epoch), static_cast<uint64_t>(rank),
                                               static_cast<uint64_t>(worker), RngPurpose::kPoolDraw)
                                  : elastic_key(seed_, epoch, static_cast<int64_t>(j), rank, worker);
      ConsumerSchedule schedule(cursor.take(n), shuffle_, key, epoch, pool_size);
      schedule.skip(consumed_samples(p.batches, p.batch_size, p.num_workers, worker, n, p.drop_last));
      for (Piece& piece : schedule.unconsumed()) append_merged(next, std::move(piece));
    }
    for (Piece& piece : cursor.take(left - n * consumers)) append_merged(next, std::move(piece));
    pieces_ = std::move(next);
  }
  int64_t kept = 0;
  for (const Piece& piece : pieces_) kept += piece.size();
  if (kept != leftover_) {
    throw Error("elastic resume: internal error: the replay left " + std::to_string(kept) + " frames, the " +
                "arithmetic " + std::to_string(leftover_));
  }
}

int64_t ElasticPass::samples_per_consumer(int64_t num_consumers) const {
  if (num_consumers < 1) {
    throw InvalidInput("elastic resume: num_consumers must be >= 1, got " + std::to_string(num_consumers));
  }
  return leftover_ / num_consumers;
}

std::vector<Piece> ElasticPass::slice(int64_t consumer, int64_t num_consumers) const {
  const int64_t n = samples_per_consumer(num_consumers);
  if (consumer < 0 || consumer >= num_consumers) {
    throw InvalidInput("elastic resume: consumer must be in [0, " + std::to_string(num_consumers) + "), got " +
                       std::to_string(consumer));
  }
  Cursor cursor(pieces_);
  cursor.skip(consumer * n);
  return cursor.take(n);
}

ConsumerSchedule ElasticPass::schedule(int64_t rank, int64_t world_size, int64_t worker,
                                       int64_t num_workers) const {
  const int64_t consumer = consumer_id(rank, world_size, worker, num_workers);
  const int64_t consumers = world_size * std::max<int64_t>(num_workers, 1);
  return ConsumerSchedule(slice(consumer, consumers), shuffle_, elastic_key(seed_, epoch_, phase_, rank, worker),
                          epoch_, pool_size_);
}

}  // namespace lrs::sampling
