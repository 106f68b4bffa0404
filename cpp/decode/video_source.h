// VideoSource: what a decoder opens, a local video file (a path) or the fetched byte ranges of a
// remote one (an av::ByteSource; Note [Fetched byte ranges] in av/byte_source.h), with the name
// errors use and the key the DecoderCache files it under.
//
// Owns a path string or shares the (immutable) ByteSource: cheap to copy, thread-safe to share.
#pragma once

#include <memory>
#include <string>

#include "av/byte_source.h"

namespace lrs {

class VideoSource {
 public:
  VideoSource(std::string path) : path_(std::move(path)) {}           // NOLINT: implicit by design
  VideoSource(const char* path) : path_(path) {}                      // NOLINT
  VideoSource(std::shared_ptr<const av::ByteSource> bytes)            // NOLINT
      : path_(bytes ? bytes->name() : std::string()), bytes_(std::move(bytes)) {}
  VideoSource(std::shared_ptr<av::ByteSource> bytes)                  // NOLINT
      : VideoSource(std::shared_ptr<const av::ByteSource>(std::move(bytes))) {}

  // The path, or the remote file's URL: what every error message names.
  const std::string& name() const { return path_; }
  // The DecoderCache key: the path, or ByteSource::key() (URL + media range).
  const std::string& key() const { return bytes_ ? bytes_->key() : path_; }
  // The fetched byte ranges, or null for a local file.
  const std::shared_ptr<const av::ByteSource>& bytes() const { return bytes_; }

 private:
  std::string path_;
  std::shared_ptr<const av::ByteSource> bytes_;
};

}  // namespace lrs
