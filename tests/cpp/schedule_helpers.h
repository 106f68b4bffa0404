// Test helpers for the sampling tests: samples as (episode_pos, frame) pairs, draining a schedule,
// and the frames a list of segments or pieces covers. Header-only; thread-safe (no state).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "sampling/consumer_schedule.h"
#include "sampling/epoch_plan.h"

namespace lrs::test {

using Frame = std::pair<int64_t, int64_t>;  // (episode_pos, frame offset)

// Every remaining sample of `s`, in order, drawn `batch` at a time.
inline std::vector<Frame> drain(sampling::ConsumerSchedule& s, int64_t batch = 7) {
  std::vector<Frame> out;
  std::vector<int64_t> ep(static_cast<size_t>(batch)), fr(static_cast<size_t>(batch));
  while (true) {
    const int64_t k = s.next(ep, fr);
    if (k == 0) break;
    for (int64_t i = 0; i < k; ++i) out.emplace_back(ep[static_cast<size_t>(i)], fr[static_cast<size_t>(i)]);
  }
  return out;
}

inline std::vector<Frame> frames_of(const std::vector<sampling::Segment>& segments) {
  std::vector<Frame> out;
  for (const sampling::Segment& s : segments)
    for (int64_t f = s.begin; f < s.end; ++f) out.emplace_back(s.episode_pos, f);
  return out;
}

inline std::vector<Frame> frames_of(const std::vector<sampling::Piece>& pieces) {
  std::vector<Frame> out;
  for (const sampling::Piece& p : pieces) {
    if (p.explicit_frames()) {
      for (int64_t f : p.frames) out.emplace_back(p.episode_pos, f);
    } else {
      for (int64_t f = p.begin; f < p.end; ++f) out.emplace_back(p.episode_pos, f);
    }
  }
  return out;
}

}  // namespace lrs::test
