#include "cuda/hybrid_decoder.h"

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

#include <array>
#include <utility>

#include "av/cpu_decoder.h"
#include "av/planar_yuv.h"
#include "av/rgb_converter.h"
#include "common/errors.h"
#include "cuda/colour_kernel.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_loader.h"
#include "cuda/device_fill.h"

namespace lrs::cuda {
namespace {

constexpr size_t kStagingSlots = 3;  // Note [Hybrid path]

}  // namespace

struct HybridVideoDecoder::Impl {
  std::string path;
  HybridOptions options;
  av::CpuVideoDecoder cpu;
  av::PlanarYuvLayout layout;

  std::shared_ptr<PrimaryContext> context;
  std::shared_ptr<DevicePool> pool;
  std::unique_ptr<CudaStream> stream;
  std::unique_ptr<CudaEvent> done;
  std::unique_ptr<ColourKernel> kernel;
  std::shared_ptr<PinnedHostPool> pinned;
  struct Slot {
    std::shared_ptr<uint8_t> host;  // pinned
    std::unique_ptr<CudaEvent> copied;
    bool in_flight = false;
  };
  std::array<Slot, kStagingSlots> slots;
  size_t next_slot = 0;
  DecoderStats own;  // requested, converted, reused; the CPU decoder counts the rest (decoded, seeks, ...)
  std::shared_ptr<uint8_t> device_yuv;  // one picture; stream order keeps copy -> kernel -> next copy

  Impl(const VideoSource& source, HybridOptions o)
      : path(source.name()), options(std::move(o)), cpu(source, {options.threads, nullptr}) {}

