// CUDA kernels: NV12 (8-bit) / P010-P016 (16-bit words) 4:2:0 surfaces -> planar RGB [3, H, W],
// uint8 or float in [0, 1], cropped to the display window, written straight into the output
// tensor's memory. The math is colour_math.h (Note [Colour conversion parity]); this file only maps
// threads to pixels. Compiled to an embedded fatbin and launched through the driver API
// (Note [Driver API only]); extern "C" keeps the names cuModuleGetFunction looks up.
#include "cuda/colour_math.h"

namespace {

using lrs::cuda::ChromaUpsampling;
using lrs::cuda::ColourParams;
using lrs::cuda::CropWindow;
using lrs::cuda::Rgb;

template <typename Sample>
__device__ Rgb pixel(const ColourParams& p, const uint8_t* luma, const uint8_t* chroma, long long pitch,
                     const CropWindow& crop, int upsampling, int shift, int x, int y) {
  return lrs::cuda::semi_planar_pixel_to_rgb<Sample>(p, luma, chroma, pitch, crop,
                                                     static_cast<ChromaUpsampling>(upsampling), shift, x, y);
}

}  // namespace

// One thread per output pixel; grid (ceil(W / 32), ceil(H / 8)).
extern "C" __global__ void lrs_yuv420_to_rgb_u8(const uint8_t* luma, const uint8_t* chroma, long long pitch,
                                                CropWindow crop, ColourParams params, int upsampling,
                                                int sample_bytes, int shift, uint8_t* out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= crop.width || y >= crop.height) return;
  const Rgb c = sample_bytes == 2 ? pixel<uint16_t>(params, luma, chroma, pitch, crop, upsampling, shift, x, y)
                                  : pixel<uint8_t>(params, luma, chroma, pitch, crop, upsampling, shift, x, y);
  const long long plane = static_cast<long long>(crop.width) * crop.height;
  const long long i = static_cast<long long>(y) * crop.width + x;
  out[i] = lrs::cuda::to_u8(c.r);
  out[plane + i] = lrs::cuda::to_u8(c.g);
  out[2 * plane + i] = lrs::cuda::to_u8(c.b);
}

extern "C" __global__ void lrs_yuv420_to_rgb_f32(const uint8_t* luma, const uint8_t* chroma, long long pitch,
                                                 CropWindow crop, ColourParams params, int upsampling,
                                                 int sample_bytes, int shift, float* out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= crop.width || y >= crop.height) return;
  const Rgb c = sample_bytes == 2 ? pixel<uint16_t>(params, luma, chroma, pitch, crop, upsampling, shift, x, y)
                                  : pixel<uint8_t>(params, luma, chroma, pitch, crop, upsampling, shift, x, y);
  const long long plane = static_cast<long long>(crop.width) * crop.height;
  const long long i = static_cast<long long>(y) * crop.width + x;
  out[i] = c.r;
  out[plane + i] = c.g;
  out[2 * plane + i] = c.b;
}
