// PlanarYuvLayout / pack_planar_yuv: a decoded 4:2:0 picture's three planes copied tightly, one after
// the other (Y, then Cb, then Cr; rows without padding), which is how the hybrid path stages a
// dav1d picture in pinned host memory before one copy to the GPU: 1.5 bytes per pixel for 8-bit
// (Note [Hybrid path] in cuda/hybrid_decoder.h). No CUDA here: the CPU tests check this layout
// with the colour math the GPU kernel runs.
// Owns nothing; thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>

extern "C" {
struct AVFrame;
}

namespace lrs::av {

struct PlanarYuvLayout {
  int width = 0;
  int height = 0;
  int bit_depth = 8;          // 8: one byte per sample; 9..16: 16-bit words, value in the low bits
  int64_t luma_pitch = 0;     // bytes per Y row
  int64_t chroma_pitch = 0;   // bytes per Cb / Cr row
  int64_t chroma_height = 0;  // rows per Cb / Cr plane
  int64_t cb_offset = 0;      // byte offset of the Cb plane (Y starts at 0)
  int64_t cr_offset = 0;
  int64_t total_bytes = 0;
};

// The layout for a width x height 4:2:0 picture of `bit_depth` bits (chroma (w+1)/2 x (h+1)/2).
PlanarYuvLayout planar_yuv_layout(int width, int height, int bit_depth);

// Bit depth of a planar 4:2:0 software pixel format (yuv420p, yuvj420p, yuv420p10le, ...), or 0
// when `pixel_format` (an AVPixelFormat) is anything else.
int planar_420_bit_depth(int pixel_format);

// Copies `frame`'s planes into `out` (layout.total_bytes). Throws InvalidInput naming `path` when
// the frame is not planar 4:2:0 of the layout's size and depth.
void pack_planar_yuv(const AVFrame* frame, const PlanarYuvLayout& layout, uint8_t* out, const std::string& path);

}  // namespace lrs::av
