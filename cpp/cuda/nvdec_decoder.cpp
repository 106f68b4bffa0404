#include "cuda/nvdec_decoder.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <optional>
#include <utility>

#include "av/av_handles.h"
#include "av/demuxer.h"
#include "av/frame_table.h"
#include "common/errors.h"
#include "cuda/colour_kernel.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_loader.h"
#include "cuda/device_fill.h"

namespace lrs::cuda {
namespace {

struct CodecMapping {
  AVCodecID av;
  cudaVideoCodec nv;
  const char* bsf;  // mp4 -> Annex B for the nvcuvid parser ("" = packets go in as they are)
};
constexpr CodecMapping kCodecs[] = {
    {AV_CODEC_ID_H264, cudaVideoCodec_H264, "h264_mp4toannexb"},
    {AV_CODEC_ID_HEVC, cudaVideoCodec_HEVC, "hevc_mp4toannexb"},
    {AV_CODEC_ID_AV1, cudaVideoCodec_AV1, ""},  // mp4 AV1 samples are low-overhead OBUs: parsed as is
};

}  // namespace

// Note [NVDEC random access]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Same plan as the CPU decoder (Note [Seeking]): a demux-only scan gives the frame table; requests
// are served in pts order; a target behind the last displayed frame or in a later GOP seeks to its
// keyframe and sends the parser a discontinuity. The parser runs with no display delay, so each
// frame is displayed as soon as its references allow; the display callback converts the frame whose
// timestamp (the packet pts we passed) is the current target and ignores the rest.
// The frame table and nearest-frame rule are the CPU decoder's (av/frame_table.h).
struct NvdecVideoDecoder::Impl {
  std::string path;
  StreamInfo info;
  DecoderStats stats;
  NvdecOptions options;

  std::unique_ptr<av::Demuxer> demuxer;  // the shared demuxer (av/demuxer.h), with the Annex B filter
  av::UniquePacket packet{av_packet_alloc()};
  cudaVideoCodec codec = cudaVideoCodec_NumCodecs;
  int bit_depth = 8;
  std::vector<uint8_t> av1_config_obus;  // av1C configOBUs (sequence header), sent after each seek

  std::optional<av::FrameTable> frames;  // set by scan()

  std::shared_ptr<PrimaryContext> context;
  std::unique_ptr<CudaStream> stream;
  std::unique_ptr<CudaEvent> done;
  std::shared_ptr<DevicePool> pool;
  std::unique_ptr<ColourKernel> kernel;
  CUvideoparser parser = nullptr;
  CUvideodecoder decoder = nullptr;
  CUVIDEOFORMAT seq{};
  CropWindow crop{};
  ColourParams colour{};

  // Decode state.
  int64_t target_pts = 0;
  CUdeviceptr target_out = 0;
  OutputType target_type = OutputType::kUint8;
  bool target_done = false;
  int64_t last_displayed_pts = INT64_MIN;
  bool at_eof = true;  // forces a seek before the first decode
  unsigned pending_discontinuity = 0;  // CUVID_PKT_DISCONTINUITY for the first packet after a seek
  std::exception_ptr callback_error;

  [[noreturn]] void fail(const std::string& what) const { throw InvalidInput(path + ": " + what); }

  void open_demuxer(const VideoSource& source);
  void scan();
  void check_capability();
  void create_parser();
  void decode_to(int64_t frame_idx, CUdeviceptr out, OutputType type);
  void seek_to_keyframe_of(int64_t pts);
  bool feed_next_packet();  // false after end of stream was sent
  void parse(const uint8_t* data, size_t size, int64_t pts, unsigned flags);

  int on_sequence(CUVIDEOFORMAT* format);
  int on_decode(CUVIDPICPARAMS* pic);
  int on_display(CUVIDPARSERDISPINFO* disp);

