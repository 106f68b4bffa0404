#include "test_media.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

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

void encode_clip(const ClipSpec& spec, const std::string& path) {
  using namespace lrs::av;
  const AVCodec* codec = avcodec_find_encoder_by_name(spec.encoder.c_str());
  if (codec == nullptr) throw std::runtime_error("test_media: no encoder " + spec.encoder);
  AVFormatContext* raw_out = nullptr;
  check(avformat_alloc_output_context2(&raw_out, nullptr, "mp4", path.c_str()), "alloc output");
  struct OutputDeleter {
    void operator()(AVFormatContext* ctx) const {
      if (ctx->pb) avio_closep(&ctx->pb);
      avformat_free_context(ctx);
    }
  };
  std::unique_ptr<AVFormatContext, OutputDeleter> out(raw_out);
  UniqueCodecContext enc(avcodec_alloc_context3(codec));
  enc->width = spec.width;
  enc->height = spec.height;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = AVRational{1, spec.fps};
  enc->framerate = AVRational{spec.fps, 1};
  enc->gop_size = spec.gop;
  enc->max_b_frames = spec.max_b_frames;
  enc->thread_count = 1;
  if (out->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
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
                                       std::to_string(spec.max_b_frames)).c_str(), 0);
  } else if (spec.encoder == "libsvtav1") {
    av_dict_set(&opts, "preset", "12", 0);
    av_dict_set(&opts, "crf", "30", 0);
    av_dict_set(&opts, "svtav1-params", "lp=1", 0);
  }
  const int rc_open = avcodec_open2(enc.get(), codec, &opts);
  av_dict_free(&opts);
  check(rc_open, "open encoder " + spec.encoder);
  AVStream* stream = avformat_new_stream(out.get(), nullptr);
  check(avcodec_parameters_from_context(stream->codecpar, enc.get()), "codec parameters");
  stream->time_base = enc->time_base;
  check(avio_open(&out->pb, path.c_str(), AVIO_FLAG_WRITE), "open " + path);
  check(avformat_write_header(out.get(), nullptr), "write header");

  UniqueFrame frame(av_frame_alloc());
  frame->format = enc->pix_fmt;
  frame->width = spec.width;
  frame->height = spec.height;
  check(av_frame_get_buffer(frame.get(), 0), "frame buffer");
  UniquePacket packet(av_packet_alloc());
  auto drain = [&]() {
    for (;;) {
      const int rc = avcodec_receive_packet(enc.get(), packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      check(rc, "encode");
      av_packet_rescale_ts(packet.get(), enc->time_base, stream->time_base);
      packet->stream_index = stream->index;
      check(av_interleaved_write_frame(out.get(), packet.get()), "write packet");
    }
  };
  for (int i = 0; i < spec.num_frames; ++i) {
    check(av_frame_make_writable(frame.get()), "frame writable");
    fill_frame(frame.get(), i, spec.coloured);
    frame->pts = i;
    check(avcodec_send_frame(enc.get(), frame.get()), "send frame");
    drain();
  }
  check(avcodec_send_frame(enc.get(), nullptr), "flush encoder");
  drain();
  check(av_write_trailer(out.get()), "write trailer");
}

}  // namespace

std::string clip_path(const ClipSpec& spec) {
  std::ostringstream name;
  name << spec.encoder << "_" << spec.width << "x" << spec.height << "_" << spec.fps << "fps_" << spec.num_frames
       << "f_g" << spec.gop << "_b" << spec.max_b_frames << (spec.coloured ? "_coloured" : "") << ".mp4";
  const std::string path = data_dir() + "/" + name.str();
  if (!std::filesystem::exists(path)) {
    const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + ".mp4";
    encode_clip(spec, tmp);
    std::filesystem::rename(tmp, path);
  }
  return path;
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
