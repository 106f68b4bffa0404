#include "av/cpu_decoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <sstream>

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "common/errors.h"
#include "decode/batch_fill.h"

namespace lrs::av {
namespace {

constexpr int64_t kNoFrame = -1;

std::string format_seconds(double s) {
  std::ostringstream out;
  out.precision(6);
  out << std::fixed << s << "s";
  return out.str();
}

bool is_keyframe(const AVFrame* frame) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 7, 100)
  return (frame->flags & AV_FRAME_FLAG_KEY) != 0;
#else
  return frame->key_frame != 0;
#endif
}

// libdav1d is the AV1 decoder of choice: libavcodec's native "av1" decoder needs a hwaccel.
const AVCodec* find_decoder(AVCodecID id) {
  if (id == AV_CODEC_ID_AV1) {
    if (const AVCodec* dav1d = avcodec_find_decoder_by_name("libdav1d")) return dav1d;
  }
  return avcodec_find_decoder(id);
}

}  // namespace

CpuVideoDecoder::CpuVideoDecoder(VideoSource source, CpuDecoderOptions options)
    : path_(source.name()), packet_(av_packet_alloc()), frame_(av_frame_alloc()) {
  if (!packet_ || !frame_) throw std::bad_alloc();
  demuxer_ = std::make_unique<Demuxer>(source);
  if (source.bytes()) source_bytes_ = source.bytes()->media_memory_bytes();
  open_codec(options);
  scan_packets();
  if (options.stash) stash_ = std::make_unique<FrameStash>(options.stash, frames_->size());
}

void CpuVideoDecoder::fail(const std::string& what) const { throw InvalidInput(path_ + ": " + what); }

void CpuVideoDecoder::open_codec(const CpuDecoderOptions& options) {
  const AVCodecParameters* par = demuxer_->codec_parameters();
  const AVCodec* codec = find_decoder(par->codec_id);
  const char* codec_name = avcodec_get_name(par->codec_id);
  if (codec == nullptr) fail(std::string("unsupported video codec '") + codec_name + "' (no decoder in this libav)");
  if (par->width <= 0 || par->height <= 0) fail("video stream has no frame size (corrupt header?)");
  codec_.reset(avcodec_alloc_context3(codec));
  if (!codec_) throw std::bad_alloc();
  int rc = avcodec_parameters_to_context(codec_.get(), par);
  if (rc < 0) fail("bad codec parameters (" + error_string(rc) + ")");
  codec_->thread_count = std::max(0, options.threads);
  if (std::string(codec->name) == "libdav1d") {
    // Frame threading delays output by up to `threads` frames; for random access keep it small.
    av_opt_set_int(codec_->priv_data, "max_frame_delay", std::max(1, options.threads), 0);
  }
  rc = avcodec_open2(codec_.get(), codec, nullptr);
  if (rc < 0) fail(std::string("cannot open the ") + codec_name + " decoder (" + error_string(rc) + ")");

  demuxer_->fill_stream_info(info_);
}

void CpuVideoDecoder::scan_packets() {
  frames_.emplace(demuxer_->scan_frame_table(&stats_.packets_read));
  info_.num_frames = frames_->size();
  info_.num_keyframes = static_cast<int64_t>(frames_->keyframe_pts().size());
  info_.fps = frames_->fps();
  info_.duration_s = frames_->duration_s();
  draining_ = true;  // the first decode seeks
}

void CpuVideoDecoder::decode_into(std::span<const double> timestamps_s, double tolerance_s,
                                  const FrameDestinations& out) {
  const std::vector<int64_t> wanted = prepare_fill(*frames_, info_, path_, DecodeDevice{}, timestamps_s, tolerance_s, out);
  stats_.frames_requested += static_cast<int64_t>(wanted.size());
  const int64_t frame_bytes = 3 * info_.height * info_.width * pixel_bytes(out.dtype);
  size_t converted_slot = SIZE_MAX;  // the slot of the frame the converter holds
  fill_in_presentation_order(  // Note [Batch fill]
      wanted,
      [&](int64_t frame, size_t slot) {
        convert(&decode_frame(frame), out.frames[slot], out.dtype);
        converted_slot = slot;
      },
      [&](size_t from, size_t to) {
        if (from == converted_slot) {
          rgb_.repeat_last(out.frames[to], out.dtype);  // Note [Repeated frames] in av/rgb_converter.cpp
        } else {
          std::copy_n(out.frames[from], frame_bytes, out.frames[to]);
        }
        ++stats_.frames_reused;
      });
}