  ~Impl();
};

void NvdecVideoDecoder::Impl::open_demuxer(const VideoSource& source) {
  demuxer = std::make_unique<av::Demuxer>(source);
  demuxer->fill_stream_info(info);
  const AVCodecParameters* par = demuxer->codec_parameters();
  const auto* mapping = std::find_if(std::begin(kCodecs), std::end(kCodecs),
                                     [&](const CodecMapping& m) { return m.av == par->codec_id; });
  if (mapping == std::end(kCodecs)) {
    throw NvdecUnsupported(path, "NVDEC on " + device_label(options.device_index) +
                                     ": this decoder supports h264, hevc and av1, not " + info.codec);
  }
  codec = mapping->nv;
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(par->format));
  bit_depth = desc ? desc->comp[0].depth : 8;
  if (desc && (desc->log2_chroma_w != 1 || desc->log2_chroma_h != 1)) {
    throw NvdecUnsupported(path, "NVDEC on " + device_label(options.device_index) + ": this decoder takes 4:2:0 "
                                     "only, the " + info.codec + " stream is " + info.pixel_format);
  }
  if (mapping->bsf[0] != '\0') {
    demuxer->set_bitstream_filter(mapping->bsf);
  } else if (par->extradata_size > 4) {
    av1_config_obus.assign(par->extradata + 4, par->extradata + par->extradata_size);  // skip the av1C header
  }
}

void NvdecVideoDecoder::Impl::scan() {
  frames.emplace(demuxer->scan_frame_table(&stats.packets_read));
  info.num_frames = frames->size();
  info.num_keyframes = static_cast<int64_t>(frames->keyframe_pts().size());
  info.fps = frames->fps();
  info.duration_s = frames->duration_s();
}

void NvdecVideoDecoder::Impl::check_capability() {
  const NvcuvidApi& cuvid = nvcuvid_api();
  CUVIDDECODECAPS caps;
  std::memset(&caps, 0, sizeof(caps));
  caps.eCodecType = codec;
  caps.eChromaFormat = cudaVideoChromaFormat_420;
  caps.nBitDepthMinus8 = static_cast<unsigned>(bit_depth - 8);
  check_cuda(cuvid.cuvidGetDecoderCaps(&caps), path + ": cuvidGetDecoderCaps");
  // The reason names GPU, codec, depth and cause but not the file or its size, so a backend choice
  // made because of it is reported once per cause (Note [CUDA backend choice]).
  const std::string what = "NVDEC on " + device_label(options.device_index) + " cannot decode " + info.codec + " " +
                           std::to_string(bit_depth) + "-bit 4:2:0: ";
  const std::string advice =
      " (the stream is " + std::to_string(info.width) + "x" + std::to_string(info.height) +
      "); decode it with cuda_backend='cpu->cuda' (CPU decode, GPU colour conversion) or 'auto', on the CPU "
      "(device='cpu'), or transcode the dataset to h264/hevc (python -m lerobot_stream.transcode)";
  if (!caps.bIsSupported) throw NvdecUnsupported(path, what + "this GPU has no NVDEC support for it", advice);
  const unsigned w = static_cast<unsigned>(info.width), h = static_cast<unsigned>(info.height);
  if (w > caps.nMaxWidth || h > caps.nMaxHeight || w < caps.nMinWidth || h < caps.nMinHeight ||
      ((w + 15) / 16) * ((h + 15) / 16) > caps.nMaxMBCount) {
    throw NvdecUnsupported(path,
                           what + std::to_string(w) + "x" + std::to_string(h) + " is outside NVDEC's range " +
                               std::to_string(caps.nMinWidth) + "x" +
                               std::to_string(caps.nMinHeight) + " .. " + std::to_string(caps.nMaxWidth) + "x" +
                               std::to_string(caps.nMaxHeight),
                           advice);
  }
}

