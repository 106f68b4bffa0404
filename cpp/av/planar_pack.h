// Row kernels that split packed RGB24 pixels (swscale's output, Note [RGB conversion] in
// av/rgb_converter.h) into the R, G and B planes of a CHW frame, as uint8 or as float32 in [0, 1]
// (Note [Float frames] in decode/video_decoder.h): one pass, no intermediate buffer.
//
// Stateless, thread-safe. Built with AVX2 and baseline clones on x86-64 (the loader picks one at
// run time); both clones compute the same values (the float clone divides, never multiplies by a
// reciprocal).
#pragma once

#include <cstdint>

namespace lrs::av {

// r[x], g[x], b[x] = rgb[3x], rgb[3x + 1], rgb[3x + 2] for x < width.
void unpack_rgb24_row(const uint8_t* rgb, int width, uint8_t* r, uint8_t* g, uint8_t* b);

// The same values as float(v) / 255.0f: bitwise equal to torch's `uint8_tensor / 255`.
void unpack_rgb24_row(const uint8_t* rgb, int width, float* r, float* g, float* b);

}  // namespace lrs::av