  void stage_and_convert(const AVFrame* frame, CUdeviceptr out, OutputType type);
  ~Impl();
};

void HybridVideoDecoder::Impl::stage_and_convert(const AVFrame* frame, CUdeviceptr out, OutputType type) {
  const DriverApi& api = driver_api();
  Slot& slot = slots[next_slot];
  next_slot = (next_slot + 1) % kStagingSlots;
  if (slot.in_flight) check_cuda(api.cuEventSynchronize(slot.copied->get()), path + ": waiting for a staging copy");
  av::pack_planar_yuv(frame, layout, slot.host.get(), path);
  const auto yuv = reinterpret_cast<CUdeviceptr>(device_yuv.get());
  check_cuda(api.cuMemcpyHtoDAsync(yuv, slot.host.get(), static_cast<size_t>(layout.total_bytes), stream->get()),
             path + ": copying a picture to the GPU");
  check_cuda(api.cuEventRecord(slot.copied->get(), stream->get()), path + ": cuEventRecord");
  slot.in_flight = true;
  PlanarSurface src;
  src.y = yuv;
  src.cb = yuv + static_cast<CUdeviceptr>(layout.cb_offset);
  src.cr = yuv + static_cast<CUdeviceptr>(layout.cr_offset);
  src.luma_pitch = layout.luma_pitch;
  src.chroma_pitch = layout.chroma_pitch;
  src.bit_depth = layout.bit_depth;
  // The picture's own matrix and range, as RgbConverter uses them (Note [Colour conversion parity]).
  const ColourParams colour =
      make_colour_params(matrix_for_av_colorspace(frame->colorspace), av::is_full_range(frame), layout.bit_depth);
  const CropWindow whole{0, 0, layout.width, layout.height};
  kernel->launch(src, whole, colour, ChromaUpsampling::kNearest, type, out, stream->get());
  ++own.frames_converted;
}

HybridVideoDecoder::Impl::~Impl() {
  if (!context) return;
  const DriverApi& api = driver_api();
  if (api.cuCtxPushCurrent(context->get()) != CUDA_SUCCESS) return;
  if (stream) api.cuStreamSynchronize(stream->get());  // staging slots and the YUV buffer are in use until then
  device_yuv.reset();
  kernel.reset();
  for (Slot& s : slots) s.copied.reset();
  done.reset();
  stream.reset();
  CUcontext popped = nullptr;
  api.cuCtxPopCurrent(&popped);
}

HybridVideoDecoder::HybridVideoDecoder(VideoSource source, HybridOptions options)
    : impl_(std::make_unique<Impl>(source, std::move(options))) {
  Impl& d = *impl_;
  const StreamInfo& info = d.cpu.info();
  const int depth = av::planar_420_bit_depth(av_get_pix_fmt(info.pixel_format.c_str()));
  if (depth == 0) {
    throw CudaUnavailable(d.path + ": the cpu->cuda path on " + device_label(d.options.device_index) +
                          " converts planar 4:2:0 pictures only; this " + info.codec + " stream decodes to " +
                          info.pixel_format + " (decode it with device='cpu')");
  }
  d.layout = av::planar_yuv_layout(info.width, info.height, depth);
  d.context = std::make_shared<PrimaryContext>(d.options.device_index);
  const ScopedContext current(d.context->get());
  d.pool = DevicePool::for_device(d.options.device_index);
  d.stream = std::make_unique<CudaStream>();
  d.done = std::make_unique<CudaEvent>();
  d.kernel = std::make_unique<ColourKernel>();
  d.pinned = std::make_shared<PinnedHostPool>(0);
  const auto bytes = static_cast<size_t>(d.layout.total_bytes);
  for (Impl::Slot& s : d.slots) {
    s.host = d.pinned->allocate(bytes);
    s.copied = std::make_unique<CudaEvent>();
  }
  d.device_yuv = d.pool->allocate(bytes, d.stream->get(), d.stream->get());
}

HybridVideoDecoder::~HybridVideoDecoder() = default;

const StreamInfo& HybridVideoDecoder::info() const { return impl_->cpu.info(); }

DecoderStats HybridVideoDecoder::stats() const {
  DecoderStats s = impl_->cpu.stats();
  s.frames_requested = impl_->own.frames_requested;
  s.frames_converted = impl_->own.frames_converted;
  s.frames_reused += impl_->own.frames_reused;  // the CPU decoder's: re-requests of its held frame
  return s;
}

const std::vector<double>& HybridVideoDecoder::frame_times() const { return impl_->cpu.frame_times(); }

std::string HybridVideoDecoder::backend_note() const { return impl_->options.note; }

void HybridVideoDecoder::set_consumer_stream(uintptr_t stream) { impl_->options.consumer_stream = stream; }

int64_t HybridVideoDecoder::memory_bytes() const {
  return impl_->cpu.memory_bytes() + static_cast<int64_t>(kStagingSlots) * impl_->layout.total_bytes;
}

// The frame table, stream and event the shared device fill works with (cuda/device_fill.h).
DeviceFill HybridVideoDecoder::device_fill() const {
  const Impl& d = *impl_;
  return DeviceFill{d.cpu.frame_table(), d.cpu.info(), d.path, d.options.device_index, d.stream->get(),
                    d.done->get()};
}

FrameBatch HybridVideoDecoder::get_frames_at(std::span<const double> timestamps_s, double tolerance_s,
                                             PixelType dtype) {
  const ScopedContext current(impl_->context->get());
  return frames_on_device(device_fill(), *impl_->pool, timestamps_s.size(), dtype, impl_->options.consumer_stream,
                          [&](const FrameDestinations& out) { decode_into(timestamps_s, tolerance_s, out); });
}

void HybridVideoDecoder::decode_into(std::span<const double> timestamps_s, double tolerance_s,
                                     const FrameDestinations& out) {
  Impl& d = *impl_;
  const ScopedContext current(d.context->get());
  fill_on_device(device_fill(), timestamps_s, tolerance_s, out, d.own, [&](int64_t frame, CUdeviceptr slot, OutputType type) {
    d.stage_and_convert(&d.cpu.decode_frame(frame), slot, type);
  });
}

}  // namespace lrs::cuda