void NvdecVideoDecoder::Impl::create_parser() {
  CUVIDPARSERPARAMS params;
  std::memset(&params, 0, sizeof(params));
  params.CodecType = codec;
  params.ulMaxNumDecodeSurfaces = 1;  // raised by the sequence callback's return value
  params.ulMaxDisplayDelay = 0;       // display each frame as soon as possible (random access)
  params.pUserData = this;
  params.pfnSequenceCallback = [](void* self, CUVIDEOFORMAT* f) { return static_cast<Impl*>(self)->on_sequence(f); };
  params.pfnDecodePicture = [](void* self, CUVIDPICPARAMS* p) { return static_cast<Impl*>(self)->on_decode(p); };
  params.pfnDisplayPicture = [](void* self, CUVIDPARSERDISPINFO* d) {
    return static_cast<Impl*>(self)->on_display(d);
  };
  check_cuda(nvcuvid_api().cuvidCreateVideoParser(&parser, &params), path + ": cuvidCreateVideoParser");
}

int NvdecVideoDecoder::Impl::on_sequence(CUVIDEOFORMAT* f) {
  try {
    const int surfaces = std::max<int>(f->min_num_decode_surfaces, 4) + 4;
    const bool same = decoder != nullptr && f->coded_width == seq.coded_width &&
                      f->coded_height == seq.coded_height && f->bit_depth_luma_minus8 == seq.bit_depth_luma_minus8;
    if (!same) {
      if (decoder != nullptr) nvcuvid_api().cuvidDestroyDecoder(decoder), decoder = nullptr;
      CUVIDDECODECREATEINFO ci;
      std::memset(&ci, 0, sizeof(ci));
      ci.ulWidth = f->coded_width;
      ci.ulHeight = f->coded_height;
      ci.ulNumDecodeSurfaces = surfaces;
      ci.CodecType = f->codec;
      ci.ChromaFormat = f->chroma_format;
      ci.ulCreationFlags = cudaVideoCreate_PreferCUVID;
      ci.bitDepthMinus8 = f->bit_depth_luma_minus8;
      ci.OutputFormat = f->bit_depth_luma_minus8 > 0 ? cudaVideoSurfaceFormat_P016 : cudaVideoSurfaceFormat_NV12;
      ci.DeinterlaceMode = cudaVideoDeinterlaceMode_Weave;
      ci.ulTargetWidth = f->coded_width;  // no scaling; the kernel crops (Note [Colour conversion parity])
      ci.ulTargetHeight = f->coded_height;
      ci.ulNumOutputSurfaces = 2;
      check_cuda(nvcuvid_api().cuvidCreateDecoder(&decoder, &ci), path + ": cuvidCreateDecoder");
    }
    seq = *f;
    crop = CropWindow{f->display_area.left, f->display_area.top, f->display_area.right - f->display_area.left,
                      f->display_area.bottom - f->display_area.top};
    if (crop.width != info.width || crop.height != info.height) {
      throw InvalidInput(path + ": NVDEC display size " + std::to_string(crop.width) + "x" +
                         std::to_string(crop.height) + " differs from the container's " +
                         std::to_string(info.width) + "x" + std::to_string(info.height));
    }
    // Matrix and range: the bitstream's when it states them, else the container's (as libavcodec).
    int matrix = f->video_signal_description.matrix_coefficients;
    if (matrix == 2 || matrix == 0) matrix = demuxer->codec_parameters()->color_space;
    const bool full = f->video_signal_description.video_full_range_flag != 0 ||
                      demuxer->codec_parameters()->color_range == AVCOL_RANGE_JPEG;
    colour = make_colour_params(matrix_for_av_colorspace(matrix), full, f->bit_depth_luma_minus8 + 8);
    return surfaces;
  } catch (...) {
    callback_error = std::current_exception();
    return 0;
  }
}

