// DecoderCache: an LRU of open video decoders keyed by VideoSource::key() (a file path, or a remote
// file's URL + the fetched episode range: two ByteSources with the same key must hold the same
// bytes).
//
// Opening a decoder (demux scan, codec init) costs milliseconds; v3 packs many episodes per file,
// so consecutive samples mostly hit a file that is already open. The cache keeps at most
// `capacity` decoders open, and at most `max_bytes` of their estimated memory
// (VideoDecoder::memory_bytes; 0 = no byte bound), evicting the least recently used beyond either
// bound (the decoder just opened always stays). LeRobot's unbounded cache once reached 35 GB per
// worker: both bounds exist so that cannot happen here.
//
// Thread-safe. A decoder is used by one thread at a time: `lease()` hands out exclusive access.
// Up to `max_decoders_per_file` decoders of one key may be open at once (default 1): a caller for a
// key whose decoders are all leased opens another while under that limit, and waits for one to be
// released beyond it — so several threads can decode one file (v3 packs many episodes per file) in
// parallel, as DataLoader workers with their own caches do. An entry evicted while leased stays
// alive until its lease ends; `open_decoders` counts the cached entries (never more than
// `capacity`). What the decoders did under each lease (DecoderStats: frames decoded, seeks, ...) is
// added to the cache's `decoder` totals when the lease ends, so the totals survive evictions.
#pragma once

#include <cstdint>
#include <functional>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "decode/video_decoder.h"
#include "decode/video_source.h"

namespace lrs {

struct DecoderCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t evictions = 0;
  int64_t open_decoders = 0;
  int64_t capacity = 0;
  int64_t bytes = 0;      // estimated memory of the cached decoders
  int64_t max_bytes = 0;  // 0 = no byte bound
  std::map<std::string, int64_t> opened_by_backend;  // files opened per VideoDecoder::backend()
  std::vector<std::string> backend_notes;            // distinct backend_note()s, first seen first
  DecoderStats decoder;  // summed over every lease ended so far (open and closed decoders)
};

// Opens a decoder for a source (throws the decoder's own errors).
using DecoderFactory = std::function<std::unique_ptr<VideoDecoder>(const VideoSource& source)>;

// Default capacity for a consumer: the pool's working set (pool + 1 episodes being admitted) times
// the number of cameras, capped at 128 open decoders.
int64_t default_decoder_cache_capacity(int64_t episode_pool_size, int64_t num_cameras);

class DecoderCache {
  struct Entry {
    std::string key;
    std::unique_ptr<VideoDecoder> decoder; // opened by the lease that created the entry
    int64_t bytes = 0;                     // memory_bytes() once opened (under the cache mutex)
    bool cached = true;                    // still in the LRU (under the cache mutex)
    bool leased = true;                    // a Lease holds it (under the cache mutex)
  };

 public:
  // Exclusive access to one open decoder; movable, releases on destruction (and adds what the
  // decoder did meanwhile to the cache's totals).
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)), entry_(std::move(other.entry_)), at_start_(other.at_start_) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    VideoDecoder& decoder() { return *entry_->decoder; }
    VideoDecoder* operator->() { return entry_->decoder.get(); }

   private:
    friend class DecoderCache;
    Lease(DecoderCache* cache, std::shared_ptr<Entry> entry)
        : cache_(cache), entry_(std::move(entry)), at_start_(entry_->decoder->stats()) {}
    DecoderCache* cache_;
    std::shared_ptr<Entry> entry_;
    DecoderStats at_start_;
  };

  DecoderCache(int64_t capacity, DecoderFactory factory, int64_t max_bytes = 0, int64_t max_decoders_per_file = 1);

  // A decoder for `source` (looked up by its key): an idle cached one, else a newly opened one
  // (below max_decoders_per_file), else the next one released. Throws what the factory throws; a
  // failed open leaves nothing cached.
  Lease lease(const VideoSource& source);

  // lease(source)->get_frames_at(...), the common case.
  FrameBatch get_frames_at(const VideoSource& source, std::span<const double> timestamps_s, double tolerance_s,
                           PixelType dtype = PixelType::kUInt8);

  // lease(source)->info(): the stream's facts (opens the decoder on a miss).
  StreamInfo stream_info(const VideoSource& source);

  DecoderCacheStats stats() const;
  int64_t capacity() const { return capacity_; }
  // Drops every cached decoder (a leased one closes when its lease ends).
  void clear();

 private:
  using LruList = std::list<std::shared_ptr<Entry>>;  // front = most recently used

  // Unlinks the least recently used entries (never `keep`) while a bound is exceeded; caller holds
  // mutex_. The unlinked entries go to `evicted`, destroyed by the caller after unlocking.
  void evict_over_bounds(const std::shared_ptr<Entry>& keep, LruList& evicted);
  // Removes `entry` from the LRU and the index; caller holds mutex_. Returns the unlinked node.
  LruList unlink(const std::shared_ptr<Entry>& entry);
  void release(const std::shared_ptr<Entry>& entry, const DecoderStats& did);  // the end of a lease

  const int64_t capacity_;
  const int64_t max_bytes_;
  const int64_t max_per_file_;
  DecoderFactory factory_;
  int64_t bytes_ = 0;
  DecoderStats decoder_totals_;  // under mutex_
  mutable std::mutex mutex_;
  std::condition_variable released_;  // a lease ended, or an open failed
  LruList lru_;
  std::unordered_multimap<std::string, LruList::iterator> index_;  // a file's open decoders
  DecoderCacheStats stats_;
};

}  // namespace lrs
