// FrameTable: one video stream's frames in presentation order, its keyframes, and LeRobot's
// nearest-frame rule (Note [Frame choice] in decode/video_decoder.h). Built once per decoder from a
// demux-only scan (Demuxer::scan_frame_table), shared by the CPU and NVDEC decoders. Samples the
// container marks for discard are seek points, never frames (Note [Discarded samples]).
//
// Owns its tables (O(frames)). Immutable after construction: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lrs::av {

// Note [Discarded samples]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// An mp4 edit list can leave samples of the track outside the presentation: libav's mov demuxer
// still returns them, flagged AV_PKT_FLAG_DISCARD, because later pictures may reference them, and
// libavcodec decodes them but outputs no frame. Two common cases, both with B-frames:
//   - leading: the edit starts after the first samples (a stream muxed with negative pts, a cut):
//     the keyframe and the pictures before the edit's start are discarded, so the first frame shown
//     may be a B- or P-picture whose keyframe is a discarded sample;
//   - trailing: the edit ends before the last picture in presentation order (FFmpeg 5.1's mp4
//     muxer writes such an edit when the packets carry no duration and the last picture shown is
//     not the last one decoded).
// PyAV and torchcodec (lerobot's decoders) list and return only the frames shown, so a discarded
// sample is never a frame here: it is not in pts(), not counted, its timestamp is "no frame" for
// nearest() (FrameTimestampError, as lerobot raises), and it does not shift fps() or duration_s().
// A discarded keyframe stays in keyframe_pts(): seeking to it and decoding forward is how the
// frames after it are reached (the decoders feed every packet and wait for the target's pts).

class FrameTable {
 public:
  struct Packet {
    int64_t pts;  // in time_base units
    bool key;
    bool discard = false;  // outside the edit list: a seek point, not a frame (Note [Discarded samples])
  };

  // `packets` of the video stream in demux order. Throws InvalidInput naming `path` when there is no
  // frame, no keyframe at or before the first frame, or two frames share a pts. `fallback_fps` is used when
  // the stream has a single frame (no spacing to measure). `outside_note` ends the message of a
  // timestamp outside the frames (an episode segment says so: Note [Episode segments]).
  FrameTable(std::string path, const std::vector<Packet>& packets, double time_base_s, double fallback_fps,
             std::string outside_note = "the timestamp is outside the stream");

  int64_t size() const { return static_cast<int64_t>(pts_.size()); }
  const std::vector<int64_t>& pts() const { return pts_; }
  const std::vector<double>& seconds() const { return seconds_; }
  // Keyframes in pts order, discarded ones included (seek points); the first is at or before pts()[0].
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
