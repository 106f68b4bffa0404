// CpuVideoDecoder: decodes one video (a local file, or an episode segment of a remote file fetched
// as byte ranges: Note [Episode segments] in av/demuxer.h) with libavcodec on the CPU (libdav1d for
// AV1) and returns RGB frames at requested timestamps as a [T, 3, H, W] host batch, uint8 or
// float32, or writes them into caller-owned memory (decode_into).
//
// Owns its demuxer, codec and scaler (RAII). Not thread-safe: one caller at a time (the
// DecoderCache leases decoders exclusively). See Note [Frame choice] in decode/video_decoder.h and
// Note [Seeking] below.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "av/av_handles.h"
#include "av/demuxer.h"
#include "av/frame_stash.h"
#include "av/frame_table.h"
#include "av/rgb_converter.h"
#include "decode/video_decoder.h"

namespace lrs::av {

// Note [Seeking]
// ~~~~~~~~~~~~~~
// At open, a demux-only scan (no decoding) records every packet's pts and key flag, giving the
// frame table in presentation order and the keyframes. A request is served in pts order: a target
// ahead of the last decoded frame is reached by decoding forward when the decoder is already in the
// target's GOP, or when decoding forward costs no more frames than a seek would (so a sequential
// reader crosses GOP boundaries without seeking); otherwise we seek to the target's keyframe and
// flush. Several timestamps inside one GOP therefore decode that GOP once. We seek on the
// keyframe's *pts* with AVSEEK_FLAG_BACKWARD: libavformat's mp4 demuxer indexes presentation
// times (with B-frames, seeking on the keyframe's dts lands one GOP early — measured, and covered
// by the tests). If the first frame after a seek is already past the target (a demuxer that lands
// late), we seek to the previous keyframe instead, up to 4 times. The last decoded frame is kept,
// so re-requesting it is free. A seek is the only thing that flushes the codec; the codec context,
// its threads and its frame pool stay open for the decoder's lifetime (a flush keeps them), and a
// decoder is re-opened only when the DecoderCache evicted it. DecoderStats counts each of these
// (seeks, flushes, frames and keyframes decoded, GOP boundaries crossed forward, frames reused) and
// the time spent in the codec and in conversion. Measured on lerobot's settings (480x640 AV1, GOP 2,
// SVT-AV1 preset 12; lrs_decode_bench): a keyframe takes about 4.7 ms, a frame between keyframes
// about 0.5-0.7 ms, and random access runs at about 95 % of the rate its own mix of decoded frames
// and conversions allows at sequential cost (seeks, flushes and packet reads are the rest): a seek
// costs less than one decoded frame, so the rule above seeks as soon as decoding forward would
// decode a frame more than the seek would. With a frame stash (Note [Frame stash] in
// av/frame_stash.h) a request is first looked up there, the frames decoded on the way to a target
// are kept, and before a seek the rest of the current GOP is decoded into it.

struct CpuDecoderOptions {
  int threads = 1;  // libavcodec/dav1d threads for this decoder (0 = libav's automatic choice)
  // Keep decoded frames for later requests within this budget (Note [Frame stash]); null: none.
  std::shared_ptr<FrameStashBudget> stash;
};

class CpuVideoDecoder final : public VideoDecoder {
 public:
  // Throws FileNotFound (missing file) or InvalidInput (empty, not a video, corrupt, no decodable
  // frame, unsupported codec; for a ByteSource also reads outside its ranges, index mismatch),
  // each naming the file (or URL) and the reason.
  explicit CpuVideoDecoder(VideoSource source, CpuDecoderOptions options = {});

  const StreamInfo& info() const override { return info_; }
  void decode_into(std::span<const double> timestamps_s, double tolerance_s, const FrameDestinations& out) override;
  DecoderStats stats() const override { return stats_; }
  std::string backend() const override { return "cpu"; }
  // Codec memory plus an episode segment's in-memory media bytes, which the decoder keeps alive.
  int64_t memory_bytes() const override { return VideoDecoder::memory_bytes() + source_bytes_; }

  // Presentation times (seconds) of every frame, ascending.
  const std::vector<double>& frame_times() const override { return frames_->seconds(); }
  const FrameTable& frame_table() const { return *frames_; }

  // Index (into frame_times()) of the frame nearest `timestamp_s` (Note [Frame choice]); throws
  // FrameTimestampError. With decode_frame, the building block of outputs other than RGB
  // (av/gray_frames.h).
  int64_t frame_index_at(double timestamp_s, double tolerance_s) const {
    return frames_->nearest(timestamp_s, tolerance_s);
  }
  // Decodes frame `frame_idx` (Note [Seeking]) and returns it, as the codec produced it (software
  // pixel format); valid until the next decode. Also what the hybrid path stages for the GPU
  // (cuda/hybrid_decoder.h). Throws InvalidInput naming the file when it cannot be decoded.
  const AVFrame& decode_frame(int64_t frame_idx);

 private:
  void open_codec(const CpuDecoderOptions& options);
  void scan_packets();
  void seek_to_keyframe_of(int64_t frame_idx, int64_t keyframe_steps_back);
  // Seeks to the stream's first sample (Note [Shared first dts] in av/cpu_decoder.cpp); false when
  // the demuxer cannot (an episode segment).
  bool rewind_to_start();
  // After a demuxer seek: flushes the codec, forgets the held frame, counts the seek and the flush.
  void flush_after_seek();
  // Decode-ahead (Note [Frame stash]): before a seek leaves the current GOP, decodes and keeps its
  // frames after the current one that this pass has not served, while the budget has room.
  void finish_gop_into_stash();
  // Keeps the codec's current frame in the stash (a frame of the table, not served, within budget).
  void keep_in_stash(bool evict);
  bool receive_next_frame();  // false at end of stream
  void convert(const AVFrame* frame, uint8_t* out, PixelType dtype);
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  StreamInfo info_;
  DecoderStats stats_;
  std::unique_ptr<Demuxer> demuxer_;
  int64_t source_bytes_ = 0;  // ByteSource::media_memory_bytes()
  UniqueCodecContext codec_;
  RgbConverter rgb_;
  UniquePacket packet_;
  UniqueFrame frame_;       // the last frame received from the codec
  std::unique_ptr<FrameStash> stash_;  // null without a budget
  UniqueFrame from_stash_;  // the last frame returned from the stash (valid until the next decode)

  std::optional<FrameTable> frames_;  // set by scan_packets() in the constructor

  bool have_frame_ = false;      // frame_ holds a decoded frame
  bool draining_ = false;        // the demuxer hit EOF and the codec was sent the flush packet
  bool codec_done_ = false;      // the codec returned AVERROR_EOF
};

}  // namespace lrs::av