const AVFrame& CpuVideoDecoder::decode_frame(int64_t frame_idx) {
  const std::vector<int64_t>& frame_pts = frames_->pts();
  const std::vector<int64_t>& keyframe_pts = frames_->keyframe_pts();
  const int64_t target = frame_pts[frame_idx];
  const auto key_it = std::upper_bound(keyframe_pts.begin(), keyframe_pts.end(), target);
  const int64_t key_pts = *std::prev(key_it);  // keyframe_pts[0] <= first frame: never begin()
  // Note [Seeking]: decode forward when the decoder is already in the target's GOP, or when the
  // frames to decode forward are no more than a seek would decode (sequential reads cross GOPs).
  bool can_continue = false;
  if (have_frame_ && !codec_done_ && frame_->pts < target) {
    const int64_t current = frames_->index_of_pts(frame_->pts);
    const int64_t key_idx = frames_->index_of_pts(key_pts);
    can_continue = key_pts <= frame_->pts || (frame_idx - current) <= (frame_idx - key_idx) + 1;
  }
  if (stash_) {
    stash_->sync_pass();
    stash_->mark_served(frame_idx);
  }
  if (have_frame_ && frame_->pts == target) {
    if (stash_) stash_->take(frame_idx);  // the held frame may be kept too: free its copy
    ++stats_.frames_reused;
    return *frame_;
  }
  if (stash_) {
    if (UniqueFrame kept = stash_->take(frame_idx)) {  // Note [Frame stash]
      from_stash_ = std::move(kept);
      ++stats_.frames_from_stash;
      return *from_stash_;
    }
  }
  int64_t steps_back = 0;
  bool rewound = false;  // Note [Shared first dts]
  if (!can_continue) {
    if (stash_) finish_gop_into_stash();
    seek_to_keyframe_of(frame_idx, steps_back);
  } else if (key_pts > frame_->pts) {
    ++stats_.forward_gop_skips;
  }
  for (;;) {
    if (!receive_next_frame()) {
      fail("frame #" + std::to_string(frame_idx) + " at " + format_seconds(frames_->seconds()[frame_idx]) +
           " could not be decoded (stream ended first: truncated or corrupt file)");
    }
    const int64_t pts = frame_->pts;
    if (pts == target) break;
    if (pts < target && stash_) keep_in_stash(/*evict=*/true);
    if (pts > target) {
      // Landed past the target: the demuxer's seek overshot, or the target frame is undecodable.
      const auto keys_before = std::prev(key_it) - keyframe_pts.begin();
      if (steps_back < keys_before && steps_back < 4) {
        seek_to_keyframe_of(frame_idx, ++steps_back);
        continue;
      }
      if (steps_back >= keys_before && !rewound && rewind_to_start()) {
        rewound = true;
        continue;
      }
      fail("frame #" + std::to_string(frame_idx) + " at " + format_seconds(frames_->seconds()[frame_idx]) +
           " could not be decoded (corrupt data before it)");
    }
  }
  return *frame_;
}

void CpuVideoDecoder::keep_in_stash(bool evict) {
  const int64_t idx = frames_->index_of_pts(frame_->pts);
  if (idx >= frames_->size() || frames_->pts()[idx] != frame_->pts) return;  // not a listed frame
  if (stash_->keep(idx, *frame_, evict)) ++stats_.frames_stashed;
}

void CpuVideoDecoder::finish_gop_into_stash() {
  if (!have_frame_ || codec_done_) return;
  const std::vector<int64_t>& frame_pts = frames_->pts();
  const std::vector<int64_t>& keyframe_pts = frames_->keyframe_pts();
  const int64_t current = frames_->index_of_pts(frame_->pts);
  const auto next_key = std::upper_bound(keyframe_pts.begin(), keyframe_pts.end(), frame_->pts);
  const int64_t end = next_key == keyframe_pts.end() ? frames_->size() : frames_->index_of_pts(*next_key);
  int64_t last_wanted = -1;  // the last frame of the GOP this pass still wants
  for (int64_t f = current + 1; f < end; ++f) {
    if (!stash_->served(f) && !stash_->holds(f)) last_wanted = f;
  }
  try {
    while (last_wanted >= 0 && frame_->pts < frame_pts[last_wanted] && stash_->has_room()) {
      if (!receive_next_frame()) return;
      ++stats_.frames_decoded_ahead;
      keep_in_stash(/*evict=*/false);
    }
  } catch (const InvalidInput&) {
    // A damaged frame no request asked for yet: its own request will report it.
    have_frame_ = false;
  }
}

