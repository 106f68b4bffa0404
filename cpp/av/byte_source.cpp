#include "av/byte_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>

extern "C" {
#include <libavformat/avio.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>
}

#include "common/errors.h"

namespace lrs::av {
namespace {

constexpr int kAvioBufferSize = 32 * 1024;

std::string range_text(int64_t begin, int64_t end) {
  std::ostringstream out;  // (GCC 12 warns falsely, -Wrestrict, on the "[" + std::string chain)
  out << "[" << begin << ", " << end << ")";
  return out.str();
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

PieceBacking PieceBacking::file(std::string path, int64_t offset) {
  PieceBacking b;
  b.path = std::move(path);
  b.offset = offset;
  return b;
}

PieceBacking PieceBacking::memory(std::shared_ptr<const std::string> bytes, int64_t offset) {
  PieceBacking b;
  b.data = bytes ? bytes->data() : nullptr;
  b.data_size = bytes ? static_cast<int64_t>(bytes->size()) : 0;
  b.owner = std::move(bytes);
  b.offset = offset;
  return b;
}

ByteSource::ByteSource(std::string name, int64_t size, std::vector<BytePiece> pieces, int64_t media_begin,
                       int64_t media_end, std::optional<int64_t> start_pts)
    : name_(std::move(name)),
      size_(size),
      pieces_(std::move(pieces)),
      media_begin_(media_begin),
      media_end_(media_end),
      start_pts_(start_pts) {
  auto fail = [&](const std::string& what) { throw InvalidInput(name_ + ": " + what); };
  if (size_ <= 0) fail("the file is empty (size " + std::to_string(size_) + "), not a video");
  std::sort(pieces_.begin(), pieces_.end(),
            [](const BytePiece& a, const BytePiece& b) { return a.file_offset < b.file_offset; });
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const BytePiece& p = pieces_[i];
    const std::string what = "piece " + range_text(p.file_offset, p.file_offset + p.length);
    if (p.file_offset < 0 || p.length <= 0) fail(what + " must have file_offset >= 0 and length > 0");
    if (p.length > size_ - p.file_offset) fail(what + " lies past the end of the file (" + std::to_string(size_) + " bytes)");
    if (i > 0 && pieces_[i - 1].file_offset + pieces_[i - 1].length > p.file_offset) {
      fail(what + " overlaps piece " +
           range_text(pieces_[i - 1].file_offset, pieces_[i - 1].file_offset + pieces_[i - 1].length));
    }
    if (p.backing.offset < 0) fail(what + " has a negative backing offset");
    if (p.backing.is_memory()) {
      if (p.backing.data == nullptr || p.backing.offset > p.backing.data_size - p.length) {
        fail(what + " needs bytes " + range_text(p.backing.offset, p.backing.offset + p.length) +
             " of its memory backing, which holds " + std::to_string(p.backing.data_size));
      }
    } else {
      std::error_code ec;
      const auto status = std::filesystem::status(p.backing.path, ec);
      if (ec || !std::filesystem::exists(status)) {
        throw FileNotFound(name_ + ": " + what + ": backing file " + p.backing.path + " does not exist");
      }
      if (!std::filesystem::is_regular_file(status)) fail(what + ": backing " + p.backing.path + " is not a file");
      const auto bytes = static_cast<int64_t>(std::filesystem::file_size(p.backing.path, ec));
      if (ec || p.backing.offset > bytes - p.length) {
        fail(what + " needs bytes " + range_text(p.backing.offset, p.backing.offset + p.length) + " of " +
             p.backing.path + ", which holds " + std::to_string(bytes) + " (truncated download?)");
      }
    }
  }
  const bool media = media_begin_ != -1 || media_end_ != -1;
  if (media) {
    if (media_begin_ < 0 || media_end_ <= media_begin_ || media_end_ > size_) {
      fail("media range " + range_text(media_begin_, media_end_) + " must satisfy 0 <= begin < end <= size (" +
           std::to_string(size_) + ")");
    }
    // The media pieces must tile [media_begin, media_end) exactly.
    int64_t covered = media_begin_;
    for (const BytePiece& p : pieces_) {
      const int64_t end = p.file_offset + p.length;
      if (end <= media_begin_ || p.file_offset >= media_end_) continue;
      if (p.file_offset < media_begin_) fail("header piece " + range_text(p.file_offset, end) + " overlaps the media range");
      if (p.file_offset != covered) break;
      if (end > media_end_) fail("media piece " + range_text(p.file_offset, end) + " runs past media_end " + std::to_string(media_end_));
      covered = end;
      if (p.backing.is_memory()) media_memory_bytes_ += p.length;
    }
    if (covered != media_end_) {
      fail("the pieces do not cover the media range " + range_text(media_begin_, media_end_) + ": bytes from " +
           std::to_string(covered) + " are missing");
    }
    if (!start_pts_) fail("a media range needs start_pts (the pts of its first sample, a keyframe)");
    for (const BytePiece& p : pieces_) {
      if (p.file_offset >= media_end_) {
        tail_header_begin_ = p.file_offset;
        break;
      }
    }
  } else if (start_pts_) {
    fail("start_pts is given but there is no media range (media_begin/media_end)");
  }
  key_ = name_ + "#" + (media ? std::to_string(media_begin_) + "-" + std::to_string(media_end_)
                               : "0-" + std::to_string(size_));
}

const BytePiece* ByteSource::piece_at(int64_t pos) const {
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), pos,
                             [](int64_t p, const BytePiece& piece) { return p < piece.file_offset; });
  if (it == pieces_.begin()) return nullptr;
  --it;
  return pos < it->file_offset + it->length ? &*it : nullptr;
}

