// Byte-range helpers for the ByteSource tests: the header pieces of an mp4 (from its top-level boxes)
// and an episode's media range from the sample index, computed the way a remote fetcher does, with
// pieces backed by the file itself or by memory. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "av/byte_source.h"
#include "av/sample_index.h"
#include "test_media.h"

namespace lrs::test {

enum class Backing { kFile, kMemory, kMixed };  // kMixed: media split in two pieces, file + memory

struct Range {
  int64_t begin = 0;
  int64_t end = 0;
};

// The header ranges of an mp4: everything before the mdat payload (ftyp, moov, free, mdat box
// header) and, for a file whose moov follows the mdat, the boxes after it.
std::vector<Range> header_ranges(const std::string& file_bytes);

struct EpisodeRange {
  Range bytes;                       // from the keyframe at or before the first frame to the last sample's end
  int64_t start_pts = 0;             // pts of that keyframe
  std::vector<int64_t> segment_pts;  // pts of every frame the segment holds, ascending
};

// Three episodes (20, 15, 25 frames) of `encoder` (libx264 with B-frames, libx265, libsvtav1),
// 64x64, with the moov before the mdat (faststart) or after it.
EpisodesSpec episodes_spec(const std::string& encoder, bool faststart);

// The range holding the frames with first_pts <= pts <= last_pts.
EpisodeRange episode_range(const av::SampleIndex& index, int64_t first_pts, int64_t last_pts);

// A ByteSource named `url` over `path`'s bytes: its header pieces, plus `media` when given.
std::shared_ptr<const av::ByteSource> make_source(const std::string& url, const std::string& path,
                                                  Backing backing, const EpisodeRange* media = nullptr);

}  // namespace lrs::test
