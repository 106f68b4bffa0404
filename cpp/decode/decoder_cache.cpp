#include "decode/decoder_cache.h"

#include <algorithm>

#include "common/errors.h"

namespace lrs {

int64_t default_decoder_cache_capacity(int64_t episode_pool_size, int64_t num_cameras) {
  const int64_t working_set = (std::max<int64_t>(episode_pool_size, 1) + 1) * std::max<int64_t>(num_cameras, 1);
  return std::min<int64_t>(working_set, 128);
}

DecoderCache::DecoderCache(int64_t capacity, DecoderFactory factory, int64_t max_bytes)
    : capacity_(capacity), max_bytes_(max_bytes), factory_(std::move(factory)) {
  if (capacity_ < 1) throw InvalidInput("DecoderCache: capacity must be >= 1, got " + std::to_string(capacity));
  if (max_bytes_ < 0) throw InvalidInput("DecoderCache: max_bytes must be >= 0, got " + std::to_string(max_bytes));
  stats_.max_bytes = max_bytes_;
  if (!factory_) throw InvalidInput("DecoderCache: no decoder factory");
  stats_.capacity = capacity_;
}

DecoderCache::Lease DecoderCache::lease(const std::string& path) {
  std::shared_ptr<Entry> entry;
  LruList evicted;  // destroyed after the cache mutex is released (closing a decoder does I/O)
  {
    std::lock_guard guard(mutex_);
    if (auto found = index_.find(path); found != index_.end()) {
      lru_.splice(lru_.begin(), lru_, found->second);
      ++stats_.hits;
      entry = *found->second;
    } else {
      ++stats_.misses;
      entry = std::make_shared<Entry>();
      entry->path = path;
      lru_.push_front(entry);
      index_[path] = lru_.begin();
      evict_over_bounds(entry, evicted);
    }
  }
  evicted.clear();

  std::unique_lock lock(entry->use);
  if (!entry->decoder) {
    try {
      entry->decoder = factory_(path);
    } catch (...) {
      std::lock_guard guard(mutex_);
      if (auto found = index_.find(path); found != index_.end() && *found->second == entry) {
        lru_.erase(found->second);
        index_.erase(found);
        entry->cached = false;
      }
      throw;
    }
    const int64_t bytes = entry->decoder->memory_bytes();
    std::string backend = entry->decoder->backend();
    std::string note = entry->decoder->backend_note();
    {
      std::lock_guard guard(mutex_);
      ++stats_.opened_by_backend[backend];
      auto& notes = stats_.backend_notes;
      if (!note.empty() && std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(std::move(note));
      if (entry->cached) {
        entry->bytes = bytes;
        bytes_ += bytes;
        evict_over_bounds(entry, evicted);
      }
    }
    evicted.clear();
  }
  return Lease(std::move(entry), std::move(lock));
}

void DecoderCache::evict_over_bounds(const std::shared_ptr<Entry>& keep, LruList& evicted) {
  auto over = [&] {
    return static_cast<int64_t>(lru_.size()) > capacity_ || (max_bytes_ > 0 && bytes_ > max_bytes_);
  };
  while (over() && !lru_.empty() && lru_.back() != keep) {
    const std::shared_ptr<Entry>& victim = lru_.back();
    index_.erase(victim->path);
    bytes_ -= victim->bytes;
    victim->cached = false;
    evicted.splice(evicted.end(), lru_, std::prev(lru_.end()));
    ++stats_.evictions;
  }
}

FrameBatch DecoderCache::get_frames_at(const std::string& path, std::span<const double> timestamps_s,
                                       double tolerance_s) {
  Lease held = lease(path);
  return held->get_frames_at(timestamps_s, tolerance_s);
}

DecoderCacheStats DecoderCache::stats() const {
  std::lock_guard guard(mutex_);
  DecoderCacheStats out = stats_;
  out.open_decoders = static_cast<int64_t>(lru_.size());
  out.bytes = bytes_;
  return out;
}

void DecoderCache::clear() {
  LruList dropped;
  {
    std::lock_guard guard(mutex_);
    dropped.swap(lru_);
    index_.clear();
    bytes_ = 0;
    for (auto& entry : dropped) entry->cached = false;
  }
}

}  // namespace lrs
