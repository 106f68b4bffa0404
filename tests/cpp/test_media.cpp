#include "test_media.h"

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>
#include <vector>

#include "av/av_handles.h"

extern "C" {
#include <libavutil/opt.h>
}

namespace lrs::test {
namespace {

constexpr int kLevels = 29;
constexpr int kStep = 7;

std::string data_dir() {
  std::filesystem::create_directories(LRS_TEST_DATA_DIR);
  return LRS_TEST_DATA_DIR;
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw std::runtime_error("test_media: " + what + ": " + lrs::av::error_string(rc));
}

void fill_frame(AVFrame* frame, int index, bool coloured) {
  const int left = 16 + kStep * (index % kLevels);
  const int right = 16 + kStep * ((index / kLevels) % kLevels);
  for (int y = 0; y < frame->height; ++y) {
    uint8_t* row = frame->data[0] + static_cast<ptrdiff_t>(y) * frame->linesize[0];
    for (int x = 0; x < frame->width; ++x) row[x] = static_cast<uint8_t>(x < frame->width / 2 ? left : right);
  }
  for (int plane = 1; plane < 3; ++plane) {
    for (int y = 0; y < (frame->height + 1) / 2; ++y) {
      uint8_t* row = frame->data[plane] + static_cast<ptrdiff_t>(y) * frame->linesize[plane];
      for (int x = 0; x < (frame->width + 1) / 2; ++x) {
        const int gradient = plane == 1 ? 40 + (x * 6 + index) % 176 : 216 - (y * 5 + 2 * index) % 176;
        const bool edge = ((x / 4 + y / 3 + plane) % 3) == 0;
        row[x] = static_cast<uint8_t>(!coloured ? 128 : (edge ? 255 - gradient : gradient));
      }
    }
  }
}

void fill_gray12(AVFrame* frame, int index) {
  for (int y = 0; y < frame->height; ++y) {
    auto* row = reinterpret_cast<uint16_t*>(frame->data[0] + static_cast<ptrdiff_t>(y) * frame->linesize[0]);
    for (int x = 0; x < frame->width; ++x) row[x] = gray12_code(index, x, y);
  }
}

using lrs::av::UniqueCodecContext;
using lrs::av::UniqueFrame;
using lrs::av::UniquePacket;

struct OutputDeleter {
  void operator()(AVFormatContext* ctx) const {
    if (ctx->pb) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};

// One encoder run: frames first_index .. first_index + count - 1 (their index in their pixels),
// packets timestamped 0.. in the encoder's time base (1/fps).
struct Encoded {
  UniqueCodecContext enc;
  std::vector<UniquePacket> packets;
};

Encoded encode_frames(const ClipSpec& spec, int first_index, int count) {
  const AVCodec* codec = avcodec_find_encoder_by_name(spec.encoder.c_str());
  if (codec == nullptr) throw std::runtime_error("test_media: no encoder " + spec.encoder);
  Encoded out;
  out.enc.reset(avcodec_alloc_context3(codec));
  AVCodecContext* enc = out.enc.get();
  enc->width = spec.width;
  enc->height = spec.height;
  enc->pix_fmt = spec.gray12 ? AV_PIX_FMT_GRAY12LE : AV_PIX_FMT_YUV420P;
  enc->time_base = AVRational{1, spec.fps};
  enc->framerate = AVRational{spec.fps, 1};
  enc->gop_size = spec.gop;
  enc->max_b_frames = spec.max_b_frames;
  enc->thread_count = 1;
  enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;  // mp4
  AVDictionary* opts = nullptr;
  if (spec.encoder == "libx264") {
    av_dict_set(&opts, "preset", "ultrafast", 0);
    av_dict_set(&opts, "crf", "18", 0);
    av_dict_set(&opts, "x264-params", "log=-1", 0);
    // ultrafast disables B-frames; ask for them back so pts != dts is exercised.
    if (spec.max_b_frames > 0) av_dict_set(&opts, "x264opts", ("bframes=" + std::to_string(spec.max_b_frames)).c_str(), 0);
  } else if (spec.encoder == "libx265") {
    av_dict_set(&opts, "preset", "ultrafast", 0);
    av_dict_set(&opts, "x265-params", ("log-level=none:keyint=" + std::to_string(spec.gop) + ":bframes=" +
                                       std::to_string(spec.max_b_frames) + (spec.gray12 ? ":lossless=1" : ""))
                                          .c_str(), 0);
  } else if (spec.encoder == "libsvtav1") {
    av_dict_set(&opts, "preset", "12", 0);
    av_dict_set(&opts, "crf", "30", 0);
    av_dict_set(&opts, "svtav1-params", "lp=1", 0);
  }
  const int rc_open = avcodec_open2(enc, codec, &opts);
  av_dict_free(&opts);
  check(rc_open, "open encoder " + spec.encoder);

  UniqueFrame frame(av_frame_alloc());
  frame->format = enc->pix_fmt;
  frame->width = spec.width;
  frame->height = spec.height;
  check(av_frame_get_buffer(frame.get(), 0), "frame buffer");
  auto drain = [&]() {
    for (;;) {
      UniquePacket packet(av_packet_alloc());
      const int rc = avcodec_receive_packet(enc, packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      check(rc, "encode");
      out.packets.push_back(std::move(packet));
    }
  };
  for (int i = 0; i < count; ++i) {
    check(av_frame_make_writable(frame.get()), "frame writable");
    if (spec.gray12) {
      fill_gray12(frame.get(), first_index + i);
    } else {
      fill_frame(frame.get(), first_index + i, spec.coloured);
    }
    frame->pts = i;
    check(avcodec_send_frame(enc, frame.get()), "send frame");
    drain();
  }
  check(avcodec_send_frame(enc, nullptr), "flush encoder");
  drain();
  return out;
}

// Muxes encoder runs back to back into one mp4 stream (stream copy, timestamps shifted by the
// frames before each run), as LeRobot concatenates episodes.
void mux_runs(const std::vector<Encoded>& runs, const std::string& path, bool faststart) {
  AVFormatContext* raw_out = nullptr;
  check(avformat_alloc_output_context2(&raw_out, nullptr, "mp4", path.c_str()), "alloc output");
  std::unique_ptr<AVFormatContext, OutputDeleter> out(raw_out);
  const AVCodecContext* first = runs.front().enc.get();
  AVStream* stream = avformat_new_stream(out.get(), nullptr);
  check(avcodec_parameters_from_context(stream->codecpar, first), "codec parameters");
  stream->time_base = first->time_base;
  check(avio_open(&out->pb, path.c_str(), AVIO_FLAG_WRITE), "open " + path);
  AVDictionary* opts = nullptr;
  if (faststart) av_dict_set(&opts, "movflags", "+faststart", 0);
  const int rc_header = avformat_write_header(out.get(), &opts);
  av_dict_free(&opts);
  check(rc_header, "write header");
  int64_t offset = 0;
  for (const Encoded& run : runs) {
    int64_t frames = 0;
    for (const UniquePacket& source : run.packets) {
      UniquePacket packet(av_packet_clone(source.get()));
      frames = std::max<int64_t>(frames, packet->pts + 1);
      packet->pts += offset;
      packet->dts += offset;
      av_packet_rescale_ts(packet.get(), run.enc->time_base, stream->time_base);
      packet->stream_index = stream->index;
      check(av_interleaved_write_frame(out.get(), packet.get()), "write packet");
    }
    offset += frames;
  }
  check(av_write_trailer(out.get()), "write trailer");
}

void encode_clip(const ClipSpec& spec, const std::string& path) {
  std::vector<Encoded> runs;
  runs.push_back(encode_frames(spec, 0, spec.num_frames));
  mux_runs(runs, path, false);
}

std::string written_once(const std::string& name, const std::function<void(const std::string&)>& write) {
  const std::string path = data_dir() + "/" + name;
  if (!std::filesystem::exists(path)) {
    const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + ".mp4";
    write(tmp);
    std::filesystem::rename(tmp, path);
  }
  return path;
}

std::string spec_name(const ClipSpec& spec) {
  std::ostringstream name;
  name << spec.encoder << "_" << spec.width << "x" << spec.height << "_" << spec.fps << "fps_" << spec.num_frames
       << "f_g" << spec.gop << "_b" << spec.max_b_frames << (spec.gray12 ? "_gray12" : "")
       << (spec.coloured ? "_coloured" : "");
  return name.str();
}

}  // namespace

std::string clip_path(const ClipSpec& spec) {
  return written_once(spec_name(spec) + ".mp4", [&](const std::string& tmp) { encode_clip(spec, tmp); });
}

std::string episodes_clip_path(const EpisodesSpec& spec) {
  std::ostringstream name;
  name << "episodes_" << spec_name(spec.clip) << "_e";
  for (int n : spec.episode_frames) name << n << "-";
  name << (spec.faststart ? "faststart" : "moov_at_end") << ".mp4";
  return written_once(name.str(), [&](const std::string& tmp) {
    std::vector<Encoded> runs;
    int first = 0;
    for (int n : spec.episode_frames) {
      runs.push_back(encode_frames(spec.clip, first, n));
      first += n;
    }
    mux_runs(runs, tmp, spec.faststart);
  });
}

int64_t read_frame_index(const uint8_t* rgb_chw, int height, int width) {
  // Limited-range grey level L decodes to RGB (L - 16) * 255 / 219 on every channel.
  auto level_at = [&](int x) -> int {
    const uint8_t value = rgb_chw[static_cast<ptrdiff_t>(height / 2) * width + x];
    const double luma = value * 219.0 / 255.0 + 16.0;
    const long level = std::lround((luma - 16.0) / kStep);
    if (level < 0 || level >= kLevels || std::abs(luma - (16.0 + kStep * level)) > 2.5) return -1;
    return static_cast<int>(level);
  };
  const int low = level_at(width / 4);
  const int high = level_at(3 * width / 4);
  if (low < 0 || high < 0) return -1;
  return static_cast<int64_t>(high) * kLevels + low;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = data_dir() + "/" + name;
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::rename(tmp, path);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace lrs::test
