// delta_timestamps windows: the frames of one episode that a sample at frame offset f reads for a
// list of integer frame offsets, clamped to the episode, with the padding mask lerobot's
// map-style dataset returns as `<key>_is_pad` (see Note [Delta windows]).
//
// Pure functions over caller-owned memory; own nothing; thread-safe.
#pragma once

#include <cstdint>
#include <span>

namespace lrs::sampling {

// Note [Delta windows]
// ~~~~~~~~~~~~~~~~~~~~
// lerobot's map-style LeRobotDataset turns `delta_timestamps[key] = [d_0 s, d_1 s, ...]` into
// frame indices f + d_i for the sample at frame f of an episode of L frames, clamps them to
// [0, L-1] (the episode's first / last frame repeats) and sets is_pad where f + d_i falls outside
// [0, L). The seconds-to-frames conversion (round(d_s · fps)) and the tolerance checks are done in
// Python; here the offsets are already integers. There is no cap on the window's length or
// spread: lerobot 0.6's streaming dataset kept only 100 frames of history/future and got is_pad
// wrong beyond that. Offsets are any int64: the sum f + d_i is computed without overflow.

// The window for `offsets` at frame `frame` of an episode of `episode_length` frames, written to
// `indices` (frame offsets within the episode) and `is_pad`; all three spans have equal size.
// Throws InvalidInput for episode_length < 1, frame outside [0, episode_length) or span sizes
// that differ.
void window_indices(int64_t episode_length, int64_t frame, std::span<const int64_t> offsets,
                    std::span<int64_t> indices, std::span<bool> is_pad);

}  // namespace lrs::sampling
