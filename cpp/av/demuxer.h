// Demuxer: opens one video (a local file, or a ByteSource's fetched byte ranges), chooses its video
// stream, builds its FrameTable by a packet scan, seeks to keyframes and hands out the stream's
// packets, optionally through a bitstream filter (NVDEC wants Annex B). Shared by the CPU and
// NVDEC decoders, so both reject the same bad inputs with the same messages.
//
// Does no decoding. Owns its AVFormatContext, the ByteReader feeding it (if any) and the bitstream
// filter. Not thread-safe. See Note [Episode segments].
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "av/av_handles.h"
#include "av/byte_source.h"
#include "av/frame_table.h"
#include "decode/video_decoder.h"
#include "decode/video_source.h"

struct AVBSFContext;

namespace lrs::av {

// Note [Episode segments]
// ~~~~~~~~~~~~~~~~~~~~~~~
// A ByteSource with a media range holds one episode's samples: the bytes from the keyframe at or
// before the episode's first frame to the end of its last sample. The mov demuxer still parses the
// whole file's sample table from the header, so after opening we seek (pts, AVSEEK_FLAG_BACKWARD)
// to the source's start_pts (with the request that lands there: Note [Segment seek target] in
// demuxer.cpp) and check that the first packet is the keyframe at media_begin (else the index the
// ranges were computed from disagrees with the file: InvalidInput naming the URL).
// avformat_find_stream_info runs only after that seek, so its probe reads come from the segment.
// The scan then reads packets up to the media end (end of file for the demuxer), so the FrameTable
// holds exactly the segment's frames, on the file's own clock: timestamps stay absolute and frames
// equal the whole-file decoder's bitwise. Frames the segment cannot decode are left out: leading
// pictures of an open GOP (pts before the starting keyframe, their references lie before the
// range). A sample cut by the range's end is a truncated segment (InvalidInput), not a frame.

struct DemuxerOptions {
  // For the sample-index scan (sample_index.h) only: after the header is parsed, unfetched bytes
  // read as zeros; no packet parsing, no avformat_find_stream_info, no segment entry: packets
  // carry the index's view.
  bool index_only = false;
};

class Demuxer {
 public:
  // Opens `source`. A path: FileNotFound (missing, unreadable), InvalidInput (directory, empty, not
  // a container, no video stream). A ByteSource: InvalidInput naming the URL (not an mp4, reads
  // outside the fetched ranges, index mismatch at media_begin). Every message names the source.
  explicit Demuxer(const VideoSource& source, DemuxerOptions options = {});
  ~Demuxer();
  Demuxer(const Demuxer&) = delete;
  Demuxer& operator=(const Demuxer&) = delete;

  const std::string& name() const { return name_; }
  AVFormatContext* format() const { return format_.get(); }
  int stream_index() const { return stream_index_; }
  const AVStream* stream() const { return format_->streams[stream_index_]; }
  const AVCodecParameters* codec_parameters() const { return stream()->codecpar; }
  AVRational time_base() const { return stream()->time_base; }
  // True for a ByteSource with a media range (Note [Episode segments]).
  bool is_segment() const { return source_ != nullptr && source_->has_media(); }

  // name, codec, pixel_format, color_space, color_range, width, height from the stream header.
  void fill_stream_info(StreamInfo& info) const;

  // Reads every packet of the stream from the current position (no decoding) and builds the
  // FrameTable; adds the packets read to `*packets_read`. A damaged tail of a file ends the scan
  // (the whole samples before it are kept; a sample cut by the file's end is not a frame); a
  // segment must end cleanly (Note [Episode segments]).
  FrameTable scan_frame_table(int64_t* packets_read);

  // Seeks so that the next packet is the keyframe with presentation time `keyframe_pts` (or the
  // one before it); flushes the bitstream filter. Throws InvalidInput when libav cannot seek.
  void seek_to_keyframe(int64_t keyframe_pts);

  // The next packet of the stream (filtered when a bitstream filter is set) into `packet`; false
  // at end of stream or at a damaged tail. Reads outside a ByteSource's fetched ranges throw.
  bool read_packet(AVPacket* packet);

  // Seeks so that the next packet is the stream's first sample (a request below every index entry);
  // flushes the bitstream filter. False when libav cannot, or for an episode segment (its first
  // sample is the segment's own keyframe: seek_to_keyframe reaches it). Note [Shared first dts] in
  // av/cpu_decoder.cpp says when this is needed.
  bool seek_to_start();

  // Passes packets through libav's bitstream filter `filter_name` (e.g. "h264_mp4toannexb").
  void set_bitstream_filter(const char* filter_name);

  [[noreturn]] void fail(const std::string& what) const;

 private:
  void open_path();
  void open_bytes();
  void choose_stream();
  void enter_segment();
  // Where a seek lands: the first packet after seeking to `target` (pos -1: none).
  struct SeekLanding {
    int64_t target = 0;
    int64_t pos = -1;
    int64_t pts = 0;
    bool key = false;
  };
  SeekLanding landing(int64_t target);
  // The request that lands on the packet at media_begin (Note [Segment seek target]); when none
  // does, where a request for `start_pts` lands.
  SeekLanding find_segment_seek(int64_t start_pts);
  int read_frame(AVPacket* packet);  // av_read_frame of our stream, rethrowing reader errors
  void rethrow_reader_error();

  struct BsfDeleter {
    void operator()(AVBSFContext* bsf) const;
  };

  std::string name_;
  std::shared_ptr<const ByteSource> source_;
  std::unique_ptr<ByteReader> reader_;  // declared before format_: outlives it
  UniqueFormatContext format_;
  std::unique_ptr<AVBSFContext, BsfDeleter> bsf_;
  bool bsf_draining_ = false;
  int stream_index_ = -1;
  // Note [Segment seek target]: the segment's first keyframe's pts and the request landing on it.
  int64_t segment_start_pts_ = 0;
  std::optional<int64_t> segment_seek_target_;
};

}  // namespace lrs::av
