#include "av/demuxer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

extern "C" {
#include <libavcodec/bsf.h>
#include <libavutil/pixdesc.h>
}

#include "common/errors.h"

namespace lrs::av {
namespace {

const char* range_name(AVColorRange range) {
  switch (range) {
    case AVCOL_RANGE_MPEG:
      return "tv";
    case AVCOL_RANGE_JPEG:
      return "pc";
    default:
      return "unknown";
  }
}

}  // namespace

void Demuxer::BsfDeleter::operator()(AVBSFContext* bsf) const { av_bsf_free(&bsf); }

Demuxer::Demuxer(const VideoSource& source, DemuxerOptions options)
    : name_(source.name()), source_(source.bytes()) {
  if (!source_) {
    open_path();
  } else {
    open_bytes();
  }
  if (options.index_only) {
    choose_stream();
    format_->flags |= AVFMT_FLAG_NOPARSE;
    if (reader_) reader_->set_policy(ReadPolicy::kZeroFill);  // the header was read strictly
    return;
  }
  if (source_) {
    choose_stream();
    if (source_->has_media()) enter_segment();
  }
  const int rc = avformat_find_stream_info(format_.get(), nullptr);
  rethrow_reader_error();
  if (rc < 0) fail("cannot read stream information (" + error_string(rc) + ")");
  if (!source_) choose_stream();
}

Demuxer::~Demuxer() = default;

void Demuxer::fail(const std::string& what) const { throw InvalidInput(name_ + ": " + what); }

void Demuxer::rethrow_reader_error() {
  if (reader_) reader_->rethrow_if_failed();
}

void Demuxer::open_path() {
  std::error_code ec;
  const auto status = std::filesystem::status(name_, ec);
  if (ec || !std::filesystem::exists(status)) throw FileNotFound(name_ + ": no such file");
  if (std::filesystem::is_directory(status)) fail("is a directory, not a video file");
  // A FIFO, socket or device: opening one for reading can block forever (a FIFO without a writer).
  if (!std::filesystem::is_regular_file(status)) fail("is not a regular file (a FIFO, socket or device), not a video file");
  if (!std::ifstream(name_).good()) throw FileNotFound(name_ + ": cannot be opened for reading");
  if (std::filesystem::file_size(name_, ec) == 0) fail("file is empty (0 bytes), not a video");
  AVFormatContext* raw = nullptr;
  const int rc = avformat_open_input(&raw, name_.c_str(), nullptr, nullptr);
  if (rc < 0) fail("not a readable video container (" + error_string(rc) + ")");
  format_.reset(raw);
}

void Demuxer::open_bytes() {
  reader_ = std::make_unique<ByteReader>(source_, ReadPolicy::kStrict);
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) throw std::bad_alloc();
  raw->pb = reader_->context();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  // Fetched ranges are mp4 as LeRobot writes them: no probing (its reads could leave the header).
  const AVInputFormat* mp4 = av_find_input_format("mp4");
  const int rc = avformat_open_input(&raw, name_.c_str(), mp4, nullptr);  // frees `raw` on failure
  if (rc >= 0) format_.reset(raw);
  rethrow_reader_error();
  if (rc < 0) fail("not a readable video container (mp4 expected: " + error_string(rc) + "; " + source_->describe_ranges() + ")");
}

void Demuxer::choose_stream() {
  stream_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream_index_ < 0) fail("contains no video stream");
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_index_) format_->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVRational tb = time_base();
  if (tb.num <= 0 || tb.den <= 0) fail("video stream has an invalid time base");
}

void Demuxer::enter_segment() {
  // Note [Episode segments]: the first packet after the seek must be the keyframe at media_begin.
  const int64_t start_pts = *source_->start_pts();
  const std::string where = "start_pts=" + std::to_string(start_pts) + ", media range [" +
                            std::to_string(source_->media_begin()) + ", " + std::to_string(source_->media_end()) + ")";
  const SeekLanding first = find_segment_seek(start_pts);
  if (first.pos != source_->media_begin() || first.pts != start_pts || !first.key) {
    const std::string landed = first.pos < 0 ? "no sample" : "the sample at byte " + std::to_string(first.pos) +
                                                                  " with pts " + std::to_string(first.pts) +
                                                                  (first.key ? " (a keyframe)" : " (not a keyframe)");
    fail("index mismatch: seeking to " + where + " gives " + landed +
         "; the media range must start at that keyframe's first byte");
  }
  segment_start_pts_ = start_pts;
  segment_seek_target_ = first.target;
  seek_to_keyframe(start_pts);
}

