#include "sampling/window.h"

#include <string>

#include "common/errors.h"

namespace lrs::sampling {

void window_indices(int64_t episode_length, int64_t frame, std::span<const int64_t> offsets,
                    std::span<int64_t> indices, std::span<bool> is_pad) {
  // Note [Delta windows]
  if (episode_length < 1) {
    throw InvalidInput("window: episode_length must be >= 1, got " + std::to_string(episode_length));
  }
  if (frame < 0 || frame >= episode_length) {
    throw InvalidInput("window: frame must be in [0, episode_length=" + std::to_string(episode_length) +
                       "), got " + std::to_string(frame));
  }
  if (indices.size() != offsets.size() || is_pad.size() != offsets.size()) {
    throw InvalidInput("window: outputs must have the offsets' size " + std::to_string(offsets.size()) +
                       ", got " + std::to_string(indices.size()) + " and " + std::to_string(is_pad.size()));
  }
  const int64_t last = episode_length - 1;
  for (size_t i = 0; i < offsets.size(); ++i) {
    const int64_t d = offsets[i];
    // frame + d without overflow: frame is in [0, last], so compare d against the distances.
    if (d < -frame) {
      indices[i] = 0;
      is_pad[i] = true;
    } else if (d > last - frame) {
      indices[i] = last;
      is_pad[i] = true;
    } else {
      indices[i] = frame + d;
      is_pad[i] = false;
    }
  }
}

}  // namespace lrs::sampling
