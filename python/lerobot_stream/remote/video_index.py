"""A remote video file's index: header bytes + sample table, and the byte range of each episode.

``FileIndex`` holds what the node caches once per video file: the ``Mp4Header`` pieces (fetched by
``lerobot_stream.remote.mp4_header``) and the stream's samples in decode order (byte position, size, pts,
dts, keyframe), listed by libav from the header alone (``_core.scan_sample_index``). From it:

    index.segment(from_s, to_s, fps)   the byte range [begin, end) an episode's frames need
    index.source(segment, backing)     a ``ByteSource`` over the header + that range, for decoders

``to_bytes``/``from_bytes`` (de)serialise it for the node cache (a small file next to the segments).

Note [Episode byte ranges]
~~~~~~~~~~~~~~~~~~~~~~~~~~
An episode's frames are the samples whose presentation time ``pts * time_base`` lies in its
``[from_timestamp, to_timestamp)`` (shifted by half a frame, so rounding in either value cannot
drop or add a frame). Decoding them needs every sample, in decode (file) order, from the last
keyframe at or before the first of them (whose pts is at or before all of theirs, so a seek to it
lands there) to the last of them. Those samples are one contiguous run of ``mdat`` in files written
by lerobot (one video stream, episodes back to back), so the range is ``[pos of that keyframe, end
of the last sample)``; if another stream's samples were interleaved, the range covers them too (one
coalesced range, counted in ``Segment.gap_bytes``). An episode whose first frame is not a keyframe
(possible in files not written by lerobot) starts at the previous keyframe, in the previous
episode's bytes. ``start_pts`` is that keyframe's pts, which the decoder checks against the bytes.

Immutable after construction; thread-safe.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lerobot_stream.remote.mp4_header import Mp4Header

_MAGIC = b"LRSIDX1\n"
# scan(url, header) -> {"pos", "size", "pts", "dts", "key", "time_base_num", "time_base_den", ...}
Scan = Callable[[str, Mp4Header], dict[str, Any]]
_ARRAYS = ("pos", "size", "pts", "dts")


@dataclass(frozen=True)
class Segment:
    """The bytes one episode needs from one video file (Note [Episode byte ranges])."""

    begin: int
    end: int
    start_pts: int  # pts (stream time base) of the keyframe at ``begin``
    samples: int  # samples in the range
    gap_bytes: int  # bytes in the range that belong to no needed sample (0 for lerobot's files)
    frames: int = 0  # frames whose time lies in the episode's [from, to)

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True, eq=False)
class FileIndex:
    """One remote video file's header pieces and sample table (decode order)."""

    url: str
    file_size: int
    media: tuple[int, int]  # [begin, end) of the mdat payload
    pieces: tuple[tuple[int, int], ...]  # header pieces (file_offset, length), back to back in blob
    blob: bytes  # the header bytes (ByteSource backing: kept alive, not copied)
    pos: np.ndarray
    size: np.ndarray
    pts: np.ndarray
    dts: np.ndarray
    key: np.ndarray
    time_base: tuple[int, int]
    info: dict[str, Any]  # codec, width, height

    @property
    def nbytes(self) -> int:
        """Bytes this index holds in memory (header pieces and sample arrays)."""
        return len(self.blob) + sum(a.nbytes for a in (self.pos, self.size, self.pts, self.dts, self.key))

    @staticmethod
    def build(url: str, header: Mp4Header, scan: Scan | None = None) -> FileIndex:
        """Lists the samples of ``header`` with ``scan`` (default: libav's, ``core_scan``)."""
        pieces, blob = _header_parts(header)
        table = (scan or core_scan)(url, header)
        return FileIndex(
            url=url,
            file_size=header.size,
            media=(header.media_begin, header.media_end),
            pieces=pieces,
            blob=blob,
            pos=np.asarray(table["pos"], np.int64),
            size=np.asarray(table["size"], np.int64),
            pts=np.asarray(table["pts"], np.int64),
            dts=np.asarray(table["dts"], np.int64),
            key=np.asarray(table["key"], np.bool_),
            time_base=(int(table["time_base_num"]), int(table["time_base_den"])),
            info={k: table[k] for k in ("codec", "width", "height") if k in table},
        )

    # --- episodes ---------------------------------------------------------------------------------
    def segment(self, from_s: float, to_s: float, fps: float) -> Segment:
        """The byte range of the frames in ``[from_s, to_s)`` (Note [Episode byte ranges])."""
        num, den = self.time_base
        times = self.pts * (num / den)
        half = 0.5 / fps
        frames = np.nonzero((times >= from_s - half) & (times < to_s - half))[0]
        if len(frames) == 0:
            raise ValueError(
                f"{self.url}: no video frame in [{from_s}, {to_s}) s (an episode's from/to_timestamp); "
                f"the file's frames span {times.min():.4f}..{times.max():.4f} s"
            )
        first, last = int(frames[0]), int(frames[-1])
        earliest = self.pts[frames].min()
        starts = np.nonzero(self.key[: first + 1] & (self.pts[: first + 1] <= earliest))[0]
        if len(starts) == 0:
            raise ValueError(f"{self.url}: no keyframe at or before the frame at {from_s} s")
        k = int(starts[-1])
        pos, ends = self.pos[k : last + 1], self.pos[k : last + 1] + self.size[k : last + 1]
        begin, end = int(pos.min()), int(ends.max())
        if begin != int(self.pos[k]) or begin < self.media[0] or end > self.media[1]:
            raise ValueError(f"{self.url}: samples of [{from_s}, {to_s}) s lie outside the media box")
        gap = (end - begin) - int(self.size[k : last + 1].sum())
        return Segment(begin, end, int(self.pts[k]), last + 1 - k, gap, len(frames))

    def source(self, segment: Segment, backing: str | Path | bytes) -> Any:
        """A ``ByteSource`` of the header and ``segment`` (``backing``: its local path or bytes)."""
        from lerobot_stream import _core

        media = backing if isinstance(backing, bytes) else str(backing)
        pieces = [*_piece_tuples(self.pieces, self.blob), (segment.begin, segment.nbytes, media, 0)]
        return _core.ByteSource(
            self.url, self.file_size, pieces, segment.begin, segment.end, segment.start_pts
        )

    # --- node cache -------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The serialised index (header pieces and sample arrays) for the node cache."""
        meta = {
            "url": self.url,
            "size": self.file_size,
            "media": list(self.media),
            "pieces": [list(p) for p in self.pieces],
            "samples": len(self.pos),
            "time_base": list(self.time_base),
            "info": self.info,
        }
        text = json.dumps(meta).encode()
        arrays = b"".join(getattr(self, name).astype("<i8").tobytes() for name in _ARRAYS)
        keys = self.key.astype(np.uint8).tobytes()
        return b"".join([_MAGIC, struct.pack("<Q", len(text)), text, self.blob, arrays, keys])

    @staticmethod
    def from_bytes(data: bytes, where: str) -> FileIndex:
        """Parses ``to_bytes``' output; ValueError naming ``where`` when it is damaged."""
        try:
            if not data.startswith(_MAGIC):
                raise ValueError("not a lerobot-stream video index")
            (length,) = struct.unpack_from("<Q", data, len(_MAGIC))
            at = len(_MAGIC) + 8
            meta = json.loads(data[at : at + length])
            at += length
            total = sum(int(n) for _, n in meta["pieces"])
            blob = data[at : at + total]
            at += total
            n = int(meta["samples"])
            arrays = {}
            for name in _ARRAYS:
                arrays[name] = np.frombuffer(data, "<i8", n, at).astype(np.int64)
                at += 8 * n
            key = np.frombuffer(data, np.uint8, n, at).astype(np.bool_)
            if at + n != len(data):
                raise ValueError(f"{len(data) - at - n} trailing bytes")
        except (ValueError, KeyError, TypeError, struct.error) as err:
            raise ValueError(f"{where}: damaged video index: {err}") from err
        return FileIndex(
            url=meta["url"],
            file_size=int(meta["size"]),
            media=(int(meta["media"][0]), int(meta["media"][1])),
            pieces=tuple((int(o), int(n)) for o, n in meta["pieces"]),
            blob=blob,
            key=key,
            time_base=(int(meta["time_base"][0]), int(meta["time_base"][1])),
            info=meta["info"],
            **arrays,
        )


def core_scan(url: str, header: Mp4Header) -> dict[str, Any]:
    """The samples of ``header`` as libav's demuxer lists them (``_core.scan_sample_index``)."""
    from lerobot_stream import _core

    pieces, blob = _header_parts(header)
    return _core.scan_sample_index(_core.ByteSource(url, header.size, _piece_tuples(pieces, blob)))


def _header_parts(header: Mp4Header) -> tuple[tuple[tuple[int, int], ...], bytes]:
    """(file offset, length) of each header piece, and the pieces' bytes joined."""
    return tuple((offset, len(data)) for offset, data in header.pieces), b"".join(d for _, d in header.pieces)


def _piece_tuples(pieces: tuple[tuple[int, int], ...], blob: bytes) -> list[tuple[int, int, bytes, int]]:
    out, offset = [], 0
    for file_offset, length in pieces:
        out.append((file_offset, length, blob, offset))
        offset += length
    return out
