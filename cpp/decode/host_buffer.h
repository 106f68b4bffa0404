// Aligned host allocations for frame batches. The returned shared_ptr owns the block (freed with
// std::free); FrameBatch keeps it alive as its `owner`, and so does the DLPack capsule handed to
// Python. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace lrs {

// 64-byte aligned so every plane of a [T,3,H,W] batch with W % 64 == 0 is SIMD-aligned.
inline std::shared_ptr<uint8_t> allocate_host_bytes(size_t bytes) {
  constexpr size_t kAlignment = 64;
  const size_t rounded = ((bytes == 0 ? 1 : bytes) + kAlignment - 1) / kAlignment * kAlignment;
  void* block = std::aligned_alloc(kAlignment, rounded);
  if (block == nullptr) throw std::bad_alloc();
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(block), [](uint8_t* p) { std::free(p); });
}

}  // namespace lrs
