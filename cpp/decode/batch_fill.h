// The batch-fill loop every backend's decode_into shares: check the caller's destinations, resolve
// requested timestamps to frames (Note [Frame choice]), then decode each distinct frame once, in
// presentation order, into its first slot and copy it to the slots that repeat it. The backends
// (CPU, NVDEC, cpu->cuda) differ only in how one frame is decoded into a slot and how a slot is
// copied (host memcpy, device-to-device copy).
// Owns nothing; thread-safe (pure functions over the caller's callbacks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "decode/video_decoder.h"

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
// then moves forward through a GOP once per batch (Note [Seeking] in av/cpu_decoder.h). The
// destinations are the caller's (FrameDestinations): a batch of the decoder's own, the slots of a
// DataLoader batch in shared memory, or one request's slice of a decode stage's batch on the GPU.

// What every decode_into starts with. Throws InvalidInput naming `path` when tolerance_s is not > 0,
// when `out` does not hold one destination per timestamp, is not `height` x `width` of the stream,
// has a null or misaligned destination, or lies on another device than `writes` (the device this
// backend writes); then returns the frame index nearest to each timestamp (FrameTable::nearest:
// FrameTimestampError when a timestamp has no frame within tolerance_s).
std::vector<int64_t> prepare_fill(const av::FrameTable& table, const StreamInfo& info, const std::string& path,
                                  const DecodeDevice& writes, std::span<const double> timestamps_s,
                                  double tolerance_s, const FrameDestinations& out);

// Visits `wanted` (frame index per slot) as Note [Batch fill] says: decode(frame, slot) once per
// distinct frame, in presentation order, repeat(from_slot, to_slot) for every other slot.
void fill_in_presentation_order(std::span<const int64_t> wanted,
                                const std::function<void(int64_t frame, size_t slot)>& decode,
                                const std::function<void(size_t from_slot, size_t to_slot)>& repeat);

}  // namespace lrs
