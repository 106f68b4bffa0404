// ColourKernel: launches the 4:2:0 -> planar RGB kernels of nv12_to_rgb.cu (semi-planar NV12/P010
// from NVDEC, planar I420/yuv420p10 from the hybrid path; embedded fatbin, loaded per context with
// cuModuleLoadData; Note [Driver API only]).
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

// A planar 4:2:0 picture in device memory (Note [Hybrid path] in hybrid_decoder.h).
struct PlanarSurface {
  CUdeviceptr y = 0;
  CUdeviceptr cb = 0;
  CUdeviceptr cr = 0;
  int64_t luma_pitch = 0;    // bytes
  int64_t chroma_pitch = 0;  // bytes
  int bit_depth = 8;         // 8 (I420) or 10/12 (16-bit words, value in the low bits)
};

// What the kernels write: uint8, or float32 = uint8 / 255 (colour_math.h to_unit_float).
enum class OutputType : int { kUint8 = 0, kFloat32 = 1 };

class ColourKernel {
 public:
  ColourKernel();  // the context to load into must be current; throws Error
  ~ColourKernel();
  ColourKernel(const ColourKernel&) = delete;
  ColourKernel& operator=(const ColourKernel&) = delete;

  // Writes [3, crop.height, crop.width] of `type` to `out`, ordered on `stream`.
  void launch(const Yuv420Surface& src, const CropWindow& crop, const ColourParams& params,
              ChromaUpsampling upsampling, OutputType type, CUdeviceptr out, CUstream stream) const;
  void launch(const PlanarSurface& src, const CropWindow& crop, const ColourParams& params,
              ChromaUpsampling upsampling, OutputType type, CUdeviceptr out, CUstream stream) const;

 private:
  void run(CUfunction f, const CropWindow& crop, void** args, CUstream stream) const;

  CUmodule module_ = nullptr;
  CUfunction semi_planar_u8_ = nullptr;
  CUfunction semi_planar_f32_ = nullptr;
  CUfunction planar_u8_ = nullptr;
  CUfunction planar_f32_ = nullptr;
};

}  // namespace lrs::cuda
