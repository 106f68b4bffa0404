// Python bindings of fetched byte ranges: ByteSource (a remote file's header pieces + one episode's
// media range, from local files or bytes) and scan_sample_index. A ByteSource is created as a C++
// shared_ptr, so decoders that keep it need no Python object; bytes backings stay Python objects
// whose last release takes the GIL (Note [Bytes backing]).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>

#include <memory>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

#include "av/byte_source.h"
#include "av/sample_index.h"
#include "common/errors.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// Note [Bytes backing]
// ~~~~~~~~~~~~~~~~~~~~
// A `bytes` piece is not copied: the source holds a reference to the Python object. A decoder may
// drop the source's last reference on a thread that does not hold the GIL (a DecoderCache eviction
// inside a GIL-released decode), so the owner takes the GIL to release it. Nothing else in the
// core ever touches Python.
struct PyBytesOwner {
  nb::object bytes;
  ~PyBytesOwner() {
    if (!Py_IsInitialized()) {
      bytes.release();  // the interpreter is gone: leak rather than touch it
      return;
    }
    nb::gil_scoped_acquire gil;
    bytes.reset();
  }
};

lrs::av::PieceBacking backing_of(const std::string& name, nb::handle backing, int64_t offset) {
  if (nb::isinstance<nb::str>(backing)) return lrs::av::PieceBacking::file(nb::cast<std::string>(backing), offset);
  if (nb::isinstance<nb::bytes>(backing)) {
    const auto bytes = nb::borrow<nb::bytes>(backing);
    lrs::av::PieceBacking b;
    b.data = bytes.c_str();
    b.data_size = static_cast<int64_t>(bytes.size());
    b.owner = std::make_shared<PyBytesOwner>(PyBytesOwner{bytes});
    b.offset = offset;
    return b;
  }
  throw lrs::InvalidInput(name + ": a piece's backing must be a local file path (str) or bytes, got " +
                          nb::cast<std::string>(nb::str(backing.type())));
}

using PieceList =
    nb::typed<nb::list, nb::typed<nb::tuple, int, int, nb::typed<nb::object, std::variant<std::string, nb::bytes>>, int>>;

std::shared_ptr<lrs::av::ByteSource> make_source(const std::string& name, int64_t size, const PieceList& pieces,
                                                 int64_t media_begin, int64_t media_end,
                                                 std::optional<int64_t> start_pts) {
  std::vector<lrs::av::BytePiece> out;
  out.reserve(pieces.size());
  for (nb::handle item : pieces) {
    nb::tuple t;
    if (!nb::try_cast(item, t) || t.size() != 4) {
      throw lrs::InvalidInput(name + ": each piece must be a tuple (file_offset, length, backing, backing_offset)");
    }
    lrs::av::BytePiece piece;
    if (!nb::try_cast(t[0], piece.file_offset) || !nb::try_cast(t[1], piece.length)) {
      throw lrs::InvalidInput(name + ": a piece's file_offset and length must be ints");
    }
    int64_t backing_offset = 0;
    if (!nb::try_cast(t[3], backing_offset)) throw lrs::InvalidInput(name + ": a piece's backing_offset must be an int");
    piece.backing = backing_of(name, t[2], backing_offset);
    out.push_back(std::move(piece));
  }
  nb::gil_scoped_release release;  // validation stats the backing files
  return std::make_shared<lrs::av::ByteSource>(name, size, std::move(out), media_begin, media_end, start_pts);
}

// A 1-d numpy array owning `values` (element type E: T itself, or bool over uint8_t 0/1).
template <typename E = void, typename T>
auto to_numpy(std::vector<T>&& values) {
  using Elem = std::conditional_t<std::is_void_v<E>, T, E>;
  static_assert(sizeof(Elem) == sizeof(T));
  auto owned = std::make_unique<std::vector<T>>(std::move(values));
  auto* data = reinterpret_cast<Elem*>(owned->data());
  const size_t n = owned->size();
  nb::capsule owner(owned.get(), [](void* p) noexcept { std::unique_ptr<std::vector<T>>(static_cast<std::vector<T>*>(p)); });
  owned.release();  // now owned by the capsule
  return nb::ndarray<nb::numpy, Elem, nb::ndim<1>>(data, {n}, owner);
}

}  // namespace

void bind_byte_source(nb::module_& m) {
  nb::class_<lrs::av::ByteSource>(
      m, "ByteSource",
      "A remote video file's fetched byte ranges: header pieces (ftyp + moov + mdat box header, and a tail "
      "moov) and at most one media range holding one episode's samples, from local files or bytes.")
      .def(nb::new_(&make_source), "name"_a, "size"_a, "pieces"_a, "media_begin"_a = -1, "media_end"_a = -1,
           "start_pts"_a = nb::none(),
           "`pieces`: (file_offset, length, backing, backing_offset) tuples, backing a local file path (str) "
           "or bytes (kept alive, not copied). Pieces inside [media_begin, media_end) are media, the rest "
           "header; start_pts is the pts of the keyframe sample at media_begin. Raises ValueError naming "
           "`name` for overlapping pieces, pieces past `size`, a media range not covered, a missing "
           "start_pts; FileNotFoundError for a missing backing file.")
      .def_prop_ro("name", &lrs::av::ByteSource::name, "The remote file's URL (named by every error).")
      .def_prop_ro("size", &lrs::av::ByteSource::size, "The remote file's size in bytes.")
      .def_prop_ro("key", &lrs::av::ByteSource::key,
                   "Stable identity of the content, for caches: '<name>#<media_begin>-<media_end>'.")
      .def_prop_ro("media_begin", &lrs::av::ByteSource::media_begin)
      .def_prop_ro("media_end", &lrs::av::ByteSource::media_end)
      .def_prop_ro("start_pts", &lrs::av::ByteSource::start_pts)
      .def("__repr__", [](const lrs::av::ByteSource& s) { return "ByteSource(" + s.key() + ", " + s.describe_ranges() + ")"; });

  m.def(
      "scan_sample_index",
      [](const lrs::av::ByteSource& source) {
        lrs::av::SampleIndex index;
        {
          nb::gil_scoped_release release;
          index = lrs::av::scan_sample_index(source);
        }
        nb::dict d;
        d["pos"] = to_numpy(std::move(index.pos));
        d["size"] = to_numpy(std::move(index.size));
        d["pts"] = to_numpy(std::move(index.pts));
        d["dts"] = to_numpy(std::move(index.dts));
        d["key"] = to_numpy<bool>(std::move(index.key));
        d["discard"] = to_numpy<bool>(std::move(index.discard));
        d["time_base_num"] = index.time_base_num;
        d["time_base_den"] = index.time_base_den;
        d["codec"] = index.codec;
        d["width"] = index.width;
        d["height"] = index.height;
        return d;
      },
      "source"_a, nb::sig("def scan_sample_index(source: ByteSource) -> dict[str, typing.Any]"),
      "The video stream's samples in decode (file) order, from the header pieces alone (unfetched bytes "
      "read as zeros), as libav's demuxer sees them: dict of numpy arrays pos, size, pts, dts (int64), key "
      "and discard (bool: outside the edit list, decoded but never shown), and time_base_num, time_base_den, codec, width, height.");
}
