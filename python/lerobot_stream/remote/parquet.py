"""Remote parquet files read with exact byte ranges: the footer once per process, then row groups.

``open_remote_parquet(url, policy)`` returns a ``pyarrow.parquet.ParquetFile`` whose reads are
range requests of exactly the bytes pyarrow asks for (no read-ahead block cache), over a file
object that knows the file's size. The footer (``FileMetaData``) is fetched with two small range
requests (the last 8 bytes with the file's size, then the footer itself) the first time a process
opens the file, and kept in a per-process cache, so reopening a file costs nothing.

Note [Parquet bytes]
~~~~~~~~~~~~~~~~~~~~
fsspec's file objects read ahead in blocks (1 MiB here before), and pyarrow reads the last 64 KiB
to find a footer: on small data files (lerobot writes one row group per episode) both fetch the
whole file again and again; the server sent 2-4x the data files per epoch. Here a row group's
column chunks are one contiguous range (pyarrow coalesces them, ``pre_buffer``), fetched exactly
once per read of that row group; the footer is fetched once per process. Per epoch the server then
sends the row groups once plus one footer per data file and process (``rows`` read by other
consumers are not re-read; ``TabularReader`` keeps recent row groups).

Thread-safe: the footer cache is locked; a ``RangeFile`` belongs to one ``ParquetFile`` and one
reader (pyarrow serialises its reads).
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from lerobot_stream.remote.download import read_all, read_range, read_suffix
from lerobot_stream.remote.retry import RangeNotSupportedError, RetryPolicy

_FOOTERS = 512  # footers kept per process (a footer is ~1 KB per row group)
_footers: OrderedDict[str, tuple[int, pq.FileMetaData]] = OrderedDict()
_footers_lock = threading.Lock()
_in_flight: dict[str, threading.Lock] = {}  # url -> held while one thread fetches its footer
_warned_whole = False


class RangeFile(io.RawIOBase):
    """A read-only file object over ``url`` of ``size`` bytes: every read is one range request.

    The last fetched block is kept, so pyarrow's small follow-up reads inside it cost nothing.
    ``on_bytes`` counts bytes received.
    """

    def __init__(
        self, url: str, size: int, policy: RetryPolicy, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        super().__init__()
        self.url, self.size, self.policy = url, int(size), policy
        self._pos = 0
        self._block_start = 0
        self._block = b""
        self._on_bytes = on_bytes or (lambda n: None)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self._pos + n, self.size)
        start = self._pos
        if start >= end:
            return b""
        block_end = self._block_start + len(self._block)
        if not (self._block_start <= start and end <= block_end):
            self._block = read_range(self.url, start, end, self.policy, on_bytes=self._on_bytes)
            self._block_start = start
        self._pos = end
        return self._block[start - self._block_start : end - self._block_start]

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)


def read_footer(
    url: str, policy: RetryPolicy, on_bytes: Callable[[int], None] | None = None
) -> tuple[int, pq.FileMetaData]:
    """``(file size, footer)`` of the remote parquet file ``url``, cached per process.

    One thread fetches a footer; others asking for the same file meanwhile wait for it.
    """
    with _footers_lock:
        cached = _footers.get(url)
        if cached is not None:
            _footers.move_to_end(url)
            return cached
        flight = _in_flight.setdefault(url, threading.Lock())
    with flight:
        with _footers_lock:
            cached = _footers.get(url)
        if cached is not None:
            return cached
        try:
            return _fetch_footer(url, policy, on_bytes)
        finally:
            with _footers_lock:
                _in_flight.pop(url, None)


def _fetch_footer(
    url: str, policy: RetryPolicy, on_bytes: Callable[[int], None] | None
) -> tuple[int, pq.FileMetaData]:
    count = on_bytes or (lambda n: None)
    tail, size = read_suffix(url, 8, policy, on_bytes=count)
    if size < 12 or tail[-4:] != b"PAR1":
        raise ValueError(f"{url} is not a parquet file (no PAR1 footer magic)")
    (length,) = struct.unpack("<I", tail[:4])
    if length == 0 or length + 12 > size:
        raise ValueError(f"{url}: parquet footer length {length} does not fit in {size} bytes")
    footer = read_range(url, size - 8 - length, size - 8, policy, on_bytes=count) + tail
    try:
        metadata = pq.read_metadata(pa.BufferReader(footer))
    except pa.ArrowException as err:
        raise ValueError(f"{url}: unreadable parquet footer: {err}") from err
    with _footers_lock:
        _footers[url] = (size, metadata)
        while len(_footers) > _FOOTERS:
            _footers.popitem(last=False)
    return size, metadata


def open_remote_parquet(
    url: str, policy: RetryPolicy, on_bytes: Callable[[int], None] | None = None
) -> pq.ParquetFile:
    """A ``ParquetFile`` over ``url`` reading exact ranges (see Note [Parquet bytes]).

    A server that ignores ``Range`` gets the whole file read into memory instead, with a warning
    (once per process).
    """
    try:
        size, metadata = read_footer(url, policy, on_bytes)
    except RangeNotSupportedError as err:
        global _warned_whole
        if not _warned_whole:
            _warned_whole = True
            warnings.warn(f"Reading parquet files whole: {err}", RuntimeWarning, stacklevel=2)
        data = read_all(url, policy)
        if on_bytes is not None:
            on_bytes(len(data))
        return pq.ParquetFile(pa.BufferReader(data))
    return pq.ParquetFile(RangeFile(url, size, policy, on_bytes), metadata=metadata, pre_buffer=True)
