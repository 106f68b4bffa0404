// The batch-fill loop every backend shares: resolve requested timestamps to frames (Note [Frame
// choice]), then decode each distinct frame once, in presentation order, and copy repeats.
// The backends differ only in how one frame is decoded into a slot and how a slot is copied.
// Owns nothing; thread-safe (pure functions over the caller's callbacks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lrs::av {
class FrameTable;
}

namespace lrs {

// Note [Batch fill]
// ~~~~~~~~~~~~~~~~~
// Requests come in any order, with repeats (a window clamped at an episode edge repeats its edge
// frame). Decoding them in request order would seek back and forth; instead the slots are visited
// in presentation order (stable, so equal frames keep request order), each distinct frame is
// decoded once into its first slot and later slots asking for the same frame get a copy. A decoder
// then moves forward through a GOP once per batch (Note [Seeking] in av/cpu_decoder.h).

// The frame index nearest to each timestamp (FrameTable::nearest); InvalidInput naming `path` when
// tolerance_s is not > 0, FrameTimestampError when a timestamp has no frame within it.
std::vector<int64_t> resolve_frames(const av::FrameTable& table, const std::string& path,
                                    std::span<const double> timestamps_s, double tolerance_s);

// Visits `wanted` (frame index per slot) as Note [Batch fill] says: decode(frame, slot) once per
// distinct frame, in presentation order, repeat(from_slot, to_slot) for every other slot.
void fill_in_presentation_order(std::span<const int64_t> wanted,
                                const std::function<void(int64_t frame, size_t slot)>& decode,
                                const std::function<void(size_t from_slot, size_t to_slot)>& repeat);

}  // namespace lrs
