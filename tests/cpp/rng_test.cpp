// Contracts of cpp/common/rng.h: the published Philox4x32-10 answers, the stream layout and O(1)
// seek, key separation, exactly uniform bounded integers and Fisher–Yates permutations, and
// platform-independent values (checked against an independent Python reference).
#include "common/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "chi_square.h"

namespace lrs {
namespace {

// Known-answer vectors of Random123's tests/kat_vectors ("philox4x32 10" lines: counter[4],
// key[2] -> output[4]); also reproduced by an independent Python implementation of the paper.
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    PhiloxCounter ctr;
    PhiloxKey key;
    PhiloxCounter expected;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& kat : kats) EXPECT_EQ(philox4x32_10(kat.ctr, kat.key), kat.expected);
  static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u, "usable at compile time");
}

TEST(RngStream, WordIIsElementIMod4OfBlockIDiv4) {
  const uint64_t key = 0x0123456789abcdefull;
  RngStream rng(key);
  for (uint64_t i = 0; i < 64; ++i) {
    const PhiloxCounter block = philox4x32_10(
        {static_cast<uint32_t>(i / 4), static_cast<uint32_t>((i / 4) >> 32), 0, 0},
        {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)});
    EXPECT_EQ(rng.next_u32(), block[i % 4]) << "word " << i;
  }
  EXPECT_EQ(rng.position(), 64u);
}

TEST(RngStream, SeekEqualsDrawAndDiscard) {
  // Bounded draws consume a data-dependent number of words; position() after k draws and a
  // seek() there on a fresh stream continue identically. Also a seek far beyond 2^32 blocks.
  for (uint64_t k : {0u, 1u, 3u, 4u, 5u, 17u, 1000u}) {
    RngStream drawn(derive_key(9, 1, 2, 3, RngPurpose::kPoolDraw));
    for (uint64_t i = 0; i < k; ++i) drawn.bounded(2'147'483'649ull);  // rejects ~half the words
    RngStream sought(derive_key(9, 1, 2, 3, RngPurpose::kPoolDraw));
    sought.seek(drawn.position());
    for (int i = 0; i < 32; ++i) EXPECT_EQ(sought.bounded(1'000'003), drawn.bounded(1'000'003));
  }
  RngStream far(5, (uint64_t{1} << 40) + 6);
  const PhiloxCounter block = philox4x32_10({1, 1u << 6, 0, 0}, {5, 0});  // block 2^38 + 1
  EXPECT_EQ(far.next_u32(), block[2]);
  EXPECT_EQ(far.next_u32(), block[3]);
}

// Values from an independent Python implementation of splitmix64 / derive_key / Philox stream /
// Lemire with rejection: the same on every compiler and standard library.
TEST(RngStream, ValuesMatchIndependentReference) {
  EXPECT_EQ(derive_key(42, 0, 0, 0, RngPurpose::kPoolDraw), 0x21eae40d7574d169ull);
  RngStream small(derive_key(42, 0, 0, 0, RngPurpose::kPoolDraw));
  const std::vector<uint64_t> expected_small = {819, 679, 799, 311, 999, 555, 407, 783};
  for (uint64_t e : expected_small) EXPECT_EQ(small.bounded(1000), e);
  RngStream large(derive_key(7, 3, 1, 2, RngPurpose::kEpochPermutation));
  const std::vector<uint64_t> expected_large = {7517639009ull, 6367701449ull, 1685655783ull,
                                                2128429726ull};
  for (uint64_t e : expected_large) EXPECT_EQ(large.bounded(3 * (uint64_t{1} << 32) + 5), e);
  EXPECT_EQ(large.position(), 8u);
  // A range that rejects almost half the words: 5 of 13 words rejected.
  RngStream rejecting(derive_key(1, 0, 0, 0, RngPurpose::kPoolDraw));
  const std::vector<uint64_t> expected_rejecting = {1381514928, 461001074,  1867852814, 169948071,
                                                    624495967,  1182484191, 2104872611, 185590934};
  for (uint64_t e : expected_rejecting) EXPECT_EQ(rejecting.bounded((uint64_t{1} << 31) + 1), e);
  EXPECT_EQ(rejecting.position(), 13u);
}

TEST(RngStream, SameKeySameSequenceAndKeysSeparateStreams) {
  RngStream a(derive_key(1, 2, 3, 4, RngPurpose::kPoolDraw));
  RngStream b(derive_key(1, 2, 3, 4, RngPurpose::kPoolDraw));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.bounded(1u << 20), b.bounded(1u << 20));

  std::set<uint64_t> keys;
  int count = 0;
  for (uint64_t seed : {0u, 1u, 42u})
    for (uint64_t epoch : {0u, 1u, 2u})
      for (uint64_t rank : {0u, 1u, 7u})
        for (uint64_t worker : {0u, 1u, 3u})
          for (RngPurpose p : {RngPurpose::kEpochPermutation, RngPurpose::kPoolDraw}) {
            keys.insert(derive_key(seed, epoch, rank, worker, p));
            ++count;
          }
  EXPECT_EQ(static_cast<int>(keys.size()), count) << "two (seed, epoch, rank, worker, purpose) share a key";
}

