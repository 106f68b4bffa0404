#include "decode/decode_stage.h"

#include <chrono>
#include <exception>
#include <utility>

#include "common/errors.h"

namespace lrs {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check_options(const DecodeStageOptions& o) {
  if (o.threads < 1) throw InvalidInput("decode stage: threads must be >= 1, got " + std::to_string(o.threads));
  if (o.max_batches_ahead < 1) {
    throw InvalidInput("decode stage: max_batches_ahead must be >= 1, got " + std::to_string(o.max_batches_ahead));
  }
  if (o.pin_memory && o.decoder.device.kind != DeviceKind::kCPU) {
    throw InvalidInput("decode stage: pin_memory applies to device 'cpu' (batches on " + o.decoder.device.str() +
                       " are device memory)");
  }
}

// Every (camera, sample) exactly once, with frames_per_sample timestamps: otherwise part of a
// buffer would be left unwritten.
void check_batch(const BatchRequest& b) {
  const std::string where = "decode stage: batch of " + std::to_string(b.batch_size) + " samples: ";
  if (b.batch_size < 1) throw InvalidInput(where + "batch_size must be >= 1");
  for (size_t c = 0; c < b.cameras.size(); ++c) {
    const CameraShape& cam = b.cameras[c];
    if (cam.frames_per_sample < 1 || cam.height < 1 || cam.width < 1) {
      throw InvalidInput(where + "camera " + std::to_string(c) + " has shape T=" +
                         std::to_string(cam.frames_per_sample) + " H=" + std::to_string(cam.height) +
                         " W=" + std::to_string(cam.width) + " (each must be >= 1)");
    }
  }
  std::vector<bool> seen(b.cameras.size() * static_cast<size_t>(b.batch_size), false);
  for (const FrameRequest& r : b.requests) {
    if (r.camera < 0 || static_cast<size_t>(r.camera) >= b.cameras.size() || r.sample < 0 ||
        r.sample >= b.batch_size) {
      throw InvalidInput(where + "request for " + r.source.name() + " names camera " + std::to_string(r.camera) +
                         ", sample " + std::to_string(r.sample) + " (out of range)");
    }
    const auto frames = static_cast<int64_t>(r.timestamps_s.size());
    if (frames != b.cameras[r.camera].frames_per_sample) {
      throw InvalidInput(where + "request for " + r.source.name() + " has " + std::to_string(frames) +
                         " timestamps, camera " + std::to_string(r.camera) + " takes " +
                         std::to_string(b.cameras[r.camera].frames_per_sample));
    }
    const size_t i = static_cast<size_t>(r.camera) * static_cast<size_t>(b.batch_size) + static_cast<size_t>(r.sample);
    if (seen[i]) {
      throw InvalidInput(where + "camera " + std::to_string(r.camera) + ", sample " + std::to_string(r.sample) +
                         " is requested twice");
    }
    seen[i] = true;
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      throw InvalidInput(where + "no request for camera " + std::to_string(i / static_cast<size_t>(b.batch_size)) +
                         ", sample " + std::to_string(i % static_cast<size_t>(b.batch_size)));
    }
  }
}

}  // namespace

struct DecodeStage::Pending {
  BatchRequest request;
  std::vector<FrameBatch> outputs;  // one per camera
  size_t remaining = 0;             // requests not finished (under the stage mutex)
  std::exception_ptr error;         // the first failure (under the stage mutex)
};

DecodeStage::DecodeStage(DecodeStageOptions options)
    : options_((check_options(options), require_device(options.decoder.device), std::move(options))),
      // Every thread may decode the same file at once (Note [Decode stage]).
      cache_(options_.cache_capacity, decoder_factory(options_.decoder), options_.cache_max_bytes, options_.threads),
      memory_(options_.decoder.device, options_.pin_memory) {
  threads_.reserve(static_cast<size_t>(options_.threads));
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { run(); });
}

DecodeStage::~DecodeStage() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  work_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Batches never taken: their device memory is freed on the consumer stream, which must first wait
  // for the writes already queued (Note [Decode stage]).
  for (auto& [ticket, batch] : pending_) memory_.hand_off(batch->request.cuda_stream);
  pending_.clear();
}

