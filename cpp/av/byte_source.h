// ByteSource: a virtual view of a remote video file (named by its URL) of which only some byte
// ranges were fetched: the header (ftyp + moov + the mdat box header, and a moov at the tail for a
// file that is not faststart) and at most one contiguous media range holding one episode's samples.
// ByteReader: a libav AVIOContext that serves a ByteSource to libavformat's demuxer.
//
// ByteSource owns its piece list and shares ownership of in-memory backings; it is immutable after
// construction, so one source may be read by several decoders on several threads. A ByteReader
// owns its AVIOContext, its buffer and the file descriptors of file-backed pieces: NOT
// thread-safe (one demuxer reads it). See Note [Fetched byte ranges].
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/errors.h"

extern "C" {
struct AVIOContext;
}

namespace lrs::av {

// Note [Fetched byte ranges]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Remote episodes are decoded from partial files: libavformat's mov demuxer reads the sample table
// from the header pieces and only the samples it is asked for from the media range; nothing is
// rewritten. The reader's policy makes every read explicit:
//   - bytes inside a piece are served (a read crossing a piece's end is served up to that end);
//   - a read at or after media_end that no piece covers is end of file (the episode is the whole
//     stream as far as the demuxer can tell), up to the first header piece after the media range
//     (a moov at the tail): past that, a read is a truncated header;
//   - any other read is a bug (ours, or an index that disagrees with the bytes) and fails with
//     InvalidInput naming the URL and the byte range, never papered over with invented bytes;
//   - except under ReadPolicy::kZeroFill, used by the sample-index scan (sample_index.h) only,
//     which serves zeros for every byte not fetched: the scan wants positions and timestamps, not
//     sample data. The scan parses the header under the strict policy and switches to zero-fill
//     only for its packet reads, so a truncated header is an error, never a table of zeros.
// The AVIOContext runs in libav's `direct` mode: packet reads go straight to our callback and
// seeks call our seek callback instead of reading through gaps (avio_seek's short-seek path would
// otherwise read the bytes between the header and the media range). One libav habit remains: a
// short seek backwards (before the buffer's start, by less than half the buffered bytes) first
// seeks to half a buffer before the buffer's start, refills, then (direct mode) seeks again to the
// target, discarding what it read. The seek callback recognises that read-behind position from the
// AVIOContext's buffer state, and only the one read that follows it may read unfetched bytes (as
// zeros, never consumed). Measured on a file whose moov follows the mdat: the moov parser's
// backward seeks read behind into the mdat.

// Where a piece's bytes are: a local file (path + offset), or memory kept alive by `owner`.
struct PieceBacking {
  std::string path;                   // non-empty: a local file
  std::shared_ptr<const void> owner;  // memory backing: keeps `data` alive
  const char* data = nullptr;         // memory backing: the piece's first byte is data[offset]
  int64_t data_size = 0;              // bytes at `data`
  int64_t offset = 0;                 // offset of the piece's first byte in the file or in `data`

  static PieceBacking file(std::string path, int64_t offset);
  static PieceBacking memory(std::shared_ptr<const std::string> bytes, int64_t offset);
  bool is_memory() const { return path.empty(); }
};

struct BytePiece {
  int64_t file_offset = 0;  // where the piece lies in the remote file
  int64_t length = 0;
  PieceBacking backing;
};

// Shared ownership (std::shared_ptr, also from Python): decoders keep their source alive.
class ByteSource : public std::enable_shared_from_this<ByteSource> {
 public:
  // Pieces with media_begin <= file_offset < media_end are media (they must cover
  // [media_begin, media_end) exactly, adjacent), the rest header. media_begin = media_end = -1:
  // no media range (a header-only source, or a file whose pieces cover all of it). start_pts: the
  // pts (stream time base) of the keyframe sample at media_begin, required with a media range.
  // Throws InvalidInput naming `name` on overlapping or empty pieces, pieces past `size`, a media
  // range not covered by pieces, a missing start_pts, or a memory backing too short; FileNotFound
  // when a backing file is missing, InvalidInput when it is shorter than its piece.
  ByteSource(std::string name, int64_t size, std::vector<BytePiece> pieces, int64_t media_begin = -1,
             int64_t media_end = -1, std::optional<int64_t> start_pts = std::nullopt);

