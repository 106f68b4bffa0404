// FrameStash: decoded frames a CpuVideoDecoder keeps for requests still to come in this pass, so a
// frame decoded on the way to another (a keyframe before its target, or the rest of a GOP) is not
// decoded again when its own request arrives (Note [Frame stash]). FrameStashBudget is the byte
// budget, and the pass number, that the stashes of one consumer's decoders share.
//
// FrameStashBudget is thread-safe (atomics; shared by decoders leased to different threads). A
// FrameStash belongs to one decoder and is NOT thread-safe. Stashed frames are our own copies (never
// references into the codec's frame pool), so the memory they hold is exactly what the budget counts
// and is freed when they leave.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "av/av_handles.h"

namespace lrs::av {

// Note [Frame stash]
// ~~~~~~~~~~~~~~~~~~
// Uniform random access at small GOPs decodes most frames twice: at GOP 2 a request for the frame
// after a keyframe decodes the keyframe first, and the keyframe's own request (later in the epoch)
// decodes it again; a keyframe costs several times another frame (7.6x on lerobot's AV1 settings).
// Within one pass a consumer asks for each of its frames once (more often with delta_timestamps
// windows), so a decoded frame whose request has not come yet is worth keeping:
//   - on the way: every frame decoded before the target (from the seek's keyframe) is kept;
//   - decode-ahead: before a seek leaves a GOP, the frames after the last target up to the next
//     keyframe are decoded and kept, while the budget has room (never evicting for them);
//   - served: a frame already returned in this pass is never kept again (its request came), so the
//     budget holds only frames still wanted. A new pass (FrameStashBudget::begin_pass, called by the
//     consumer when its epoch starts) empties each stash and the served marks at its next use.
// A request finds its frame in the stash before anything is decoded, and the frame leaves the stash.
// When keeping a frame on the way would exceed the budget, this stash's oldest frames go first; a
// stash with none to give keeps nothing. The budget is exceeded by at most the one frame each decoder
// holds out while it is being converted.
// What is returned is bitwise what decoding would return: the copy is the codec's output plane for
// plane, converted by the same converter. With uniform random order the stash holds up to about a
// quarter of the pool's frames at mid-pass (decoding each frame about once, ~1.8x fewer decode ms at
// GOP 2 on lerobot's settings); a smaller budget keeps fewer, and the gain falls faster than the
// budget (bench/README.md, "Frame stash", has the measurements and a simulation of smaller budgets).

class FrameStashBudget {
 public:
  explicit FrameStashBudget(int64_t max_bytes);  // max_bytes >= 1 (InvalidInput otherwise)

  int64_t max_bytes() const { return max_bytes_; }
  int64_t used_bytes() const { return used_.load(); }
  int64_t peak_bytes() const { return peak_.load(); }
  bool has_room(int64_t bytes) const { return used_.load() + bytes <= max_bytes_; }
  // Adds `bytes` to the used bytes when they fit the budget; false (nothing added) otherwise.
  bool try_reserve(int64_t bytes);
  void release(int64_t bytes);

  // Starts a new pass: every stash forgets what it served and holds (at its next use).
  void begin_pass() { pass_.fetch_add(1); }
  uint64_t pass() const { return pass_.load(); }

 private:
  const int64_t max_bytes_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<uint64_t> pass_{0};
};

class FrameStash {
 public:
  FrameStash(std::shared_ptr<FrameStashBudget> budget, int64_t num_frames);
  ~FrameStash();
  FrameStash(const FrameStash&) = delete;
  FrameStash& operator=(const FrameStash&) = delete;

  // Empties the stash and the served marks when the budget's pass changed since the last call.
  void sync_pass();

  bool served(int64_t frame) const { return served_[static_cast<size_t>(frame)]; }
  void mark_served(int64_t frame) { served_[static_cast<size_t>(frame)] = true; }
  bool holds(int64_t frame) const { return kept_.contains(frame); }
  // Whether a frame of `frame_bytes` would fit without evicting anything (0: size not known yet).
  bool has_room() const { return budget_->has_room(frame_bytes_); }

  // Keeps a copy of `decoded` as frame `frame` unless it was served, is kept already, or the budget
  // cannot take it (after evicting this stash's oldest frames when `evict` is set). True if kept.
  bool keep(int64_t frame, const AVFrame& decoded, bool evict);
  // Frame `frame` moved out of the stash (its bytes released), or null when it is not kept.
  UniqueFrame take(int64_t frame);

 private:
  void drop_oldest();
  void clear();

  std::shared_ptr<FrameStashBudget> budget_;
  uint64_t pass_ = 0;
  std::vector<bool> served_;
  std::unordered_map<int64_t, UniqueFrame> kept_;
  std::deque<int64_t> order_;  // kept frames, oldest first (may name frames taken since)
  int64_t frame_bytes_ = 0;    // bytes of one copy (all frames of a stream have one size)
};

}  // namespace lrs::av
