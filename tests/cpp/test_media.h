// Test clips for the C++ tests, encoded with the system's libav encoders (no fixture files).
//
// Every frame carries its index in its pixels, robust to lossy coding: the left half is flat grey
// at level (i % 29), the right half at level (i / 29) % 29, levels 7 luma steps apart. A damaged-file
// corpus is derived from a good clip. Thread-safe: clips are written to a temporary name and
// renamed, so concurrent test processes never see a half-written file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lrs::test {

struct ClipSpec {
  std::string encoder = "libx264";  // libx264, libx265, libsvtav1
  int width = 64;
  int height = 64;
  int fps = 30;
  int num_frames = 60;
  int gop = 10;
  int max_b_frames = 2;  // ignored by encoders without B-frames
  // Chroma gradients and edges on top of the grey halves, for colour-conversion tests (the RGB
  // is then not grey: read_frame_index does not apply).
  bool coloured = false;
  bool gray12 = false;   // libx265 only: lossless gray12le, pixel (x, y) of frame i = gray12_code(i, x, y)
};

// The 12-bit code a gray12 clip stores at (x, y) of frame `index` (lossless, so decoded exactly).
inline uint16_t gray12_code(int index, int x, int y) {
  return static_cast<uint16_t>((index * 257 + x * 7 + y * 31) % 4096);
}

// Path of the clip for `spec` (encoded on first use, then reused). Its moov is at the end.
std::string clip_path(const ClipSpec& spec);

// A file of several episodes as LeRobot writes them: each episode encoded on its own (so it starts
// on a keyframe), then all stream-copied back to back into one mp4 stream; frame indices (in the
// pixels) and timestamps run on across episodes. `clip.num_frames` is ignored.
struct EpisodesSpec {
  ClipSpec clip;
  std::vector<int> episode_frames = {20, 15, 25};
  bool faststart = true;  // moov before mdat (LeRobot's layout); false: moov at the end
};
std::string episodes_clip_path(const EpisodesSpec& spec);

// The frame index encoded in a decoded RGB frame (CHW planes of height*width bytes), or -1 when the
// pixels carry no valid index.
int64_t read_frame_index(const uint8_t* rgb_chw, int height, int width);

// Writes `bytes` to `name` under the test data directory and returns the path.
std::string write_file(const std::string& name, const std::string& bytes);

// The whole content of a file.
std::string read_file(const std::string& path);

}  // namespace lrs::test