int NvdecVideoDecoder::Impl::on_decode(CUVIDPICPARAMS* pic) {
  const CUresult rc = nvcuvid_api().cuvidDecodePicture(decoder, pic);
  if (rc != CUDA_SUCCESS) {
    try {
      check_cuda(rc, path + ": cuvidDecodePicture");
    } catch (...) {
      callback_error = std::current_exception();
    }
    return 0;
  }
  return 1;
}

int NvdecVideoDecoder::Impl::on_display(CUVIDPARSERDISPINFO* disp) {
  ++stats.frames_decoded;
  last_displayed_pts = disp->timestamp;
  if (target_done || disp->timestamp != target_pts) return 1;
  try {
    const NvcuvidApi& cuvid = nvcuvid_api();
    CUVIDPROCPARAMS proc;
    std::memset(&proc, 0, sizeof(proc));
    proc.progressive_frame = disp->progressive_frame;
    proc.top_field_first = disp->top_field_first;
    proc.output_stream = stream->get();
    unsigned long long surface = 0;
    unsigned int pitch = 0;
    check_cuda(cuvid.cuvidMapVideoFrame64(decoder, disp->picture_index, &surface, &pitch, &proc),
               path + ": cuvidMapVideoFrame");
    Yuv420Surface src;
    src.luma = surface;
    src.chroma = surface + static_cast<CUdeviceptr>(pitch) * ((seq.coded_height + 1) & ~1u);
    src.pitch = pitch;
    src.bit_depth = seq.bit_depth_luma_minus8 + 8;
    // Note [Colour conversion parity]: nearest chroma matches the CPU path's RGB24 conversion.
    kernel->launch(src, crop, colour, ChromaUpsampling::kNearest, target_type, target_out, stream->get());
    const CUresult sync = driver_api().cuStreamSynchronize(stream->get());  // Note [Stream handoff]
    cuvid.cuvidUnmapVideoFrame64(decoder, surface);
    check_cuda(sync, path + ": colour conversion");
    ++stats.frames_converted;
    target_done = true;
    return 1;
  } catch (...) {
    callback_error = std::current_exception();
    return 0;
  }
}

void NvdecVideoDecoder::Impl::parse(const uint8_t* data, size_t size, int64_t pts, unsigned flags) {
  CUVIDSOURCEDATAPACKET p;
  std::memset(&p, 0, sizeof(p));
  p.payload = data;
  p.payload_size = static_cast<unsigned long>(size);
  p.flags = flags | (data != nullptr ? static_cast<unsigned>(CUVID_PKT_TIMESTAMP) : 0u);
  p.timestamp = pts;
  const CUresult rc = nvcuvid_api().cuvidParseVideoData(parser, &p);
  if (callback_error) std::rethrow_exception(std::exchange(callback_error, nullptr));
  check_cuda(rc, path + ": cuvidParseVideoData");
}

void NvdecVideoDecoder::Impl::seek_to_keyframe_of(int64_t pts) {
  const std::vector<int64_t>& key_pts = frames->keyframe_pts();
  const int64_t key = *std::prev(std::upper_bound(key_pts.begin(), key_pts.end(), pts));
  demuxer->seek_to_keyframe(key);  // also flushes the bitstream filter
  ++stats.seeks;
  ++stats.flushes;
  at_eof = false;
  last_displayed_pts = INT64_MIN;
  unsigned flags = CUVID_PKT_DISCONTINUITY;
  if (!av1_config_obus.empty()) {
    parse(av1_config_obus.data(), av1_config_obus.size(), key, flags);
    flags = 0;
  }
  pending_discontinuity = flags;
}

bool NvdecVideoDecoder::Impl::feed_next_packet() {
  if (at_eof) return false;
  if (!demuxer->read_packet(packet.get())) {
    parse(nullptr, 0, 0, CUVID_PKT_ENDOFSTREAM);  // flushes every frame still held for display
    at_eof = true;
    return true;
  }
  ++stats.packets_read;
  parse(packet->data, static_cast<size_t>(packet->size), packet->pts, std::exchange(pending_discontinuity, 0u));
  av_packet_unref(packet.get());
  return true;
}

