// The state word of a shared batch block (Note [Shared batch blocks] in
// python/lerobot_stream/batching.py): a 32-bit word at the start of a block of shared memory that a
// DataLoader worker fills with a batch's frames and the main process reads. The worker marks a
// block kFilling, then kSent when the batch leaves; the main process marks it kFree when the last
// tensor viewing it is freed, and only then may the worker reuse it.
//
// Header-only; owns nothing. Thread- and process-safe: every access is atomic (release stores,
// acquire loads), so the worker sees the main process's last reads finished before it writes again.
#pragma once

#include <atomic>
#include <cstdint>

namespace lrs {

enum class BlockState : uint32_t { kFree = 0, kFilling = 1, kSent = 2 };

// `header` is the block's first byte (4-byte aligned: blocks are page-aligned mappings).
inline BlockState load_block_state(void* header) {
  return static_cast<BlockState>(std::atomic_ref<uint32_t>(*static_cast<uint32_t*>(header)).load(std::memory_order_acquire));
}

inline void store_block_state(void* header, BlockState state) {
  std::atomic_ref<uint32_t>(*static_cast<uint32_t*>(header)).store(static_cast<uint32_t>(state), std::memory_order_release);
}

}  // namespace lrs
