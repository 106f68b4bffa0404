// ColourKernel: launches the NV12/P010 -> planar RGB kernels of nv12_to_rgb.cu (embedded fatbin,
// loaded per context with cuModuleLoadData; Note [Driver API only]).
// Owns the loaded module of one context. Not thread-safe for construction; launch() may be called
// from any thread that has the context current (launches are stream-ordered).
#pragma once

#include <cstdint>

#include "cuda/colour_math.h"
#include "cuda/cuda_api.h"

namespace lrs::cuda {

struct Yuv420Surface {
  CUdeviceptr luma = 0;
  CUdeviceptr chroma = 0;  // interleaved Cb, Cr rows
  int64_t pitch = 0;       // bytes per row, both planes
  int bit_depth = 8;       // 8 (NV12) or 10/12 (P010/P016: 16-bit words, value in the high bits)
};

class ColourKernel {
 public:
  ColourKernel();  // the context to load into must be current; throws Error
  ~ColourKernel();
  ColourKernel(const ColourKernel&) = delete;
  ColourKernel& operator=(const ColourKernel&) = delete;

  // Writes [3, crop.height, crop.width] uint8 (or float in [0, 1] when `as_float`) to `out`.
  void launch(const Yuv420Surface& src, const CropWindow& crop, const ColourParams& params,
              ChromaUpsampling upsampling, bool as_float, CUdeviceptr out, CUstream stream) const;

 private:
  CUmodule module_ = nullptr;
  CUfunction to_u8_ = nullptr;
  CUfunction to_f32_ = nullptr;
};

}  // namespace lrs::cuda
