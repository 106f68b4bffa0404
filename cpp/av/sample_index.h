// scan_sample_index: the sample table of a remote mp4 from its header bytes alone, as libav's own
// demuxer sees it (edit lists, composition offsets, B-frame reordering): per sample in decode (file)
// order its byte position and size, pts, dts, keyframe and discard flags. Episode byte ranges computed from
// it agree with what the decoder will read (Note [Episode segments] in av/demuxer.h).
//
// Owns nothing after it returns; reentrant (each call opens its own demuxer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "av/byte_source.h"

namespace lrs::av {

struct SampleIndex {
  std::vector<int64_t> pos;   // first byte of each sample in the file
  std::vector<int64_t> size;  // bytes
  std::vector<int64_t> pts;   // stream time base units
  std::vector<int64_t> dts;
  std::vector<uint8_t> key;   // 1 for keyframes (sync samples)
  // 1 for samples outside the edit list: needed to decode others, never shown (Note [Discarded
  // samples] in av/frame_table.h).
  std::vector<uint8_t> discard;
  int time_base_num = 0;
  int time_base_den = 1;
  std::string codec;  // libav codec name: "av1", "h264", "hevc", ...
  int width = 0;
  int height = 0;
};

// Opens `header_source`'s pieces with unfetched bytes read as zeros (no sample data is needed),
// without packet parsing or avformat_find_stream_info, and lists every sample of the video
// stream. Throws InvalidInput naming the source when the header is not a readable mp4 with a
// video stream (e.g. truncated before the end of its moov).
SampleIndex scan_sample_index(const ByteSource& header_source);

}  // namespace lrs::av