TEST(RngStream, BoundedIsInRangeAndUniform) {
  // Small ranges, a range that rejects almost half the words (2^31 + 1) and 64-bit ranges.
  const uint64_t ranges[] = {2, 3, 6, 7, 10, 1000, (uint64_t{1} << 31) + 1, 0xFFFFFFFFull,
                             (uint64_t{1} << 32) + 1, 3 * (uint64_t{1} << 32) + 5,
                             0xFFFFFFFFFFFFFFFFull};
  for (uint64_t range : ranges) {
    // One bin per value up to 1000; above that 16 bins whose sizes differ by at most one value in
    // more than 2^27 (negligible).
    const int64_t bins = static_cast<int64_t>(range <= 1000 ? range : 16);
    std::vector<int64_t> counts(static_cast<size_t>(bins));
    RngStream rng(derive_key(123, range, 0, 0, RngPurpose::kPoolDraw));
    const int64_t draws = bins >= 1000 ? 400 * bins : 20000 * bins;
    for (int64_t i = 0; i < draws; ++i) {
      const uint64_t v = rng.bounded(range);
      ASSERT_LT(v, range);
      
      const auto bin = static_cast<int64_t>(
          static_cast<long double>(v) * static_cast<long double>(bins) / static_cast<long double>(range));
      ++counts[static_cast<size_t>(bin)];
    }
    EXPECT_LT(test::chi_square_uniform(counts), test::chi_square_critical(bins - 1)) << "range " << range;
  }
  RngStream rng(1);
  EXPECT_EQ(rng.bounded(0), 0u);
  EXPECT_EQ(rng.bounded(1), 0u);
  EXPECT_EQ(rng.position(), 0u) << "ranges 0 and 1 draw nothing";
}

TEST(RngStream, BoundedResiduesAreUniform) {
  // Bias of a modulo-style sampler shows in the low residues of a range just above a power of
  // two; the exact sampler has none.
  const uint64_t range = 3 * (uint64_t{1} << 30);
  RngStream rng(derive_key(5, 0, 0, 0, RngPurpose::kPoolDraw));
  std::vector<int64_t> counts(12);
  for (int i = 0; i < 240000; ++i) ++counts[rng.bounded(range) % 12];
  EXPECT_LT(test::chi_square_uniform(counts), test::chi_square_critical(11));
}

TEST(FisherYates, ProducesUniformPermutations) {
  std::map<std::vector<int>, int64_t> seen;
  RngStream rng(derive_key(77, 0, 0, 0, RngPurpose::kEpochPermutation));
  for (int i = 0; i < 24000; ++i) {
    std::vector<int> v = {0, 1, 2, 3};
    fisher_yates_shuffle(std::span<int>(v), rng);
    ++seen[v];
  }
  ASSERT_EQ(seen.size(), 24u) << "every permutation of 4 elements appears";
  std::vector<int64_t> counts;
  for (const auto& [perm, count] : seen) counts.push_back(count);
  EXPECT_LT(test::chi_square_uniform(counts), test::chi_square_critical(23));

  std::vector<int> big(1000);
  std::iota(big.begin(), big.end(), 0);
  fisher_yates_shuffle(std::span<int>(big), rng);
  std::vector<int> sorted = big;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  std::vector<int> empty;
  fisher_yates_shuffle(std::span<int>(empty), rng);
}

}  // namespace
}  // namespace lrs
