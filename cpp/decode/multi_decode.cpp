#include "decode/multi_decode.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <unordered_map>

#include "common/errors.h"

namespace lrs {
namespace {

// The requests of one file, merged in request order.
struct FileGroup {
  const FileRequest* first = nullptr;
  std::vector<double> timestamps_s;
  std::vector<uint8_t*> destinations;
};

std::vector<FileGroup> group_by_file(std::span<const FileRequest> requests) {
  std::vector<FileGroup> groups;
  std::unordered_map<std::string, size_t> index;
  for (const FileRequest& r : requests) {
    if (r.timestamps_s.size() != r.destinations.size()) {
      throw InvalidInput(r.source.name() + ": " + std::to_string(r.timestamps_s.size()) + " timestamps but " +
                         std::to_string(r.destinations.size()) + " output frames");
    }
    auto [it, added] = index.try_emplace(r.source.key(), groups.size());
    if (added) groups.push_back(FileGroup{&r, {}, {}});
    FileGroup& g = groups[it->second];
    if (g.first->height != r.height || g.first->width != r.width) {
      throw InvalidInput(r.source.name() + ": output frames of two sizes requested (" + std::to_string(g.first->height) + "x" +
                         std::to_string(g.first->width) + " and " + std::to_string(r.height) + "x" +
                         std::to_string(r.width) + ")");
    }
    g.timestamps_s.insert(g.timestamps_s.end(), r.timestamps_s.begin(), r.timestamps_s.end());
    g.destinations.insert(g.destinations.end(), r.destinations.begin(), r.destinations.end());
  }
  return groups;
}

}  // namespace

void decode_files(DecoderCache& cache, std::span<const FileRequest> requests, double tolerance_s, PixelType dtype,
                  int parallelism, const DecodeDevice& device, uintptr_t cuda_stream) {
  const std::vector<FileGroup> groups = group_by_file(requests);
  std::vector<std::exception_ptr> errors(groups.size());
  std::atomic<size_t> next = 0;
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < groups.size(); i = next.fetch_add(1)) {
      const FileGroup& g = groups[i];
      try {
        DecoderCache::Lease held = cache.lease(g.first->source);
        held->decode_into(g.timestamps_s, tolerance_s,
                          FrameDestinations{g.destinations, dtype, g.first->height, g.first->width, device, cuda_stream});
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const size_t helpers = std::min<size_t>(static_cast<size_t>(std::max(parallelism, 1)), groups.size());
  {
    std::vector<std::jthread> threads;
    for (size_t t = 1; t < helpers; ++t) threads.emplace_back(work);
    work();
  }  // joins the helpers
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace lrs
