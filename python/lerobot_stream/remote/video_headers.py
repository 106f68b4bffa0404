"""``VideoHeaders``: each remote video file's index (header + sample table), once per node and process.

``get(url)`` returns the ``FileIndex`` of a remote mp4 (``lerobot_stream.remote.video_index``), or None
when the file cannot be read by ranges (the caller then fetches it whole). Indexes are kept in an
LRU of this process bounded by ``max_bytes`` (their header bytes back every ByteSource of the file,
without copies); on a miss the node cache is asked first (a header entry of the prefetcher, shared
by every process using the cache directory) and the network last.

Note [Header entries]
~~~~~~~~~~~~~~~~~~~~~
A file's index is fetched by the first process that needs it (two or three small range requests,
Note [Mp4 header reads]) and stored in the cache as a header entry; every process that loads it
holds one reference while the index is in its LRU, so an index is read from the network about once
per node per run, not once per episode (re-reading it per episode would cost ~16 bytes per frame of
the file for every episode). Header entries obey the cache's rules (atomic completion, last release
deletes, crashed owners pruned) and count toward its bound once fetched (Note [Cache bound and
progress]). A header entry holds: the header pieces and the samples' pos/size/pts/dts/key arrays.

Note [Whole-file fallback]
~~~~~~~~~~~~~~~~~~~~~~~~~~
Where ranges are impossible, the file is fetched whole, as before: a server that answers a
``Range`` request with the whole file (200), a ``moov`` after the media whose tail read fails, a
fragmented mp4 or one without a sample table. Each such file warns once per process (naming the
URL and the reason) and is counted in ``stats.whole_file_fallbacks``, which the dataset reports in
``ds.stats()["prefetch"]``: never silent. Other errors (404, 403, a server that stays unreachable)
are raised, not hidden behind a fallback.

Thread-safe: one instance per process (per consumer runtime); ``get`` may run on several threads.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lerobot_stream.remote.cache_items import CacheItem
from lerobot_stream.remote.mp4_header import HeaderUnavailableError, fetch_mp4_header
from lerobot_stream.remote.prefetch import VideoPrefetcher
from lerobot_stream.remote.retry import RangeNotSupportedError, RetryPolicy
from lerobot_stream.remote.video_index import FileIndex, Scan

DEFAULT_MAX_BYTES = 256 << 20


@dataclass
class HeaderStats:
    """This process's header counters."""

    loaded: int = 0  # indexes loaded (from the node cache or the network)
    lru_evictions: int = 0
    whole_file_fallbacks: int = 0  # files read whole because ranges were impossible


class VideoHeaders:
    """Per-process LRU of remote video indexes, shared on the node; see Note [Header entries]."""

    def __init__(
        self, prefetcher: VideoPrefetcher, max_bytes: int = DEFAULT_MAX_BYTES, scan: Scan | None = None
    ) -> None:
        self._prefetcher = prefetcher
        self._max_bytes = int(max_bytes)
        self._scan = scan
        self._lock = threading.Lock()
        self._lru: OrderedDict[str, FileIndex] = OrderedDict()
        self._bytes = 0
        self._fallback: dict[str, str] = {}
        self.stats = HeaderStats()

    def get(self, url: str) -> FileIndex | None:
        """The index of ``url``, or None when the file must be fetched whole (Note [Whole-file fallback])."""
        with self._lock:
            index = self._lru.get(url)
            if index is not None:
                self._lru.move_to_end(url)
                return index
            if url in self._fallback:
                return None
        item = self._item(url)
        self._prefetcher.acquire(item)
        try:
            with self._prefetcher.lease(item) as backing:
                data = backing if isinstance(backing, bytes) else Path(backing).read_bytes()
            index = FileIndex.from_bytes(data, f"{url} (cached index {item.key})")
        except (RangeNotSupportedError, HeaderUnavailableError) as err:
            self._prefetcher.release(item)
            self._fall_back(url, str(err))
            return None
        except BaseException:
            self._prefetcher.release(item)
            raise
        dropped: list[str] = []
        with self._lock:
            existing = self._lru.get(url)
            if existing is not None:  # another thread loaded it meanwhile: keep one reference
                dropped.append(url)
                index = existing
            else:
                self._lru[url] = index
                self._bytes += index.nbytes
                self.stats.loaded += 1
                while self._bytes > self._max_bytes and len(self._lru) > 1:
                    old_url, old = self._lru.popitem(last=False)
                    self._bytes -= old.nbytes
                    self.stats.lru_evictions += 1
                    dropped.append(old_url)
        for old_url in dropped:
            self._prefetcher.release(self._item(old_url))
        return index

    def is_fallback(self, url: str) -> bool:
        """Whether ``url`` is read whole (Note [Whole-file fallback])."""
        with self._lock:
            return url in self._fallback

    def close(self) -> None:
        """Releases this process's references to header entries."""
        with self._lock:
            urls = list(self._lru)
            self._lru.clear()
            self._bytes = 0
        for url in urls:
            self._prefetcher.release(self._item(url))

    def _fall_back(self, url: str, reason: str) -> None:
        with self._lock:
            if url in self._fallback:
                return
            self._fallback[url] = reason
            self.stats.whole_file_fallbacks += 1
        warnings.warn(
            f"Reading {url} whole instead of by episode byte ranges: {reason}. Streaming still works "
            "but moves whole video files (more bytes, more cache); see ds.stats()['prefetch'].",
            RuntimeWarning,
            stacklevel=3,
        )

    def _item(self, url: str) -> CacheItem:
        scan = self._scan

        def fetch(
            out: IO[bytes], policy: RetryPolicy, on_bytes: Callable[[int], None], on_retry: Callable[[], None]
        ) -> None:
            header = fetch_mp4_header(url, policy, on_bytes, on_retry)
            out.write(FileIndex.build(url, header, scan).to_bytes())

        return CacheItem.header(url, fetch)
