// Depth-map frames: decodes the frames of a CpuVideoDecoder nearest to requested timestamps as
// 12-bit gray codes [T, 1, H, W], the way lerobot 0.6.1 reads depth videos (PyAV's
// frame.to_ndarray(format="gray12le"), see Note [Depth-map videos]).
//
// Owns nothing but the batches it returns (GrayBatch owns its buffer). Not thread-safe: it drives
// the decoder it is given, which one caller uses at a time (the DecoderCache's lease).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "av/cpu_decoder.h"

namespace lrs::av {

// Note [Depth-map videos]
// ~~~~~~~~~~~~~~~~~~~~~~~
// lerobot 0.6.1 quantizes depth to 12-bit codes (log or linear, DepthEncoderConfig) and encodes
// them as gray12le with lossless HEVC (libx265 Main 12, `x265-params=lossless=1`). Reading, it
// decodes with PyAV and takes `frame.to_ndarray(format="gray12le")`: the decoder's own gray12le
// plane as is, or swscale's conversion (SWS_BILINEAR, default colour details) from any other
// format, then dequantizes in torch (lerobot_stream.depth). We produce the same codes: the plane
// is copied when the codec outputs gray12le, otherwise one cached SwsContext converts exactly as
// PyAV's reformatter does. Codes are at most 4095, so they travel as int16 (every torch since 1.x
// imports int16 DLPack; uint16 needs torch >= 2.3).

// Owning, contiguous 12-bit gray codes [T, 1, H, W] (int16, values 0..4095) on the host.
struct GrayBatch {
  int64_t num_frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  int16_t* data = nullptr;       // points into the storage held by `owner`
  std::shared_ptr<void> owner;

  int64_t frame_values() const { return height * width; }
};

// Converts decoded frames to gray12 codes; keeps one SwsContext for non-gray12le inputs.
class Gray12Converter {
 public:
  // Writes frame->height rows of frame->width codes to `out`. Throws InvalidInput naming `path`
  // when the pixel format cannot be converted.
  void convert(const AVFrame& frame, int16_t* out, const std::string& path);

 private:
  UniqueSwsContext sws_;
  int src_format_ = -1;
  int src_width_ = 0;
  int src_height_ = 0;
  std::vector<uint8_t> staging_;  // swscale's padded output, reused while the size stays
};

// The frames of `decoder` nearest to `timestamps_s`, in request order, as gray12 codes (Note
// [Depth-map videos]). Each distinct frame is decoded once, in presentation order. Throws
// FrameTimestampError (no frame within tolerance_s) or InvalidInput, naming the file.
GrayBatch get_gray12_frames_at(CpuVideoDecoder& decoder, std::span<const double> timestamps_s,
                               double tolerance_s);

}  // namespace lrs::av
