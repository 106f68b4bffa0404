#include "decode/batch_fill.h"

#include <algorithm>
#include <numeric>

#include "av/frame_table.h"
#include "common/errors.h"

namespace lrs {

std::vector<int64_t> resolve_frames(const av::FrameTable& table, const std::string& path,
                                    std::span<const double> timestamps_s, double tolerance_s) {
  if (!(tolerance_s > 0)) throw InvalidInput(path + ": tolerance_s must be > 0, got " + std::to_string(tolerance_s));
  std::vector<int64_t> wanted(timestamps_s.size());
  for (size_t i = 0; i < timestamps_s.size(); ++i) wanted[i] = table.nearest(timestamps_s[i], tolerance_s);
  return wanted;
}

void fill_in_presentation_order(std::span<const int64_t> wanted,
                                const std::function<void(int64_t frame, size_t slot)>& decode,
                                const std::function<void(size_t from_slot, size_t to_slot)>& repeat) {
  std::vector<size_t> order(wanted.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return wanted[a] < wanted[b]; });
  size_t first = SIZE_MAX;  // the slot holding the current distinct frame
  for (size_t slot : order) {
    if (first != SIZE_MAX && wanted[first] == wanted[slot]) {
      repeat(first, slot);
    } else {
      decode(wanted[slot], slot);
      first = slot;
    }
  }
}

}  // namespace lrs