const BytePiece* ByteSource::piece_after(int64_t pos) const {
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), pos,
                             [](int64_t p, const BytePiece& piece) { return p < piece.file_offset; });
  return it == pieces_.end() ? nullptr : &*it;
}

std::string ByteSource::describe_ranges() const {
  std::ostringstream out;
  out << "fetched: header";
  bool any_header = false;
  for (const BytePiece& p : pieces_) {
    const bool is_media = has_media() && p.file_offset >= media_begin_ && p.file_offset < media_end_;
    if (!is_media) {
      out << " " << range_text(p.file_offset, p.file_offset + p.length);
      any_header = true;
    }
  }
  if (!any_header) out << " (none)";
  if (has_media()) out << ", media " << range_text(media_begin_, media_end_);
  out << " of " << size_ << " bytes";
  return out.str();
}

ByteReader::ByteReader(std::shared_ptr<const ByteSource> source, ReadPolicy policy)
    : source_(std::move(source)), policy_(policy) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(kAvioBufferSize));
  if (buffer == nullptr) throw std::bad_alloc();
  context_ = avio_alloc_context(buffer, kAvioBufferSize, 0, this, &ByteReader::read_callback, nullptr,
                                &ByteReader::seek_callback);
  if (context_ == nullptr) {
    av_free(buffer);
    throw std::bad_alloc();
  }
  context_->direct = 1;  // Note [Fetched byte ranges]: no read-through of gaps on seeks
}

ByteReader::~ByteReader() {
  if (context_ != nullptr) {
    av_freep(&context_->buffer);
    avio_context_free(&context_);
  }
}

int ByteReader::read_callback(void* opaque, uint8_t* buffer, int size) {
  auto* self = static_cast<ByteReader*>(opaque);
  try {
    return self->read(buffer, size);
  } catch (...) {
    if (!self->error_) self->error_ = std::current_exception();
    return AVERROR(EIO);
  }
}

