// FrameTable: one video stream's frames in presentation order, its keyframes, and LeRobot's
// nearest-frame rule (Note [Frame choice] in decode/video_decoder.h). Built once per decoder from a
// demux-only scan (Demuxer::scan_frame_table), shared by the CPU and NVDEC decoders.
//
// Owns its tables (O(frames)). Immutable after construction: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lrs::av {

class FrameTable {
 public:
  struct Packet {
    int64_t pts;  // in time_base units
    bool key;
  };

  // `packets` of the video stream in demux order. Throws InvalidInput naming `path` when there is no
  // frame, the first frame is not a keyframe, or two frames share a pts. `fallback_fps` is used when
  // the stream has a single frame (no spacing to measure). `outside_note` ends the message of a
  // timestamp outside the frames (an episode segment says so: Note [Episode segments]).
  FrameTable(std::string path, const std::vector<Packet>& packets, double time_base_s, double fallback_fps,
             std::string outside_note = "the timestamp is outside the stream");

  int64_t size() const { return static_cast<int64_t>(pts_.size()); }
  const std::vector<int64_t>& pts() const { return pts_; }
  const std::vector<double>& seconds() const { return seconds_; }
  const std::vector<int64_t>& keyframe_pts() const { return keyframe_pts_; }
  // The frame rate the frames' spacing says (median pts step): the container's average rate is
  // skewed by edit lists and B-frame delay on short clips.
  double fps() const { return fps_; }
  double duration_s() const;

  int64_t index_of_pts(int64_t pts) const;       // the frame at or after `pts`
  int64_t keyframe_pts_of(int64_t frame) const;  // pts of the keyframe at or before frame `frame`

  // The frame nearest to `t` seconds; FrameTimestampError (naming the file, the timestamp, the
  // nearest frame and, when t lies outside the frames, `outside_note`) when it is tolerance_s or
  // more away.
  int64_t nearest(double t, double tolerance_s) const;

 private:
  std::string path_;
  std::vector<int64_t> pts_;
  std::vector<double> seconds_;
  std::vector<int64_t> keyframe_pts_;
  double fps_ = 0.0;
  std::string outside_note_;
};

}  // namespace lrs::av