// Note [Shared first dts]
// ~~~~~~~~~~~~~~~~~~~~~~~
// lerobot concatenates episodes by shifting each one's pts and dts by the frames before it. An
// episode encoded with B-frames starts with a negative dts, so after a 1-frame episode its first
// keyframe gets the dts the 1-frame episode's keyframe has (seen: dts 0, 0, 512, 1024 for pts 0, 512,
// 1024, 1536), and libav's mp4 demuxer, asked for the first keyframe, lands on the second. Past the
// first keyframe, stepping back a keyframe reaches such a frame; for the file's first frame there is
// none to step back to, so we seek below every index entry (the stream's first sample) and decode
// forward, once per request; lerobot 0.6.1's decoders cannot read that frame.
bool CpuVideoDecoder::rewind_to_start() {
  if (!demuxer_->seek_to_start()) return false;
  flush_after_seek();
  return true;
}

void CpuVideoDecoder::flush_after_seek() {
  avcodec_flush_buffers(codec_.get());
  have_frame_ = false;
  draining_ = false;
  codec_done_ = false;
  ++stats_.seeks;
  ++stats_.flushes;
}

void CpuVideoDecoder::seek_to_keyframe_of(int64_t frame_idx, int64_t keyframe_steps_back) {
  const std::vector<int64_t>& keyframe_pts = frames_->keyframe_pts();
  const int64_t target = frames_->pts()[frame_idx];
  auto key_idx = (std::upper_bound(keyframe_pts.begin(), keyframe_pts.end(), target) - keyframe_pts.begin()) - 1;
  key_idx = std::max<int64_t>(0, key_idx - keyframe_steps_back);
  demuxer_->seek_to_keyframe(keyframe_pts[key_idx]);
  flush_after_seek();
}

bool CpuVideoDecoder::receive_next_frame() {
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  };
  for (;;) {
    if (codec_done_) return false;
    int rc = avcodec_receive_frame(codec_.get(), frame_.get());
    if (rc == 0) {
      if (frame_->pts == AV_NOPTS_VALUE) frame_->pts = frame_->best_effort_timestamp;
      have_frame_ = true;
      ++stats_.frames_decoded;
      const int64_t ns = elapsed_ns();
      stats_.decode_ns += ns;
      if (is_keyframe(frame_.get())) {
        ++stats_.keyframes_decoded;
        stats_.keyframe_decode_ns += ns;
      }
      return true;
    }
    have_frame_ = false;
    if (rc == AVERROR_EOF) {
      codec_done_ = true;
      return false;
    }
    if (rc != AVERROR(EAGAIN)) fail("decoding failed (" + error_string(rc) + ")");
    if (draining_) {
      codec_done_ = true;
      return false;
    }
    // Feed the next packet of our stream.
    if (!demuxer_->read_packet(packet_.get())) {  // EOF or damaged tail: drain what the codec still holds
      draining_ = true;
      avcodec_send_packet(codec_.get(), nullptr);
      continue;
    }
    ++stats_.packets_read;
    rc = avcodec_send_packet(codec_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA) {
      fail("decoding failed (" + error_string(rc) + ")");
    }
  }
}

void CpuVideoDecoder::convert(const AVFrame* frame, uint8_t* out, PixelType dtype) {
  if (frame->width != info_.width || frame->height != info_.height) {
    fail("frame size changed mid-stream (" + std::to_string(frame->width) + "x" + std::to_string(frame->height) +
         ", stream header says " + std::to_string(info_.width) + "x" + std::to_string(info_.height) + ")");
  }
  const bool first = rgb_.last_colorspace() < 0;
  const auto start = std::chrono::steady_clock::now();
  rgb_.convert(frame, out, dtype, path_);
  stats_.convert_ns +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  ++stats_.frames_converted;
  if (first && (info_.color_space == "unknown" || info_.color_space == "unspecified")) {
    const char* cs = av_color_space_name(static_cast<AVColorSpace>(frame->colorspace));
    if (cs) info_.color_space = cs;
  }
}

}  // namespace lrs::av
