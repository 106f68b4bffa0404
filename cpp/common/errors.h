// Typed exceptions of the core. Every message names the file (or object) it is about.
// Mapped to Python exceptions once, in bindings/module.cpp:
//   FileNotFound -> FileNotFoundError, InvalidInput -> ValueError,
//   FrameTimestampError -> lerobot_stream.FrameTimestampError (a ValueError),
//   OutOfRange -> IndexError, CudaUnavailable -> RuntimeError, Error -> RuntimeError.
// Header-only; thread-safe (no state).
#pragma once

#include <stdexcept>
#include <string>

namespace lrs {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The file does not exist or cannot be opened for reading.
struct FileNotFound : Error {
  using Error::Error;
};

// The input is malformed: not a video, corrupt, truncated, unsupported codec, bad arguments.
struct InvalidInput : Error {
  using Error::Error;
};

// A requested timestamp has no frame within the tolerance (LeRobot's FrameTimestampError).
struct FrameTimestampError : InvalidInput {
  using InvalidInput::InvalidInput;
};

// An index or position outside the valid range (e.g. an episode not in the dataset).
struct OutOfRange : Error {
  using Error::Error;
};

// CUDA / NVDEC was asked for but cannot be used here (no driver, no libnvcuvid, no device).
struct CudaUnavailable : Error {
  using Error::Error;
};

}  // namespace lrs