Demuxer::SeekLanding Demuxer::landing(int64_t target) {
  SeekLanding at{target, -1, 0, false};
  if (av_seek_frame(format_.get(), stream_index_, target, AVSEEK_FLAG_BACKWARD) < 0) return at;
  UniquePacket packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  if (read_frame(packet.get()) >= 0) {
    at = {target, packet->pos, packet->pts, (packet->flags & AV_PKT_FLAG_KEY) != 0};
    av_packet_unref(packet.get());
  }
  return at;
}

// Note [Segment seek target]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// libav's mov demuxer seeks on the decode-time axis: it turns the requested pts into a dts by
// subtracting one offset for the whole stream (the smallest presented pts plus the dts shift) and
// lands on the last keyframe at or before that dts. When an edit list leaves the first samples out,
// that offset is not the keyframes' own pts - dts, and seeking to a keyframe's pts lands on an earlier
// keyframe: for a segment, one outside the fetched bytes. The landing is monotonic in the requested
// pts, so the segment's first keyframe gets the request that lands on it, searched from its pts
// (exponential steps, then bisection; one probe when the file's offsets agree, as in lerobot's
// files). A probe reads one packet with unfetched bytes as zeros: only its position and pts are
// looked at. Seeks to later keyframes request at least that target, so none lands before the
// segment; one that lands on an earlier keyframe inside it decodes forward from there.
Demuxer::SeekLanding Demuxer::find_segment_seek(int64_t start_pts) {
  const int64_t begin = source_->media_begin();
  // Signed distance from `begin` in the search's direction: < 0 short of it, >= 0 at or past it.
  const auto past = [begin](const SeekLanding& at, int64_t direction) { return (at.pos - begin) * direction; };
  reader_->set_policy(ReadPolicy::kZeroFill);
  const SeekLanding first = landing(start_pts);
  SeekLanding found = first;
  if (first.pos >= 0 && first.pos != begin) {
    const int64_t direction = first.pos < begin ? 1 : -1;
    SeekLanding before = first;  // short of `begin`
    std::optional<SeekLanding> after;
    for (int64_t step = 1; step <= (int64_t{1} << 40) && !after; step *= 2) {
      const SeekLanding probe = landing(start_pts + direction * step);
      if (probe.pos < 0) break;
      if (past(probe, direction) >= 0) {
        after = probe;
      } else {
        before = probe;
      }
    }
    while (after && after->pos != begin && (after->target - before.target) * direction > 1) {
      const SeekLanding middle = landing(before.target + (after->target - before.target) / 2);
      if (middle.pos < 0) break;
      (past(middle, direction) >= 0 ? *after : before) = middle;
    }
    if (after && after->pos == begin) found = *after;
  }
  reader_->set_policy(ReadPolicy::kStrict);
  rethrow_reader_error();
  return found;
}

void Demuxer::fill_stream_info(StreamInfo& info) const {
  const AVCodecParameters* par = codec_parameters();
  info.path = name_;
  info.codec = avcodec_get_name(par->codec_id);
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
  info.pixel_format = pix ? pix : "unknown";
  const char* space = av_color_space_name(par->color_space);
  info.color_space = space ? space : "unknown";
  info.color_range = range_name(par->color_range);
  info.width = par->width;
  info.height = par->height;
}

FrameTable Demuxer::scan_frame_table(int64_t* packets_read) {
  UniquePacket packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  std::vector<FrameTable::Packet> packets;
  bool first = true;
  int64_t first_pts = 0;
  while (read_frame(packet.get()) >= 0) {  // EOF, or a damaged tail: keep what was readable
    ++*packets_read;
    if ((packet->flags & AV_PKT_FLAG_CORRUPT) != 0) {  // libav marks a sample cut short by the end of the bytes
      const int64_t pos = packet->pos;
      av_packet_unref(packet.get());
      if (is_segment()) {
        fail("truncated segment: the sample at byte " + std::to_string(pos) + " runs past the end of the fetched media range [" +
             std::to_string(source_->media_begin()) + ", " + std::to_string(source_->media_end()) + ")");
      }
      // A truncated file: the cut sample is no frame, and nothing after it is readable. Left out of
      // the table, it makes the file's frame count short, which the dataset reports before it emits
      // any of the file's frames (Note [What is checked, and when] in validation.py), instead of a
      // decode error at that frame, late in an epoch.
      break;
    }
    if (packet->size > 0) {
      const int64_t pts = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
      if (pts != AV_NOPTS_VALUE) {
        if (first) first_pts = pts;
        first = false;
        // Note [Episode segments]: leading pictures before the segment's first keyframe are not decodable.
        // Note [Discarded samples] (frame_table.h): outside the edit list, a seek point but no frame.
        if (!is_segment() || pts >= first_pts) {
          packets.push_back({pts, (packet->flags & AV_PKT_FLAG_KEY) != 0, (packet->flags & AV_PKT_FLAG_DISCARD) != 0});
        }
      }
    }
    av_packet_unref(packet.get());
  }
  const AVStream* st = stream();
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  const double fallback_fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
  std::string outside = "the timestamp is outside the stream";
  if (is_segment()) {
    outside = "the frame is outside the fetched episode range (bytes [" + std::to_string(source_->media_begin()) +
              ", " + std::to_string(source_->media_end()) + ") of the file)";
  }
  return FrameTable(name_, packets, av_q2d(st->time_base), fallback_fps, std::move(outside));
}

