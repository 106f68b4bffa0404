#include "decode/batch_fill.h"

#include <algorithm>
#include <numeric>

#include "av/frame_table.h"
#include "common/errors.h"

namespace lrs {

std::vector<int64_t> prepare_fill(const av::FrameTable& table, const StreamInfo& info, const std::string& path,
                                  const DecodeDevice& writes, std::span<const double> timestamps_s,
                                  double tolerance_s, const FrameDestinations& out) {
  const auto fail = [&](const std::string& what) { throw InvalidInput(path + ": " + what); };
  if (!(tolerance_s > 0)) fail("tolerance_s must be > 0, got " + std::to_string(tolerance_s));
  if (out.frames.size() != timestamps_s.size()) {
    fail(std::to_string(timestamps_s.size()) + " timestamps but " + std::to_string(out.frames.size()) +
         " output frames");
  }
  if (out.height != info.height || out.width != info.width) {
    fail("output frames are 3x" + std::to_string(out.height) + "x" + std::to_string(out.width) +
         " but the video is 3x" + std::to_string(info.height) + "x" + std::to_string(info.width));
  }
  if (!(out.device == writes)) {
    fail("output frames are on " + out.device.str() + " but this decoder (" +
         (writes.kind == DeviceKind::kCPU ? std::string("cpu") : "on " + writes.str()) + ") writes " +
         (writes.kind == DeviceKind::kCPU ? std::string("host memory") : writes.str() + " memory"));
  }
  const auto align = static_cast<uintptr_t>(pixel_bytes(out.dtype));
  for (uint8_t* slot : out.frames) {
    if (slot == nullptr || reinterpret_cast<uintptr_t>(slot) % align != 0) {
      fail(std::string("an output frame is null or not aligned for ") + pixel_type_name(out.dtype));
    }
  }
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