void NvdecVideoDecoder::Impl::decode_to(int64_t frame_idx, CUdeviceptr out, OutputType type) {
  const int64_t target = frames->pts()[frame_idx];
  const int64_t key = frames->keyframe_pts_of(frame_idx);
  const bool can_continue = !at_eof && last_displayed_pts != INT64_MIN && last_displayed_pts < target &&
                            key <= last_displayed_pts;
  target_pts = target;
  target_out = out;
  target_type = type;
  target_done = false;
  if (!can_continue) seek_to_keyframe_of(target);
  while (!target_done) {
    if (!feed_next_packet()) {
      fail("frame #" + std::to_string(frame_idx) + " at " + std::to_string(frames->seconds()[frame_idx]) +
           "s was not produced by NVDEC (truncated or corrupt stream)");
    }
  }
}

NvdecVideoDecoder::Impl::~Impl() {
  if (!context) return;
  const DriverApi& api = driver_api();
  if (api.cuCtxPushCurrent(context->get()) != CUDA_SUCCESS) return;
  if (parser != nullptr) nvcuvid_api().cuvidDestroyVideoParser(parser);
  if (decoder != nullptr) nvcuvid_api().cuvidDestroyDecoder(decoder);
  kernel.reset();
  done.reset();
  stream.reset();
  CUcontext popped = nullptr;
  api.cuCtxPopCurrent(&popped);
}

NvdecVideoDecoder::NvdecVideoDecoder(VideoSource source, NvdecOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = source.name();
  d.options = options;
  if (!d.packet) throw std::bad_alloc();
  d.open_demuxer(source);
  d.scan();
  nvcuvid_api();  // distinct errors for no driver / no libnvcuvid before touching the device
  d.context = std::make_shared<PrimaryContext>(options.device_index);
  const ScopedContext current(d.context->get());
  d.check_capability();
  d.stream = std::make_unique<CudaStream>();
  d.done = std::make_unique<CudaEvent>();
  d.kernel = std::make_unique<ColourKernel>();
  d.pool = DevicePool::for_device(options.device_index);
  d.create_parser();
}

NvdecVideoDecoder::~NvdecVideoDecoder() = default;

const StreamInfo& NvdecVideoDecoder::info() const { return impl_->info; }

DecoderStats NvdecVideoDecoder::stats() const { return impl_->stats; }

void NvdecVideoDecoder::set_consumer_stream(uintptr_t stream) { impl_->options.consumer_stream = stream; }

const std::vector<double>& NvdecVideoDecoder::frame_times() const { return impl_->frames->seconds(); }

// The frame table, stream and event the shared device fill works with (cuda/device_fill.h).
DeviceFill NvdecVideoDecoder::device_fill() const {
  const Impl& d = *impl_;
  return DeviceFill{*d.frames, d.info, d.path, d.options.device_index, d.stream->get(), d.done->get()};
}

FrameBatch NvdecVideoDecoder::get_frames_at(std::span<const double> timestamps_s, double tolerance_s,
                                            PixelType dtype) {
  const ScopedContext current(impl_->context->get());
  return frames_on_device(device_fill(), *impl_->pool, timestamps_s.size(), dtype, impl_->options.consumer_stream,
                          [&](const FrameDestinations& out) { decode_into(timestamps_s, tolerance_s, out); });
}

void NvdecVideoDecoder::decode_into(std::span<const double> timestamps_s, double tolerance_s,
                                    const FrameDestinations& out) {
  Impl& d = *impl_;
  const ScopedContext current(d.context->get());
  fill_on_device(device_fill(), timestamps_s, tolerance_s, out, d.stats,
                 [&](int64_t frame, CUdeviceptr slot, OutputType type) { d.decode_to(frame, slot, type); });
}

}  // namespace lrs::cuda