void Demuxer::seek_to_keyframe(int64_t keyframe_pts) {
  int64_t target = keyframe_pts;
  if (segment_seek_target_) {  // Note [Segment seek target]
    target = keyframe_pts == segment_start_pts_ ? *segment_seek_target_ : std::max(keyframe_pts, *segment_seek_target_);
  }
  const int rc = av_seek_frame(format_.get(), stream_index_, target, AVSEEK_FLAG_BACKWARD);
  rethrow_reader_error();
  if (rc < 0) {
    fail("seek to pts " + std::to_string(keyframe_pts) + " (" + std::to_string(keyframe_pts * av_q2d(time_base())) +
         "s) failed (" + error_string(rc) + ")");
  }
  if (bsf_) av_bsf_flush(bsf_.get());
  bsf_draining_ = false;
}

bool Demuxer::seek_to_start() {
  if (is_segment()) return false;
  // mov: a time before the first index entry seeks to sample 0 (with AVSEEK_FLAG_BACKWARD).
  const int rc = av_seek_frame(format_.get(), stream_index_, std::numeric_limits<int64_t>::min() / 4,
                               AVSEEK_FLAG_BACKWARD);
  rethrow_reader_error();
  if (rc < 0) return false;
  if (bsf_) av_bsf_flush(bsf_.get());
  bsf_draining_ = false;
  return true;
}

int Demuxer::read_frame(AVPacket* packet) {
  for (;;) {
    const int rc = av_read_frame(format_.get(), packet);
    if (reader_ && reader_->failed()) {
      if (rc >= 0) av_packet_unref(packet);
      rethrow_reader_error();
    }
    if (rc < 0 || packet->stream_index == stream_index_) return rc;
    av_packet_unref(packet);
  }
}

bool Demuxer::read_packet(AVPacket* packet) {
  if (!bsf_) return read_frame(packet) >= 0;
  for (;;) {
    int rc = av_bsf_receive_packet(bsf_.get(), packet);
    if (rc == 0) return true;
    if (rc == AVERROR_EOF) return false;
    if (rc != AVERROR(EAGAIN)) fail(std::string("bitstream filter ") + bsf_->filter->name + " failed (" + error_string(rc) + ")");
    if (bsf_draining_) return false;
    if (read_frame(packet) < 0) {
      bsf_draining_ = true;
      av_bsf_send_packet(bsf_.get(), nullptr);
      continue;
    }
    rc = av_bsf_send_packet(bsf_.get(), packet);
    if (rc < 0) {
      av_packet_unref(packet);
      fail(std::string("bitstream filter ") + bsf_->filter->name + " rejected a packet (" + error_string(rc) + ")");
    }
  }
}

void Demuxer::set_bitstream_filter(const char* filter_name) {
  const AVBitStreamFilter* filter = av_bsf_get_by_name(filter_name);
  AVBSFContext* raw = nullptr;
  if (filter == nullptr || av_bsf_alloc(filter, &raw) < 0) fail(std::string("no bitstream filter ") + filter_name);
  bsf_.reset(raw);
  if (avcodec_parameters_copy(bsf_->par_in, codec_parameters()) < 0) throw std::bad_alloc();
  bsf_->time_base_in = time_base();
  const int rc = av_bsf_init(bsf_.get());
  if (rc < 0) fail(std::string("cannot initialise ") + filter_name + " (" + error_string(rc) + ")");
  bsf_draining_ = false;
}

}  // namespace lrs::av
