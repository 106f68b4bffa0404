#include "decode/decoder_factory.h"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <string_view>

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "decode/host_buffer.h"

#ifdef LRS_WITH_CUDA
#include "cuda/cuda_context.h"
#include "cuda/cuda_loader.h"
#include "cuda/hybrid_decoder.h"
#include "cuda/nvdec_decoder.h"
#endif

namespace lrs {

// No std::regex here: in the CUDA build on the GPU image a static std::regex crashed the process
// (segfault on the first parse, even of "cpu"), most likely through std::locale across two C++
// runtimes in one process; a hand parse of "cpu" / "cuda" / "cuda:N" (N: 1 to 4 digits) needs none.
DecodeDevice parse_decode_device(const std::string& text) {
  if (text == "cpu") return DecodeDevice{};
  const std::string_view view(text);
  if (view == "cuda") return DecodeDevice{DeviceKind::kCUDA, 0};
  if (view.starts_with("cuda:")) {
    const std::string_view digits = view.substr(5);
    int index = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    const bool all_digits = std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits.empty() && digits.size() <= 4 && all_digits && error == std::errc() &&
        end == digits.data() + digits.size()) {
      return DecodeDevice{DeviceKind::kCUDA, index};
    }
  }
  throw InvalidInput("device must be 'cpu', 'cuda' or 'cuda:N' (N = GPU index), got '" + text + "'");
}

CudaBackend parse_cuda_backend(const std::string& text) {
  if (text == "auto") return CudaBackend::kAuto;
  if (text == "nvdec") return CudaBackend::kNvdec;
  if (text == "cpu->cuda") return CudaBackend::kHybrid;
  throw InvalidInput("cuda_backend must be 'auto', 'nvdec' or 'cpu->cuda', got '" + text + "'");
}

#ifdef LRS_WITH_CUDA

void require_device(const DecodeDevice& device) {
  if (device.kind == DeviceKind::kCPU) return;
  cuda::PrimaryContext check(device.index);  // CudaUnavailable: no driver, no device, no device N
}

namespace {

std::unique_ptr<VideoDecoder> open_cuda(const VideoSource& source, const DecoderOptions& o) {
  const cuda::HybridOptions hybrid{o.device.index, o.threads, o.consumer_stream, {}};
  if (o.cuda_backend == CudaBackend::kHybrid) return std::make_unique<cuda::HybridVideoDecoder>(source, hybrid);
  try {
    return std::make_unique<cuda::NvdecVideoDecoder>(source, cuda::NvdecOptions{o.device.index, o.consumer_stream});
  } catch (const cuda::NvdecUnsupported& nvdec) {
    if (o.cuda_backend != CudaBackend::kAuto) throw;
    // Note [CUDA backend choice]: the one routing rule, reported through backend_note().
    cuda::HybridOptions routed = hybrid;
    routed.note = "cuda_backend='auto': " + nvdec.reason() +
                  "; decoding on CPU threads with GPU colour conversion (cpu->cuda)";
    try {
      return std::make_unique<cuda::HybridVideoDecoder>(source, routed);
    } catch (const CudaUnavailable& also) {
      throw CudaUnavailable(std::string(nvdec.what()) + "; the cpu->cuda path cannot take it either: " + also.what());
    }
  }
}

}  // namespace

struct BatchMemory::Cuda {
  std::shared_ptr<cuda::DevicePool> pool;        // device batches
  std::shared_ptr<cuda::PinnedHostPool> pinned;  // pinned host batches
  std::unique_ptr<cuda::CudaStream> alloc_stream;
  std::unique_ptr<cuda::CudaStream> join;
  std::unique_ptr<cuda::CudaEvent> joined;
  std::mutex mutex;  // alloc_stream and the joined event
};

BatchMemory::BatchMemory(const DecodeDevice& device, bool pinned) : device_(device), pinned_(pinned) {
  if (device.kind == DeviceKind::kCPU && !pinned) return;
  cuda_ = std::make_unique<Cuda>();
  if (device.kind == DeviceKind::kCPU) {
    cuda_->pinned = std::make_shared<cuda::PinnedHostPool>(size_t{1} << 30);
    return;
  }
  cuda_->pool = cuda::DevicePool::for_device(device.index);
  const cuda::ScopedContext current(cuda_->pool->context()->get());
  cuda_->alloc_stream = std::make_unique<cuda::CudaStream>();
  cuda_->join = std::make_unique<cuda::CudaStream>();
  cuda_->joined = std::make_unique<cuda::CudaEvent>();
}

