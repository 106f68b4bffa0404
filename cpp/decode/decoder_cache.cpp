#include "decode/decoder_cache.h"

#include <algorithm>

#include "common/errors.h"

namespace lrs {

int64_t default_decoder_cache_capacity(int64_t episode_pool_size, int64_t num_cameras) {
  const int64_t working_set = (std::max<int64_t>(episode_pool_size, 1) + 1) * std::max<int64_t>(num_cameras, 1);
  return std::min<int64_t>(working_set, 128);
}

DecoderCache::DecoderCache(int64_t capacity, DecoderFactory factory, int64_t max_bytes, int64_t max_decoders_per_file)
    : capacity_(capacity), max_bytes_(max_bytes), max_per_file_(max_decoders_per_file), factory_(std::move(factory)) {
  if (capacity_ < 1) throw InvalidInput("DecoderCache: capacity must be >= 1, got " + std::to_string(capacity));
  if (max_bytes_ < 0) throw InvalidInput("DecoderCache: max_bytes must be >= 0, got " + std::to_string(max_bytes));
  if (max_per_file_ < 1) {
    throw InvalidInput("DecoderCache: max_decoders_per_file must be >= 1, got " + std::to_string(max_per_file_));
  }
  stats_.max_bytes = max_bytes_;
  if (!factory_) throw InvalidInput("DecoderCache: no decoder factory");
  stats_.capacity = capacity_;
}

DecoderCache::Lease::~Lease() {
  if (cache_ == nullptr) return;
  DecoderStats did = entry_->decoder->stats();
  did -= at_start_;
  cache_->release(entry_, did);
}

void DecoderCache::release(const std::shared_ptr<Entry>& entry, const DecoderStats& did) {
  {
    std::lock_guard guard(mutex_);
    entry->leased = false;
    decoder_totals_ += did;
  }
  released_.notify_all();
}

DecoderCache::LruList DecoderCache::unlink(const std::shared_ptr<Entry>& entry) {
  LruList node;
  auto [first, last] = index_.equal_range(entry->key);
  for (auto it = first; it != last; ++it) {
    if (*it->second == entry) {
      node.splice(node.end(), lru_, it->second);
      index_.erase(it);
      break;
    }
  }
  if (entry->cached) bytes_ -= entry->bytes;
  entry->cached = false;
  return node;
}

DecoderCache::Lease DecoderCache::lease(const VideoSource& source) {
  const std::string& key = source.key();
  std::shared_ptr<Entry> entry;
  LruList evicted;  // destroyed after the cache mutex is released (closing a decoder does I/O)
  bool fresh = false;
  {
    std::unique_lock lock(mutex_);
    for (;;) {
      auto [first, last] = index_.equal_range(key);
      int64_t open = 0;
      for (auto it = first; it != last && !entry; ++it, ++open) {
        if (!(*it->second)->leased) {
          lru_.splice(lru_.begin(), lru_, it->second);
          entry = *it->second;
        }
      }
      if (entry) {
        ++stats_.hits;
        break;
      }
      if (open < max_per_file_) {
        ++stats_.misses;
        entry = std::make_shared<Entry>();
        entry->key = key;
        lru_.push_front(entry);
        index_.emplace(key, lru_.begin());
        evict_over_bounds(entry, evicted);
        fresh = true;
        break;
      }
      released_.wait(lock);  // every decoder of this key is leased: wait for one
    }
    entry->leased = true;
  }
  evicted.clear();
  if (!fresh) return Lease(this, std::move(entry));

  try {
    entry->decoder = factory_(source);
  } catch (...) {
    {
      std::lock_guard guard(mutex_);
      if (entry->cached) unlink(entry);
    }
    released_.notify_all();  // a waiter for this file may open one itself now
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
  return Lease(this, std::move(entry));
}

void DecoderCache::evict_over_bounds(const std::shared_ptr<Entry>& keep, LruList& evicted) {
  auto over = [&] {
    return static_cast<int64_t>(lru_.size()) > capacity_ || (max_bytes_ > 0 && bytes_ > max_bytes_);
  };
  while (over() && !lru_.empty() && lru_.back() != keep) {
    const std::shared_ptr<Entry> victim = lru_.back();
    evicted.splice(evicted.end(), unlink(victim));
    ++stats_.evictions;
  }
}

FrameBatch DecoderCache::get_frames_at(const VideoSource& source, std::span<const double> timestamps_s,
                                       double tolerance_s, PixelType dtype) {
  Lease held = lease(source);
  return held->get_frames_at(timestamps_s, tolerance_s, dtype);
}

StreamInfo DecoderCache::stream_info(const VideoSource& source) {
  Lease held = lease(source);
  return held->info();
}

DecoderCacheStats DecoderCache::stats() const {
  std::lock_guard guard(mutex_);
  DecoderCacheStats out = stats_;
  out.open_decoders = static_cast<int64_t>(lru_.size());
  out.bytes = bytes_;
  out.decoder = decoder_totals_;
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
  released_.notify_all();  // waiters may open decoders again
}

}  // namespace lrs
