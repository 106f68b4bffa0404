"""The header of a remote mp4: its top-level boxes, and the bytes a demuxer needs besides the media.

``fetch_mp4_header(url, policy)`` reads a video file's first bytes with one range request, walks
its top-level boxes (``ftyp``, ``moov``, ``mdat``, ...) and reads what is missing: the rest of a
``moov`` larger than the first read, or the tail of the file when ``moov`` follows ``mdat`` (files
written without ``faststart``). It returns an ``Mp4Header``: the file size, the ``mdat`` payload's
byte range and the header *pieces* ``(file_offset, bytes)``: every box but the media payload
(``mdat``, ``free``/``skip`` padding, whose headers alone are kept). A demuxer reading the pieces
and zeros elsewhere sees the whole sample table (``lerobot_stream.remote.video_index``).

Note [Mp4 header reads]
~~~~~~~~~~~~~~~~~~~~~~~
The first read is ``FIRST_READ`` bytes (4 KiB): enough for ``ftyp`` and a ``moov`` of about 250
frames; a larger ``moov`` (16 bytes per frame, ~1 MB for lerobot's 60k-frame files) costs one more
exact read. A larger first read would save that round trip on big files but waste its surplus
(media bytes) on every small file. Files whose ``moov`` is at the end cost a read of the file's
tail (everything after ``mdat``). Fragmented mp4 (``moof``) and files without ``moov``/``mdat``
raise ``HeaderUnavailableError``: the reader falls back to whole files for them.

Not thread-safe state: none; every call is independent.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from lerobot_stream.remote.download import probe, read_range
from lerobot_stream.remote.retry import RemoteFileError, RetryPolicy

FIRST_READ = 4096
_HEADER_ONLY = {b"mdat", b"free", b"skip", b"wide"}
_MAX_BOX_READ = 256 << 20  # a non-media box larger than this is not a header we can cache


class HeaderUnavailableError(ValueError):
    """The file's sample table cannot be read from a few ranges (fragmented, no moov, ...)."""


@dataclass(frozen=True)
class Mp4Header:
    """A video file's size, its media payload's byte range, and its header pieces."""

    size: int
    media_begin: int  # first byte of mdat's payload
    media_end: int  # one past its last byte
    pieces: tuple[tuple[int, bytes], ...]  # (file_offset, bytes), sorted, not overlapping

    @property
    def nbytes(self) -> int:
        """Bytes of the header pieces."""
        return sum(len(data) for _, data in self.pieces)


def fetch_mp4_header(
    url: str,
    policy: RetryPolicy,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_retry: Callable[[], None] = lambda: None,
) -> Mp4Header:
    """Reads the header of the remote mp4 ``url`` (see Note [Mp4 header reads]).

    Raises ``RangeNotSupportedError`` when the server ignores ranges, ``HeaderUnavailableError``
    when the file has no usable sample table, RemoteFileError for network failures.
    """
    first, size = probe(url, FIRST_READ, policy, on_bytes, on_retry)
    have = _Bytes(first)

    def read(start: int, end: int) -> None:
        have.add(start, read_range(url, start, end, policy, on_bytes, on_retry))

    return walk_boxes(url, size, have, read)