  const std::string& name() const { return name_; }
  int64_t size() const { return size_; }
  // A stable string naming this source's content, for caches: "<name>#<media_begin>-<media_end>"
  // ("<name>#0-<size>" without a media range).
  const std::string& key() const { return key_; }
  bool has_media() const { return media_begin_ >= 0; }
  int64_t media_begin() const { return media_begin_; }
  int64_t media_end() const { return media_end_; }
  std::optional<int64_t> start_pts() const { return start_pts_; }
  const std::vector<BytePiece>& pieces() const { return pieces_; }  // sorted by file_offset
  // Bytes of the media range held in memory (the per-episode part a decoder keeps alive).
  int64_t media_memory_bytes() const { return media_memory_bytes_; }

  // The piece holding byte `pos`, or nullptr.
  const BytePiece* piece_at(int64_t pos) const;
  // The first piece starting after `pos`, or nullptr.
  const BytePiece* piece_after(int64_t pos) const;
  // "header [a, b) [c, d), media [e, f)": what was fetched, for error messages.
  std::string describe_ranges() const;

 private:
  std::string name_;
  int64_t size_ = 0;
  std::vector<BytePiece> pieces_;
  int64_t media_begin_ = -1;
  int64_t media_end_ = -1;
  std::optional<int64_t> start_pts_;
  std::string key_;
  int64_t media_memory_bytes_ = 0;
  int64_t tail_header_begin_ = -1;  // the first header piece after the media range, or -1

  friend class ByteReader;
};

// An open file descriptor, closed on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() { const int fd = fd_; fd_ = -1; return fd; }

 private:
  int fd_;
};

enum class ReadPolicy {
  kStrict,    // Note [Fetched byte ranges]: unfetched bytes are EOF after the media range, else an error
  kZeroFill,  // unfetched bytes read as zeros (the sample-index scan only)
};

// An AVIOContext over a ByteSource (Note [Fetched byte ranges]). Callbacks never let an exception
// cross into C: the first error is stored, the callback returns an AVERROR, and the caller of the
// libav function calls rethrow_if_failed() after it returns.
class ByteReader {
 public:
  ByteReader(std::shared_ptr<const ByteSource> source, ReadPolicy policy);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  AVIOContext* context() const { return context_; }
  void set_policy(ReadPolicy policy) { policy_ = policy; }
  const ByteSource& source() const { return *source_; }
  // Rethrows the first error a callback stored (and clears it), or the error of read-behind zeros
  // that no seek discarded.
  void rethrow_if_failed();
  bool failed() const { return static_cast<bool>(error_) || behind_end_ > 0; }

 private:
  static int read_callback(void* opaque, uint8_t* buffer, int size);
  static int64_t seek_callback(void* opaque, int64_t offset, int whence);
  int read(uint8_t* buffer, int size);
  void read_backing(const BytePiece& piece, int64_t pos, uint8_t* out, int64_t n);
  InvalidInput outside_error(int64_t begin, int64_t end) const;

  std::shared_ptr<const ByteSource> source_;
  ReadPolicy policy_;
  AVIOContext* context_ = nullptr;
  int64_t position_ = 0;
  std::vector<std::pair<std::string, UniqueFd>> files_;  // backing files opened so far
  // Note [Fetched byte ranges]: the next read is libav's read-behind; zeros it was served.
  bool read_behind_ = false;
  int64_t behind_begin_ = 0;
  int64_t behind_end_ = 0;
  std::exception_ptr error_;
};

}  // namespace lrs::av
