// Contracts of cpp/sampling/window.h: lerobot map-style delta windows (clamp to the episode,
// is_pad outside it), with no cap on the window's length, no overflow, and clear errors.
#include "sampling/window.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "common/errors.h"

namespace lrs::sampling {
namespace {

struct Result {
  std::vector<int64_t> indices;
  std::vector<bool> is_pad;
};

Result run(int64_t length, int64_t frame, const std::vector<int64_t>& offsets) {
  std::vector<int64_t> indices(offsets.size(), -7);
  const auto pad = std::make_unique<bool[]>(offsets.size());
  window_indices(length, frame, offsets, indices, std::span<bool>(pad.get(), offsets.size()));
  return {indices, std::vector<bool>(pad.get(), pad.get() + offsets.size())};
}

TEST(Window, MatchesMapStyleClampAndPadForEveryPosition) {
  std::vector<int64_t> offsets;
  for (int64_t d = -9; d <= 9; ++d) offsets.push_back(d);
  for (int64_t length = 1; length <= 7; ++length) {
    for (int64_t frame = 0; frame < length; ++frame) {
      const Result r = run(length, frame, offsets);
      for (size_t i = 0; i < offsets.size(); ++i) {
        const int64_t target = frame + offsets[i];
        const bool outside = target < 0 || target >= length;
        EXPECT_EQ(r.is_pad[i], outside) << "L=" << length << " f=" << frame << " d=" << offsets[i];
        EXPECT_EQ(r.indices[i], target < 0 ? 0 : (target >= length ? length - 1 : target));
      }
    }
  }
}

TEST(Window, LongHistoryAndFutureAreNotCappedAt100Frames) {
  // 150-frame history at frame 10 of a 300-frame episode: 140 of them before the episode start.
  std::vector<int64_t> history;
  for (int64_t d = -149; d <= 0; ++d) history.push_back(d);
  const Result h = run(300, 10, history);
  int64_t pads = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    pads += h.is_pad[i] ? 1 : 0;
    EXPECT_EQ(h.is_pad[i], history[i] < -10);
    EXPECT_EQ(h.indices[i], history[i] < -10 ? 0 : 10 + history[i]);
  }
  EXPECT_EQ(pads, 139);

  // 150-frame future from frame 0 of a 400-frame episode: all inside, none padded (a 100-frame
  // cap would pad or clamp the last 50).
  std::vector<int64_t> future;
  for (int64_t d = 0; d < 150; ++d) future.push_back(d);
  const Result f = run(400, 0, future);
  for (size_t i = 0; i < future.size(); ++i) {
    EXPECT_FALSE(f.is_pad[i]);
    EXPECT_EQ(f.indices[i], future[i]);
  }
}

TEST(Window, ExtremeOffsetsClampWithoutOverflow) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t small = std::numeric_limits<int64_t>::min();
  const Result r = run(5, 4, {small, big, -4, 0});
  EXPECT_EQ(r.indices, (std::vector<int64_t>{0, 4, 0, 4}));
  EXPECT_EQ(r.is_pad, (std::vector<bool>{true, true, false, false}));
  EXPECT_TRUE(run(5, 2, {}).indices.empty());
}

TEST(Window, RejectsBadArgumentsWithAMessage) {
  EXPECT_THROW(run(0, 0, {0}), InvalidInput);
  EXPECT_THROW(run(5, 5, {0}), InvalidInput);
  EXPECT_THROW(run(5, -1, {0}), InvalidInput);
  std::vector<int64_t> offsets = {0, 1};
  std::vector<int64_t> indices(1);
  bool pad[2] = {};
  try {
    window_indices(5, 0, offsets, indices, std::span<bool>(pad, 2));
    FAIL() << "mismatched sizes accepted";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("window"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lrs::sampling
