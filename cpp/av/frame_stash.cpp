#include "av/frame_stash.h"

#include <string>

#include "common/errors.h"

namespace lrs::av {
namespace {

int64_t buffer_bytes(const AVFrame& frame) {
  int64_t bytes = 0;
  for (const AVBufferRef* buf : frame.buf) {
    if (buf != nullptr) bytes += static_cast<int64_t>(buf->size);
  }
  return bytes;
}

// A copy of a software frame in buffers of its own (pixels, size, pts, flags, colour properties).
UniqueFrame copy_frame(const AVFrame& decoded) {
  UniqueFrame copy(av_frame_alloc());
  if (!copy) throw std::bad_alloc();
  copy->format = decoded.format;
  copy->width = decoded.width;
  copy->height = decoded.height;
  int rc = av_frame_get_buffer(copy.get(), 0);
  if (rc == AVERROR(ENOMEM)) throw std::bad_alloc();
  if (rc >= 0) rc = av_frame_copy(copy.get(), &decoded);
  if (rc >= 0) rc = av_frame_copy_props(copy.get(), &decoded);
  if (rc < 0) throw Error("cannot copy a decoded frame (" + error_string(rc) + ")");
  return copy;
}

}  // namespace

FrameStashBudget::FrameStashBudget(int64_t max_bytes) : max_bytes_(max_bytes) {
  if (max_bytes < 1) throw InvalidInput("frame stash budget must be >= 1 byte, got " + std::to_string(max_bytes));
}

bool FrameStashBudget::try_reserve(int64_t bytes) {
  int64_t used = used_.load();
  do {
    if (used + bytes > max_bytes_) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes));
  int64_t peak = peak_.load();
  while (used + bytes > peak && !peak_.compare_exchange_weak(peak, used + bytes)) {
  }
  return true;
}

void FrameStashBudget::release(int64_t bytes) { used_.fetch_sub(bytes); }

FrameStash::FrameStash(std::shared_ptr<FrameStashBudget> budget, int64_t num_frames)
    : budget_(std::move(budget)), pass_(budget_->pass()), served_(static_cast<size_t>(num_frames), false) {}

FrameStash::~FrameStash() { clear(); }

void FrameStash::clear() {
  budget_->release(static_cast<int64_t>(kept_.size()) * frame_bytes_);
  kept_.clear();
  order_.clear();
}

void FrameStash::sync_pass() {
  const uint64_t pass = budget_->pass();
  if (pass == pass_) return;
  pass_ = pass;
  clear();
  served_.assign(served_.size(), false);
}

void FrameStash::drop_oldest() {
  while (!order_.empty()) {
    const int64_t frame = order_.front();
    order_.pop_front();
    if (kept_.erase(frame) != 0) {
      budget_->release(frame_bytes_);
      return;
    }
  }
}

bool FrameStash::keep(int64_t frame, const AVFrame& decoded, bool evict) {
  if (served(frame) || holds(frame)) return false;
  // No copy when it could not be kept: the budget is full and this stash has nothing to give.
  if (frame_bytes_ != 0 && !budget_->has_room(frame_bytes_) && (!evict || kept_.empty())) return false;
  UniqueFrame copy = copy_frame(decoded);
  const int64_t bytes = buffer_bytes(*copy);
  if (frame_bytes_ == 0) frame_bytes_ = bytes;
  if (bytes != frame_bytes_) return false;  // a frame of another size: the decoder rejects it on use
  while (!budget_->try_reserve(bytes)) {
    if (!evict || kept_.empty()) return false;
    drop_oldest();
  }
  kept_.emplace(frame, std::move(copy));
  order_.push_back(frame);
  // Frames taken leave stale entries in order_; compact when they dominate.
  if (order_.size() > 2 * kept_.size() + 64) {
    std::erase_if(order_, [this](int64_t f) { return !kept_.contains(f); });
  }
  return true;
}

UniqueFrame FrameStash::take(int64_t frame) {
  auto it = kept_.find(frame);
  if (it == kept_.end()) return nullptr;
  UniqueFrame out = std::move(it->second);
  kept_.erase(it);
  budget_->release(frame_bytes_);
  return out;
}

}  // namespace lrs::av
