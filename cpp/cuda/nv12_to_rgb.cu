// CUDA kernels: 4:2:0 pictures -> planar RGB [3, H, W], uint8 or float (uint8 / 255), cropped to the
// display window, written straight into the output tensor's memory. Two source layouts:
//   * semi-planar NV12 (8-bit) / P010-P016 (16-bit words, value in the high bits): NVDEC surfaces;
//   * planar I420 (8-bit) / yuv420p10 (16-bit words, value in the low bits): the hybrid path's
//     staged dav1d pictures (Note [Hybrid path] in hybrid_decoder.h).
// The math is colour_math.h (Note [Colour conversion parity]); this file only maps threads to
// pixels. Compiled to an embedded fatbin and launched through the driver API (Note [Driver API
// only]); extern "C" keeps the names cuModuleGetFunction looks up.
#include "cuda/colour_math.h"

namespace {

using lrs::cuda::ChromaUpsampling;
using lrs::cuda::ColourParams;
using lrs::cuda::CropWindow;
using lrs::cuda::PlanarYuv;
using lrs::cuda::Rgb;

__device__ uint8_t store_value(uint8_t*, float x01) { return lrs::cuda::to_u8(x01); }
__device__ float store_value(float*, float x01) { return lrs::cuda::to_unit_float(x01); }

template <typename Out>
__device__ void store_rgb(const CropWindow& crop, int x, int y, const Rgb& c, Out* out) {
  const long long plane = static_cast<long long>(crop.width) * crop.height;
  const long long i = static_cast<long long>(y) * crop.width + x;
  out[i] = store_value(out, c.r);
  out[plane + i] = store_value(out, c.g);
  out[2 * plane + i] = store_value(out, c.b);
}

// One thread per output pixel; grid (ceil(W / 32), ceil(H / 8)).
template <typename Out>
__device__ void convert_semi_planar(const uint8_t* luma, const uint8_t* chroma, long long pitch, const CropWindow& crop,
                                    const ColourParams& params, int upsampling, int sample_bytes, int shift, Out* out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= crop.width || y >= crop.height) return;
  const auto up = static_cast<ChromaUpsampling>(upsampling);
  const Rgb c = sample_bytes == 2
                    ? lrs::cuda::semi_planar_pixel_to_rgb<uint16_t>(params, luma, chroma, pitch, crop, up, shift, x, y)
                    : lrs::cuda::semi_planar_pixel_to_rgb<uint8_t>(params, luma, chroma, pitch, crop, up, shift, x, y);
  store_rgb(crop, x, y, c, out);
}

template <typename Out>
__device__ void convert_planar(const PlanarYuv& src, const CropWindow& crop, const ColourParams& params,
                               int upsampling, int sample_bytes, Out* out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= crop.width || y >= crop.height) return;
  const auto up = static_cast<ChromaUpsampling>(upsampling);
  const Rgb c = sample_bytes == 2 ? lrs::cuda::planar_pixel_to_rgb<uint16_t>(params, src, crop, up, 0, x, y)
                                  : lrs::cuda::planar_pixel_to_rgb<uint8_t>(params, src, crop, up, 0, x, y);
  store_rgb(crop, x, y, c, out);
}

}  // namespace

extern "C" __global__ void lrs_yuv420_to_rgb_u8(const uint8_t* luma, const uint8_t* chroma, long long pitch,
                                                CropWindow crop, ColourParams params, int upsampling,
                                                int sample_bytes, int shift, uint8_t* out) {
  convert_semi_planar(luma, chroma, pitch, crop, params, upsampling, sample_bytes, shift, out);
}

extern "C" __global__ void lrs_yuv420_to_rgb_f32(const uint8_t* luma, const uint8_t* chroma, long long pitch,
                                                 CropWindow crop, ColourParams params, int upsampling,
                                                 int sample_bytes, int shift, float* out) {
  convert_semi_planar(luma, chroma, pitch, crop, params, upsampling, sample_bytes, shift, out);
}

extern "C" __global__ void lrs_yuv420p_to_rgb_u8(PlanarYuv src, CropWindow crop, ColourParams params, int upsampling,
                                                 int sample_bytes, uint8_t* out) {
  convert_planar(src, crop, params, upsampling, sample_bytes, out);
}

extern "C" __global__ void lrs_yuv420p_to_rgb_f32(PlanarYuv src, CropWindow crop, ColourParams params,
                                                  int upsampling, int sample_bytes, float* out) {
  convert_planar(src, crop, params, upsampling, sample_bytes, out);
}
