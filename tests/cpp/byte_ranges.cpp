#include "byte_ranges.h"

#include <algorithm>
#include <stdexcept>


namespace lrs::test {
namespace {

uint64_t be(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b.at(at + static_cast<size_t>(i)));
  return v;
}

av::BytePiece piece(const std::string& path, const std::shared_ptr<const std::string>& bytes, Range r, bool memory) {
  av::BytePiece p;
  p.file_offset = r.begin;
  p.length = r.end - r.begin;
  if (memory) {
    p.backing = av::PieceBacking::memory(std::make_shared<const std::string>(bytes->substr(r.begin, p.length)), 0);
  } else {
    p.backing = av::PieceBacking::file(path, r.begin);
  }
  return p;
}

}  // namespace

std::vector<Range> header_ranges(const std::string& b) {
  std::vector<Range> out;
  const auto size = static_cast<int64_t>(b.size());
  for (int64_t at = 0; at + 8 <= size;) {
    int64_t box = static_cast<int64_t>(be(b, at, 4));
    int64_t header = 8;
    if (box == 1) {
      box = static_cast<int64_t>(be(b, at + 8, 8));
      header = 16;
    } else if (box == 0) {
      box = size - at;
    }
    if (box < header || box > size - at) throw std::runtime_error("byte_ranges: bad box size");
    const bool mdat = b.compare(static_cast<size_t>(at + 4), 4, "mdat") == 0;
    const Range r{at, mdat ? at + header : at + box};  // of an mdat, only its box header
    if (!out.empty() && out.back().end == r.begin) {
      out.back().end = r.end;
    } else {
      out.push_back(r);
    }
    at += box;
  }
  return out;
}

EpisodesSpec episodes_spec(const std::string& encoder, bool faststart) {
  EpisodesSpec s;
  s.clip.encoder = encoder;
  s.clip.gop = encoder == "libsvtav1" ? 2 : 6;  // AV1 at 64x64: short GOPs keep the pixel index readable
  s.faststart = faststart;
  return s;
}

EpisodeRange episode_range(const av::SampleIndex& index, int64_t first_pts, int64_t last_pts) {
  const auto n = static_cast<int64_t>(index.pos.size());
  int64_t first = n, last = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (index.pts[i] >= first_pts && index.pts[i] <= last_pts) {
      first = std::min(first, i);
      last = std::max(last, i);
    }
  }
  if (last < 0) throw std::runtime_error("byte_ranges: no frame in the pts range");
  int64_t key = first;
  // The keyframe at or before the first frame in presentation order (closed GOPs: decode order too).
  while (key > 0 && !(index.key[key] && index.pts[key] <= first_pts)) --key;
  EpisodeRange r;
  r.bytes = {index.pos[key], index.pos[last] + index.size[last]};
  r.start_pts = index.pts[key];
  for (int64_t i = key; i <= last; ++i) {
    if (index.pts[i] >= r.start_pts) r.segment_pts.push_back(index.pts[i]);
  }
  std::sort(r.segment_pts.begin(), r.segment_pts.end());
  return r;
}

std::shared_ptr<const av::ByteSource> make_source(const std::string& url, const std::string& path, Backing backing,
                                                  const EpisodeRange* media) {
  const auto bytes = std::make_shared<const std::string>(read_file(path));
  std::vector<av::BytePiece> pieces;
  for (Range r : header_ranges(*bytes)) pieces.push_back(piece(path, bytes, r, backing == Backing::kMemory));
  if (media == nullptr) return std::make_shared<av::ByteSource>(url, bytes->size(), std::move(pieces));
  const Range m = media->bytes;
  if (backing == Backing::kMixed && m.end - m.begin > 1) {
    const int64_t mid = m.begin + (m.end - m.begin) / 2;
    pieces.push_back(piece(path, bytes, {m.begin, mid}, false));
    pieces.push_back(piece(path, bytes, {mid, m.end}, true));
  } else {
    pieces.push_back(piece(path, bytes, m, backing == Backing::kMemory));
  }
  return std::make_shared<av::ByteSource>(url, bytes->size(), std::move(pieces), m.begin, m.end, media->start_pts);
}

}  // namespace lrs::test