int64_t ByteReader::seek_callback(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<ByteReader*>(opaque);
  const int64_t size = self->source_->size();
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size;
  int64_t target = offset;
  if (whence == SEEK_CUR) {
    target = self->position_ + offset;
  } else if (whence == SEEK_END) {
    target = size + offset;
  } else if (whence != SEEK_SET) {
    return AVERROR(EINVAL);
  }
  if (target < 0) return AVERROR(EINVAL);
  // Note [Fetched byte ranges]: zeros served to a read-behind must not be what the demuxer wants.
  if (self->behind_end_ > 0) {
    if (target >= self->behind_begin_ && target < self->behind_end_ && !self->error_) {
      self->error_ = std::make_exception_ptr(self->outside_error(self->behind_begin_, self->behind_end_));
    }
    self->behind_begin_ = self->behind_end_ = 0;
  }
  // avio_seek's read-behind lands half the buffered bytes before the buffer's start
  // (libavformat/aviobuf.c, avio_seek); in direct mode the seek that follows discards it.
  const AVIOContext* ctx = self->context_;
  const int64_t buffered = ctx->buf_end - ctx->buffer;
  const int64_t buffer_start = ctx->pos - buffered;
  self->read_behind_ = !ctx->write_flag && buffered > 0 && target < buffer_start &&
                       target == buffer_start - std::min<int64_t>(buffered >> 1, buffer_start);
  self->position_ = target;
  return target;
}

InvalidInput ByteReader::outside_error(int64_t begin, int64_t end) const {
  return InvalidInput(source_->name() + ": the demuxer read bytes " + range_text(begin, end) +
                      " outside the fetched ranges (" + source_->describe_ranges() +
                      "): the byte ranges do not match the file's sample index");
}

void ByteReader::rethrow_if_failed() {
  if (behind_end_ > 0 && !error_) {  // read-behind zeros not followed by a seek: they were used
    error_ = std::make_exception_ptr(outside_error(behind_begin_, behind_end_));
    behind_begin_ = behind_end_ = 0;
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

int ByteReader::read(uint8_t* buffer, int size) {
  const ByteSource& src = *source_;
  const int64_t pos = position_;
  const bool behind = std::exchange(read_behind_, false);
  if (behind_end_ > 0) {  // a read right after read-behind zeros: the demuxer consumed them
    const int64_t begin = std::exchange(behind_begin_, 0), end = std::exchange(behind_end_, 0);
    throw outside_error(begin, end);
  }
  if (size <= 0) return 0;
  if (pos >= src.size()) return AVERROR_EOF;
  if (const BytePiece* piece = src.piece_at(pos)) {
    const int64_t n = std::min<int64_t>(size, piece->file_offset + piece->length - pos);
    read_backing(*piece, pos, buffer, n);
    position_ += n;
    return static_cast<int>(n);
  }
  const BytePiece* next = src.piece_after(pos);
  const int64_t gap_end = next != nullptr ? next->file_offset : src.size();
  if (policy_ == ReadPolicy::kZeroFill || behind) {
    const int64_t n = std::min<int64_t>(size, gap_end - pos);
    std::memset(buffer, 0, static_cast<size_t>(n));
    if (policy_ != ReadPolicy::kZeroFill) {
      behind_begin_ = pos;
      behind_end_ = pos + n;
    }
    position_ += n;
    return static_cast<int>(n);
  }
  if (src.has_media() && pos >= src.media_end() && (src.tail_header_begin_ < 0 || pos < src.tail_header_begin_)) {
    return AVERROR_EOF;
  }
  throw outside_error(pos, std::min<int64_t>(pos + size, src.size()));
}

void ByteReader::read_backing(const BytePiece& piece, int64_t pos, uint8_t* out, int64_t n) {
  const int64_t at = piece.backing.offset + (pos - piece.file_offset);
  if (piece.backing.is_memory()) {
    std::memcpy(out, piece.backing.data + at, static_cast<size_t>(n));
    return;
  }
  auto it = std::find_if(files_.begin(), files_.end(), [&](const auto& f) { return f.first == piece.backing.path; });
  if (it == files_.end()) {
    UniqueFd fd(::open(piece.backing.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      throw FileNotFound(source_->name() + ": cannot open backing file " + piece.backing.path + " (" +
                         std::strerror(errno) + ")");
    }
    files_.emplace_back(piece.backing.path, std::move(fd));
    it = std::prev(files_.end());
  }
  int64_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(it->second.get(), out + done, static_cast<size_t>(n - done), at + done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw InvalidInput(source_->name() + ": backing file " + piece.backing.path + " ended or failed at byte " +
                         std::to_string(at + done) + (got < 0 ? std::string(" (") + std::strerror(errno) + ")" : "") +
                         " (changed or truncated after the source was made?)");
    }
    done += got;
  }
}

}  // namespace lrs::av
