// Counter-based random numbers that are identical on every platform: Philox4x32-10 (the exact
// Random123 reference algorithm), a stream of u32s keyed by a 64-bit key derived from
// (seed, epoch, rank, worker, purpose), our own bounded sampler (Lemire's multiply-shift with
// rejection) and a Fisher–Yates permutation built on it. No std:: distributions are used: their
// output differs between standard libraries (see Note [Portable randomness]).
//
// Header-only. Owns nothing but a few integers. philox4x32_10, derive_key and splitmix64 are pure
// functions (thread-safe); one RngStream is NOT thread-safe: one thread uses it at a time (copies
// are independent).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <tuple>
#include <utility>

namespace lrs {

// Note [Portable randomness]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every shuffle in the loader must be reproducible from the seed on any machine, compiler and
// standard library, and resumable without replaying the past. So:
//  * The generator is Philox4x32-10, a counter-based generator: output block i is a pure function
//    of (key, i), which gives an O(1) jump to any position (RngStream::seek).
//  * Streams are separated by their key, not by their position: the 64-bit key is derived with
//    splitmix64 from (seed, epoch, rank, worker, purpose), so two consumers, two epochs or two
//    purposes never share a stream, and adding a consumer never shifts another one's numbers.
//  * Bounded integers use Lemire's multiply-shift with rejection on 32-bit words (Lemire 2019,
//    "Fast Random Integer Generation in an Interval"): exactly uniform, no division on the fast
//    path, and defined by integer arithmetic alone. Ranges above 2^32-1 use the same method on a
//    64-bit word made of two consecutive u32s (high word first).
//  * The permutation is the classic Fisher–Yates walk from the last element down.

// The Random123 constants of Philox4x32.
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// Philox4x32 with 10 rounds: one 128-bit output block for a 128-bit counter and a 64-bit key.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    const uint64_t p0 = uint64_t{kPhiloxM0} * ctr[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return ctr;
}

// The splitmix64 output function applied to x + golden gamma (one step of a splitmix64 stream
// whose state was x).
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// What a stream is used for; part of the key, so each purpose has its own numbers.
enum class RngPurpose : uint64_t {
  kEpochPermutation = 1,  // the global episode order of an epoch (rank = worker = 0)
  kPoolDraw = 2,          // a consumer's draws from its episode pool
  kElasticPoolDraw = 3,   // a consumer's draws in an elastic pass (Note [Elastic resume])
};

// The 64-bit stream key of (seed, epoch, rank, worker, purpose): splitmix64 chained over the
// fields, each xor-ed into the running hash before the next mixing step.
constexpr uint64_t derive_key(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker,
                              RngPurpose purpose) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ epoch);
  h = splitmix64(h ^ rank);
  h = splitmix64(h ^ worker);
  return splitmix64(h ^ static_cast<uint64_t>(purpose));
}

// A stream of u32s: word i is element (i % 4) of philox4x32_10({i / 4 low, i / 4 high, 0, 0},
// {key low, key high}). position() counts the words drawn so far; seek() jumps in O(1).
class RngStream {
 public:
  explicit constexpr RngStream(uint64_t key, uint64_t position = 0)
      : key_{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)}, position_(position) {}

  constexpr uint64_t position() const { return position_; }
  constexpr void seek(uint64_t position) { position_ = position; }

  constexpr uint32_t next_u32() {
    const uint64_t block = position_ >> 2;
    if (!has_block_ || block != block_index_) {
      block_ = philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0},
                             key_);
      block_index_ = block;
      has_block_ = true;
    }
    return block_[position_++ & 3];
  }

  // Uniform integer in [0, range); range >= 1 (range 0 returns 0 and draws nothing).
  // See Note [Portable randomness].
  constexpr uint64_t bounded(uint64_t range) {
    if (range <= 1) return 0;
    if (range <= 0xFFFFFFFFull) return bounded32(static_cast<uint32_t>(range));
    return bounded64(range);
  }

 private:
  constexpr uint32_t bounded32(uint32_t s) {
    uint64_t m = uint64_t{next_u32()} * s;
    auto low = static_cast<uint32_t>(m);
    if (low < s) {
      const uint32_t threshold = static_cast<uint32_t>(-s) % s;  // 2^32 mod s
      while (low < threshold) {
        m = uint64_t{next_u32()} * s;
        low = static_cast<uint32_t>(m);
      }
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // 64x64 -> 128-bit product as (high, low), in portable integer arithmetic.
  static constexpr std::pair<uint64_t, uint64_t> mul128(uint64_t a, uint64_t b) {
    const uint64_t a_lo = a & 0xFFFFFFFFull, a_hi = a >> 32;
    const uint64_t b_lo = b & 0xFFFFFFFFull, b_hi = b >> 32;
    const uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    const uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFull) + (hl & 0xFFFFFFFFull);
    return {hh + (lh >> 32) + (hl >> 32) + (mid >> 32), (mid << 32) | (ll & 0xFFFFFFFFull)};
  }

  constexpr uint64_t next_u64() {
    const uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }

  constexpr uint64_t bounded64(uint64_t s) {
    auto [high, low] = mul128(next_u64(), s);
    if (low < s) {
      const uint64_t threshold = (0 - s) % s;  // 2^64 mod s
      while (low < threshold) std::tie(high, low) = mul128(next_u64(), s);
    }
    return high;
  }

  PhiloxKey key_;
  uint64_t position_ = 0;
  uint64_t block_index_ = 0;
  PhiloxCounter block_{};
  bool has_block_ = false;
};

// Shuffles `values` in place with Fisher–Yates: for i = size-1 down to 1, swap values[i] with
// values[bounded(i + 1)].
template <typename T>
constexpr void fisher_yates_shuffle(std::span<T> values, RngStream& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<size_t>(rng.bounded(i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace lrs