int64_t DecodeStage::submit(BatchRequest request) {
  check_batch(request);
  auto batch = std::make_shared<Pending>();
  int64_t ticket = 0;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto start = std::chrono::steady_clock::now();
    batch_done_.wait(lock, [&] {
      return static_cast<int64_t>(pending_.size()) < options_.max_batches_ahead;
    });
    stats_.submit_wait_seconds += seconds_since(start);
    ticket = next_ticket_++;
    pending_[ticket] = batch;  // holds the slot while memory is allocated
  }
  try {
    for (const CameraShape& cam : request.cameras) {
      FrameBatch out;
      out.num_frames = request.batch_size * cam.frames_per_sample;
      out.height = cam.height;
      out.width = cam.width;
      out.dtype = request.dtype;
      out.device = memory_.device().kind;
      out.device_index = memory_.device().index;
      auto storage = memory_.allocate(static_cast<size_t>(out.size_bytes()), request.cuda_stream);
      out.data = storage.get();
      out.owner = std::move(storage);
      batch->outputs.push_back(std::move(out));
    }
  } catch (...) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      pending_.erase(ticket);
    }
    batch_done_.notify_all();
    throw;
  }
  batch->remaining = request.requests.size();
  batch->request = std::move(request);
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.batches_submitted;
    for (size_t i = 0; i < batch->request.requests.size(); ++i) jobs_.push_back(Job{batch, i});
  }
  work_ready_.notify_all();
  return ticket;
}

std::vector<FrameBatch> DecodeStage::take(int64_t ticket) {
  std::shared_ptr<Pending> batch;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto found = pending_.find(ticket);
    if (found == pending_.end()) {
      throw InvalidInput("decode stage: ticket " + std::to_string(ticket) + " is unknown or was already taken");
    }
    batch = found->second;
    const auto start = std::chrono::steady_clock::now();
    batch_done_.wait(lock, [&] { return batch->remaining == 0; });
    stats_.take_wait_seconds += seconds_since(start);
    pending_.erase(ticket);
    ++stats_.batches_taken;
  }
  batch_done_.notify_all();  // room for the next submit
  memory_.hand_off(batch->request.cuda_stream);
  if (batch->error) std::rethrow_exception(batch->error);
  return std::move(batch->outputs);
}

DecodeStageStats DecodeStage::stats() const {
  DecodeStageStats out;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    out = stats_;
  }
  out.cache = cache_.stats();
  return out;
}

void DecodeStage::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    decode(job);
  }
}

void DecodeStage::decode(const Job& job) {
  Pending& batch = *job.batch;
  const FrameRequest& r = batch.request.requests[job.request];
  const CameraShape& cam = batch.request.cameras[static_cast<size_t>(r.camera)];
  bool skip = false;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    skip = batch.error != nullptr;  // the batch already failed: its other requests are moot
  }
  const auto start = std::chrono::steady_clock::now();
  std::string backend;
  std::exception_ptr error;
  if (!skip) {
    try {
      DecoderCache::Lease lease = cache_.lease(r.source);
      VideoDecoder& decoder = lease.decoder();
      const StreamInfo& info = decoder.info();
      if (info.width != cam.width || info.height != cam.height) {
        throw InvalidInput(r.source.name() + ": frames are " + std::to_string(info.width) + "x" +
                           std::to_string(info.height) + " but camera " + std::to_string(r.camera) +
                           " of the batch is " + std::to_string(cam.width) + "x" + std::to_string(cam.height) +
                           " (the dataset's feature shape)");
      }
      const FrameBatch& out = batch.outputs[static_cast<size_t>(r.camera)];
      std::vector<uint8_t*> slots(static_cast<size_t>(cam.frames_per_sample));
      for (size_t t = 0; t < slots.size(); ++t) {
        slots[t] = out.data + (r.sample * cam.frames_per_sample + static_cast<int64_t>(t)) * out.frame_bytes();
      }
      decoder.decode_into(r.timestamps_s, batch.request.tolerance_s,
                          FrameDestinations{slots, out.dtype, cam.height, cam.width, memory_.device(),
                                            memory_.join_stream()});
      backend = decoder.backend();
    } catch (...) {
      error = std::current_exception();
    }
  }
  const double took = seconds_since(start);
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_.decode_seconds += took;
    if (error && !batch.error) batch.error = error;
    if (!backend.empty()) {
      ++stats_.requests_done;
      stats_.frames += cam.frames_per_sample;
      stats_.frames_by_backend[backend] += cam.frames_per_sample;
    }
    --batch.remaining;
  }
  batch_done_.notify_all();
}

}  // namespace lrs