BatchMemory::~BatchMemory() {
  if (!cuda_ || !cuda_->pool) return;
  const cuda::ScopedContext current(cuda_->pool->context()->get());
  cuda::driver_api().cuStreamSynchronize(cuda_->join->get());
  cuda_->joined.reset();
  cuda_->join.reset();
  cuda_->alloc_stream.reset();
}

std::shared_ptr<uint8_t> BatchMemory::allocate(size_t bytes, uintptr_t consumer_stream) {
  if (!cuda_) return allocate_host_bytes(bytes);
  if (cuda_->pinned) return cuda_->pinned->allocate(bytes);
  const std::lock_guard<std::mutex> lock(cuda_->mutex);
  const cuda::ScopedContext current(cuda_->pool->context()->get());
  auto block = cuda_->pool->allocate(bytes, cuda_->alloc_stream->get(), reinterpret_cast<CUstream>(consumer_stream));
  // Decoders write from their own streams: the allocation must be complete first (a warm pool
  // answers at once, so this wait is short).
  cuda::check_cuda(cuda::driver_api().cuStreamSynchronize(cuda_->alloc_stream->get()),
                   "allocating a batch on " + device_.str());
  return block;
}

uintptr_t BatchMemory::join_stream() const {
  return cuda_ && cuda_->join ? reinterpret_cast<uintptr_t>(cuda_->join->get()) : 0;
}

void BatchMemory::hand_off(uintptr_t consumer_stream) {
  if (!cuda_ || !cuda_->join) return;
  const std::lock_guard<std::mutex> lock(cuda_->mutex);
  const cuda::DriverApi& api = cuda::driver_api();
  const cuda::ScopedContext current(cuda_->pool->context()->get());
  cuda::check_cuda(api.cuEventRecord(cuda_->joined->get(), cuda_->join->get()), "decode stage: cuEventRecord");
  cuda::check_cuda(api.cuStreamWaitEvent(reinterpret_cast<CUstream>(consumer_stream), cuda_->joined->get(), 0),
                   "decode stage: cuStreamWaitEvent");
}

#else  // no CUDA in this build

constexpr const char* kBuiltWithoutCuda =
    "lerobot_stream was built without its CUDA sources (cuda_info() says why; rebuild with LRS_CUDA=ON)";

void require_device(const DecodeDevice& device) {
  if (device.kind == DeviceKind::kCPU) return;
  throw CudaUnavailable(std::string("CUDA unavailable: ") + kBuiltWithoutCuda);
}

struct BatchMemory::Cuda {};

BatchMemory::BatchMemory(const DecodeDevice& device, bool pinned) : device_(device), pinned_(pinned) {
  if (device.kind != DeviceKind::kCPU || pinned) {
    throw CudaUnavailable(std::string("CUDA unavailable (") + (pinned ? "pinned memory" : device.str()) +
                          "): " + kBuiltWithoutCuda);
  }
}

BatchMemory::~BatchMemory() = default;

std::shared_ptr<uint8_t> BatchMemory::allocate(size_t bytes, uintptr_t) { return allocate_host_bytes(bytes); }
uintptr_t BatchMemory::join_stream() const { return 0; }
void BatchMemory::hand_off(uintptr_t) {}

#endif

std::unique_ptr<VideoDecoder> open_decoder(const VideoSource& source, const DecoderOptions& options) {
  if (options.device.kind == DeviceKind::kCPU) {
    return std::make_unique<av::CpuVideoDecoder>(source, av::CpuDecoderOptions{options.threads, options.stash});
  }
#ifdef LRS_WITH_CUDA
  return open_cuda(source, options);
#else
  require_device(options.device);
  return nullptr;  // not reached
#endif
}

DecoderFactory decoder_factory(DecoderOptions options) {
  return [options](const VideoSource& source) { return open_decoder(source, options); };
}

}  // namespace lrs