class _Bytes:
    """Fetched regions of a file (``offset -> bytes``); assembles covered ranges."""

    def __init__(self, first: bytes) -> None:
        self.regions: dict[int, bytes] = {0: first}

    def add(self, start: int, data: bytes) -> None:
        self.regions[start] = data

    def covered(self, start: int) -> int:
        """How many bytes from ``start`` on are fetched, contiguously."""
        pos = start
        progress = True
        while progress:
            progress = False
            for offset, data in self.regions.items():
                if offset <= pos < offset + len(data):
                    pos = offset + len(data)
                    progress = True
        return pos - start

    def get(self, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` if fetched, else None."""
        if self.covered(start) < end - start:
            return None
        out = bytearray()
        pos = start
        while pos < end:
            offset, data = next((o, d) for o, d in self.regions.items() if o <= pos < o + len(d))
            chunk = data[pos - offset : min(end, offset + len(data)) - offset]
            out += chunk
            pos += len(chunk)
        return bytes(out)


def walk_boxes(url: str, size: int, have: _Bytes, read: Callable[[int, int], None]) -> Mp4Header:
    """Walks the top-level boxes of a ``size``-byte file, reading what ``have`` lacks."""

    def need(start: int, end: int, extra: int = 0) -> bytes:
        """Bytes ``[start, end)``, reading the missing part (and ``extra`` bytes after it)."""
        data = have.get(start, end)
        if data is None:
            read(start + have.covered(start), min(end + extra, size))
            data = have.get(start, end)
        assert data is not None
        return data

    pieces: list[tuple[int, bytes]] = []
    seen: set[bytes] = set()
    media: tuple[int, int] | None = None
    offset = 0
    while offset < size:
        if size - offset < 8:
            raise HeaderUnavailableError(f"{url}: {size - offset} stray bytes after the last mp4 box")
        if media is not None and have.get(offset, size) is None:
            # moov after mdat: read the whole tail at once (usually just moov)
            if size - offset > _MAX_BOX_READ:
                raise HeaderUnavailableError(f"{url}: {size - offset} bytes after mdat")
            try:
                read(offset + have.covered(offset), size)
            except RemoteFileError as err:
                if not err.permanent or isinstance(err, FileNotFoundError):
                    raise
                raise HeaderUnavailableError(f"{url}: moov after mdat, tail read failed: {err}") from err
        box_size, kind, header_len = _box_header(url, need, offset, size)
        end = size if box_size == 0 else offset + box_size
        if end > size or end < offset + header_len:
            raise HeaderUnavailableError(f"{url}: mp4 box {kind!r} at {offset} overruns the file ({size} B)")
        if kind == b"moof":
            raise HeaderUnavailableError(f"{url}: fragmented mp4 (moof boxes) is not supported")
        if kind in _HEADER_ONLY:
            pieces.append((offset, need(offset, offset + header_len)))
            if kind == b"mdat":
                if media is not None:
                    raise HeaderUnavailableError(f"{url}: more than one mdat box")
                media = (offset + header_len, end)
        else:
            if end - offset > _MAX_BOX_READ:
                raise HeaderUnavailableError(f"{url}: mp4 box {kind!r} of {end - offset} bytes")
            pieces.append((offset, need(offset, end, extra=16)))  # and the next box's header
        seen.add(kind)
        offset = end
    if b"moov" not in seen or media is None:
        raise HeaderUnavailableError(f"{url}: no {'moov' if b'moov' not in seen else 'mdat'} box")
    return Mp4Header(size, media[0], media[1], tuple(_merge(pieces)))


def _box_header(
    url: str, need: Callable[[int, int], bytes], offset: int, size: int
) -> tuple[int, bytes, int]:
    """``(box size, type, header length)`` of the box at ``offset`` (size 0: to the end of file)."""
    box_size, kind = struct.unpack(">I4s", need(offset, offset + 8))
    if box_size == 1:
        if size - offset < 16:
            raise HeaderUnavailableError(f"{url}: truncated 64-bit mp4 box header at {offset}")
        (box_size,) = struct.unpack(">Q", need(offset + 8, offset + 16))
        return box_size, kind, 16
    if box_size != 0 and box_size < 8:
        raise HeaderUnavailableError(f"{url}: bad mp4 box size {box_size} at {offset}")
    return box_size, kind, 8


def _merge(pieces: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Joins adjacent pieces (one faststart header is then a single piece)."""
    merged: list[tuple[int, bytes]] = []
    for offset, data in sorted(pieces):
        if merged and merged[-1][0] + len(merged[-1][1]) == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + data)
        else:
            merged.append((offset, data))
    return merged
