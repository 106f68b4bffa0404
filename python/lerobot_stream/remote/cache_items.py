"""What the prefetch cache holds: ``CacheItem`` (a whole file, a byte range, a video header) and its fetch.

An item names one cache entry (``key``) and says how to download it: whole files and byte ranges
with ``lerobot_stream.remote.download``, headers with the function the item carries (written by
``lerobot_stream.remote.video_index``). Items are immutable and live in the process that acquired them;
the shared record (``lerobot_stream.remote.cache_state``) stores only their URL, kind and size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Literal

from lerobot_stream.remote.cache_state import file_key, header_key, range_key
from lerobot_stream.remote.download import download, download_range
from lerobot_stream.remote.retry import RetryPolicy

# fetch(out, policy, on_bytes, on_retry): writes an entry's bytes to ``out``
Fetch = Callable[[IO[bytes], RetryPolicy, Callable[[int], None], Callable[[], None]], None]
Backing = Path | bytes


@dataclass(frozen=True)
class CacheItem:
    """One entry of the cache: a whole remote file, a byte range of one, or a video file's header.

    Build with ``CacheItem.whole_file(url)``, ``CacheItem.byte_range(url, start, end)`` or
    ``CacheItem.header(url, fetch)``; ``key`` names the entry on the node.
    """

    url: str
    kind: Literal["file", "range", "header"] = "file"
    start: int = 0
    end: int | None = None
    size: int | None = None  # expected bytes; None: asked (files) or learned by the fetch (headers)
    fetch: Fetch | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def whole_file(url: str, size: int | None = None) -> CacheItem:
        """The whole file ``url`` (``size``: skips the HEAD request that asks for it)."""
        return CacheItem(url, "file", size=size)

    @staticmethod
    def byte_range(url: str, start: int, end: int) -> CacheItem:
        """Bytes ``[start, end)`` of ``url``."""
        if not 0 <= start < end:
            raise ValueError(f"{url}: bad byte range [{start}, {end})")
        return CacheItem(url, "range", start, end, end - start)

    @staticmethod
    def header(url: str, fetch: Fetch) -> CacheItem:
        """The header entry of ``url``, written by ``fetch`` (its size is learned when fetched)."""
        return CacheItem(url, "header", fetch=fetch)

    @cached_property
    def key(self) -> str:
        """The entry's name in the cache (a hash: computed once, a decode asks for it per sample)."""
        if self.kind == "range":
            return range_key(self.url, self.start, int(self.end or 0))
        if self.kind == "header":
            return header_key(self.url)
        return file_key(self.url)


def as_item(item: CacheItem | str, size: int | None = None) -> CacheItem:
    """``item``, or the whole-file item of the URL ``item``."""
    return CacheItem.whole_file(item, size) if isinstance(item, str) else item


def fetch_item(
    item: CacheItem,
    out: IO[bytes],
    size: int,
    policy: RetryPolicy,
    on_bytes: Callable[[int], None],
    on_retry: Callable[[], None],
) -> None:
    """Writes ``item``'s bytes to ``out`` (``size``: the expected count, unknown for headers)."""
    if item.kind == "header":
        assert item.fetch is not None, "a header item needs its fetch function"
        item.fetch(out, policy, on_bytes, on_retry)
    elif item.kind == "range":
        download_range(item.url, item.start, int(item.end or 0), out, policy, on_bytes, on_retry)
    else:
        download(item.url, out, size, policy, on_bytes, on_retry)
