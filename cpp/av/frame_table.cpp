#include "av/frame_table.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/errors.h"

namespace lrs::av {
namespace {

std::string format_seconds(double s) {
  std::ostringstream out;
  out.precision(6);
  out << std::fixed << s << "s";
  return out.str();
}

}  // namespace

FrameTable::FrameTable(std::string path, const std::vector<Packet>& packets, double time_base_s,
                       double fallback_fps, std::string outside_note)
    : path_(std::move(path)), outside_note_(std::move(outside_note)) {
  auto fail = [&](const std::string& what) { throw InvalidInput(path_ + ": " + what); };
  if (packets.empty()) fail("contains no video frames (empty, truncated or corrupt stream)");
  pts_.reserve(packets.size());
  for (const Packet& p : packets) {
    if (!p.discard) pts_.push_back(p.pts);  // Note [Discarded samples]
    if (p.key) keyframe_pts_.push_back(p.pts);
  }
  if (pts_.empty()) fail("contains no video frames: its edit list discards all " + std::to_string(packets.size()) + " samples");
  std::sort(pts_.begin(), pts_.end());
  std::sort(keyframe_pts_.begin(), keyframe_pts_.end());
  if (keyframe_pts_.empty() || keyframe_pts_.front() > pts_.front()) {
    fail("first video frame is not a keyframe and follows none (corrupt stream)");
  }
  if (std::adjacent_find(pts_.begin(), pts_.end()) != pts_.end()) {
    fail("two video frames share a presentation timestamp (corrupt stream)");
  }
  seconds_.reserve(pts_.size());
  for (int64_t pts : pts_) seconds_.push_back(static_cast<double>(pts) * time_base_s);
  if (pts_.size() > 1) {
    std::vector<int64_t> steps(pts_.size() - 1);
    for (size_t i = 1; i < pts_.size(); ++i) steps[i - 1] = pts_[i] - pts_[i - 1];
    std::nth_element(steps.begin(), steps.begin() + steps.size() / 2, steps.end());
    fps_ = 1.0 / (static_cast<double>(steps[steps.size() / 2]) * time_base_s);
  } else {
    fps_ = fallback_fps;
  }
}

double FrameTable::duration_s() const {
  return seconds_.back() - seconds_.front() + (fps_ > 0 ? 1.0 / fps_ : 0.0);
}

int64_t FrameTable::index_of_pts(int64_t pts) const {
  return std::lower_bound(pts_.begin(), pts_.end(), pts) - pts_.begin();
}

int64_t FrameTable::keyframe_pts_of(int64_t frame) const {
  // keyframe_pts_[0] is at or before the first frame, so a keyframe at or before any frame exists.
  return *std::prev(std::upper_bound(keyframe_pts_.begin(), keyframe_pts_.end(), pts_[frame]));
}

int64_t FrameTable::nearest(double t, double tolerance_s) const {
  if (!std::isfinite(t)) throw InvalidInput(path_ + ": timestamp " + std::to_string(t) + " is not a finite number");
  const auto it = std::lower_bound(seconds_.begin(), seconds_.end(), t);
  int64_t idx = it - seconds_.begin();
  if (idx == size()) {
    --idx;
  } else if (idx > 0 && (t - seconds_[idx - 1]) <= (seconds_[idx] - t)) {
    --idx;
  }
  const double gap = std::abs(seconds_[idx] - t);
  if (!(gap < tolerance_s)) {
    std::ostringstream msg;
    msg << path_ << ": no frame within tolerance_s=" << tolerance_s << " of timestamp " << format_seconds(t)
        << " (nearest frame #" << idx << " at " << format_seconds(seconds_[idx]) << ", off by "
        << format_seconds(gap) << "; the stream has " << seconds_.size() << " frames from "
        << format_seconds(seconds_.front()) << " to " << format_seconds(seconds_.back()) << ")";
    if (t < seconds_.front() - tolerance_s || t > seconds_.back() + tolerance_s) {
      msg << "; " << outside_note_;
    }
    throw FrameTimestampError(msg.str());
  }
  return idx;
}

}  // namespace lrs::av
