"""``VideoPrefetcher``: downloads remote video bytes ahead of decode into a bounded, refcounted cache.

Streaming from a remote dataset, a consumer *acquires* the entries an episode needs when the
episode enters its pool (downloads start in the background), *leases* an entry when it decodes a
frame (blocking only if the download is not finished: that time is ``wait_s``), and *releases*
them when the episode is evicted. The last release on the node deletes the entry. An entry
(``CacheItem``) is a whole file (a URL string is one), a byte range of a file (an episode's
segment of a video file), or a video file's header with its sample index
(``lerobot_stream.remote.video_index``).

    prefetcher = VideoPrefetcher("/tmp/lrs-cache", max_bytes=20 << 30)
    item = CacheItem.byte_range(url, start, end)
    prefetcher.acquire(item)                 # on admit: starts the download, returns a Future
    with prefetcher.lease(item) as backing:  # on decode: waits for the bytes, pins them meanwhile
        ...                                  # backing: the entry's Path (or bytes in memory mode)
    prefetcher.release(item)                 # on evict: the last reference deletes the entry

``cache_dir=None`` keeps entries in this process's memory instead (no disk; not shared between
processes; ``max_bytes`` bounds this process): same refcounts, bound and progress rules.

This module keeps the consumer's API and the per-process bookkeeping; the rules on room in the
cache (admission, eviction on demand: Note [Cache bound and progress]; Note [Lingering pins]) are in
``lerobot_stream.remote.cache_room``, the download of one entry (claim, fetch, commit, give up) in
``lerobot_stream.remote.entry_download``.

Note [Refcounts shared by processes]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
References live in the cache directory's shared record (``lerobot_stream.remote.cache_state``), per
process, so DataLoader workers and ranks on one node that point at the same ``cache_dir`` share
downloads: a file is downloaded once, whoever acquires it first starts the download, and it is
deleted when the node's last reference goes. A crashed process's references are pruned by the
next operation of any other process (Note [Owners and crashed processes]). A download goes to a
temporary name, is size-checked and then renamed, so a complete-looking file is always whole.

Note [Background prefetches]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``acquire`` starts a background thread that waits for room and downloads the entry. Its job ends
once the entry has been complete for this process, seen by any of its threads (``_background_done``):
an entry a demand dropped meanwhile (Note [Cache bound and progress] in
``lerobot_stream.remote.cache_room``) comes back only when next leased, never by a background
thread that woke late (issue 14: such a thread re-fetched a dropped video header while the stage
released everything, and its ``.part`` outlived ``close()``). Nor does a background thread that
woke late fetch an entry whose lease already failed after its retries: it ends with the lease's
error (``_lease_failures``), where it had fetched again behind that error, its ``.part`` outliving it.

Note [Releases and downloads in flight]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``release`` never waits: a download of an entry this process no longer holds stops at its next
read or retry, deletes its temporary file and puts the record back (or drops it). ``settle()`` waits
for those downloads; the end of a pass (``EpisodeVideoFiles.close``) calls it, so the cache holds
nothing of this process once that returns.

Note [Leases of several entries]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A sample decodes its cameras together, and a batch all its samples' cameras: the caller holds
several leases at once. A lease that waits for room while its thread holds another breaks the
progress argument of Note [Cache bound and progress] in ``lerobot_stream.remote.cache_room``
(issue 14: two cameras, a bound that holds one camera's segment, hung before the first sample):
the held entry is pinned by a consumer that is itself waiting. So every
lease but a caller's first passes ``wait_for_room=False``: where it would wait for room (after
dropping idle pins once) it raises ``NoRoomError``; the caller releases what it holds and leases
the entries one at a time (``EpisodeVideoFiles.local_all``), each of which then waits as above.

Thread-safe; one instance per process (a pickled or forked copy starts with no references).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lerobot_stream.remote.cache_items import Backing, CacheItem, as_item
from lerobot_stream.remote.cache_room import drop_idle_pins, watch_room
from lerobot_stream.remote.cache_state import (
    CacheState,
    MemoryCacheState,
    new_record,
    owner_id,
    resident_bytes,
    unreferenced,
)
from lerobot_stream.remote.entry_download import DownloadStopped, download_entry, learn_size, next_action
from lerobot_stream.remote.retry import RemoteFileError, RetryPolicy

__all__ = ["CacheItem", "NoRoomError", "PrefetchStats", "RemoteFileError", "VideoPrefetcher"]

_POLL_S = 0.02
_MAX_POLL_S = 0.1
# A background prefetch waits for this process's downloads (it is woken when one ends) or for
# another process's (noticed by polling): polling slowly costs nothing a decode waits for.
_MAX_BACKGROUND_POLL_S = 0.5


@dataclass
class PrefetchStats:
    """This process's prefetch counters (bytes and downloads of every kind of entry together)."""

    bytes_downloaded: int = 0
    downloads: int = 0
    header_bytes: int = 0  # of which video headers (file boxes and sample tables)
    segment_bytes: int = 0  # of which episode byte ranges
    file_bytes: int = 0  # of which whole files
    cache_hits: int = 0  # acquisitions that found the file already complete in the cache
    waits: int = 0  # leases that had to wait for a download
    wait_s: float = 0.0  # seconds leases blocked on the network
    retries: int = 0
    evictions: int = 0  # referenced files dropped to make room (Note [Cache bound and progress], cache_room)


class NoRoomError(RuntimeError):
    """A ``lease(..., wait_for_room=False)`` would have to wait for room in the cache (Note [Leases of
    several entries]): release the leases held and lease one entry at a time."""


class VideoPrefetcher:
    """A bounded, node-shared, refcounted download cache for remote video bytes.

    Where and how much:
        cache_dir: local directory; every process on the node using it shares its entries.
            ``None``: this process's memory (leases give ``bytes`` instead of paths).
        max_bytes: bound on the cache's bytes (Note [Cache bound and progress] in
            ``lerobot_stream.remote.cache_room``).
    Network:
        max_concurrency: downloads in flight on the node.
        retries, backoff_s, max_backoff_s: retries of transient errors, exponential backoff with
            jitter (Note [Transient and permanent errors] in ``lerobot_stream.remote.retry``).
        timeout_s: a read that stalls this long fails (and is retried).
        min_bytes_per_s: once a body has taken ``timeout_s``, slower than this on average fails as too
            slow (and is retried); 0: no floor.
    Display:
        progress: a tqdm bar while a consumer waits for its first file; default on when stderr is
            a terminal, unless ``LRS_PROGRESS=0`` (``LRS_PROGRESS=1`` forces it on).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike | None,
        max_bytes: int,
        max_concurrency: int = 4,
        *,
        retries: int = 6,
        backoff_s: float = 0.25,
        max_backoff_s: float = 10.0,
        timeout_s: float = 30.0,
        min_bytes_per_s: float = 1024.0,
        progress: bool | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.max_bytes = int(max_bytes)
        self.max_concurrency = int(max_concurrency)
        self.policy = RetryPolicy(retries, backoff_s, max_backoff_s, timeout_s, min_bytes_per_s)
        self._progress = progress
        self._start_process()
        self._state.sweep_orphans()

    @property
    def in_memory(self) -> bool:
        """True when entries live in this process's memory (``cache_dir=None``)."""
        return self.cache_dir is None

    def _start_process(self) -> None:
        self._state: CacheState | MemoryCacheState = (
            MemoryCacheState() if self.cache_dir is None else CacheState(self.cache_dir)
        )
        self._pid = os.getpid()
        self._owner = owner_id()
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self._held: Counter[str] = Counter()
        self._futures: dict[str, Future] = {}
        self._items: dict[str, CacheItem] = {}  # held items by key (their fetch functions)
        self._downloading: set[str] = set()  # keys this process claimed and downloads now
        self._background_done: set[str] = set()  # Note [Background prefetches]
        self._failures: dict[str, BaseException] = {}  # background downloads that gave up
        self._lease_failures: dict[str, BaseException] = {}  # leases' downloads that gave up
        self._leases: Counter[str] = Counter()  # leases open now, per key
        self._pinned: set[str] = set()  # keys this prefetcher pins in the shared record
        self._executor: ThreadPoolExecutor | None = None
        self._watchdog: threading.Thread | None = None  # Note [Lingering pins] (cache_room)
        self._closed = False
        self._first_lease_done = False
        self.stats = PrefetchStats()

    def __getstate__(self) -> dict[str, Any]:
        keep = ("cache_dir", "max_bytes", "max_concurrency", "policy", "_progress")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_process()

    # --- public API ---------------------------------------------------------------------------
    def acquire(self, item: CacheItem | str, expected_size: int | None = None) -> Future:
        """Adds a reference to ``item`` and starts its download in the background if needed.

        Returns a Future that completes with the entry's backing (Path, or bytes in memory mode)
        when it is in the cache (None if it was dropped again before the download thread saw it,
        Note [Background prefetches]), or fails with RemoteFileError. A string is a whole-file URL;
        ``expected_size`` (whole files) skips the HEAD request that asks for the size.
        """
        self._check_process()
        item = as_item(item, expected_size)
        key = item.key
        with self._state.locked() as files:
            record = files.setdefault(key, new_record(item.url, item.size, item.kind))
            if record["size"] is None and item.size is not None:
                record["size"] = int(item.size)
            record["refs"][self._owner] = record["refs"].get(self._owner, 0) + 1
            ready = record["status"] == "ready" and self._state.has(key)
            backing = self._state.backing(key) if ready else None
        with self._mutex:
            self._held[key] += 1
            self._items.setdefault(key, item)
            if ready:
                self.stats.cache_hits += 1
                done: Future = Future()
                done.set_result(backing)
                return done
            future = self._futures.get(key)
            if future is None or (future.done() and future.exception() is not None):
                self._failures.pop(key, None)
                self._lease_failures.pop(key, None)
                future = self._pool().submit(self._ensure, key, False, False, None)
                self._futures[key] = future
            return future

    def release(self, *items: CacheItem | str) -> None:
        """Drops one reference to each item; the node's last reference deletes an entry."""
        self._check_process()
        keys = [as_item(item).key for item in items]
        unpins = []
        with self._mutex:
            for item, key in zip(items, keys, strict=True):
                if self._held[key] <= 0:
                    raise ValueError(f"release({item!r}) without a matching acquire in this process")
                self._held[key] -= 1
                unpin = not self._held[key] and key in self._pinned and not self._leases.get(key)
                if not self._held[key]:
                    del self._held[key]
                    self._items.pop(key, None)
                    self._futures.pop(key, None)
                    self._failures.pop(key, None)
                    self._lease_failures.pop(key, None)
                    self._background_done.discard(key)  # a download of it in flight stops (on_bytes)
                if unpin:
                    self._pinned.discard(key)
                unpins.append(unpin)
        with self._state.locked() as files:
            for key, unpin in zip(keys, unpins, strict=True):
                record = files.get(key)
                if record is not None and unpin:
                    record["pins"].pop(self._owner, None)
                if record is not None and self._owner in record["refs"]:
                    record["refs"][self._owner] -= 1
                    if not record["refs"][self._owner]:
                        del record["refs"][self._owner]
                    if unreferenced(record):
                        self._state.forget(files, key)
        with self._changed:
            self._changed.notify_all()

    @contextlib.contextmanager
    def lease(
        self, item: CacheItem | str, timeout: float | None = None, *, wait_for_room: bool = True
    ) -> Iterator[Backing]:
        """The backing of an acquired ``item`` (Path, or bytes in memory mode), pinned in the block.

        Blocks until the entry is downloaded (time counted in ``stats.wait_s``); raises
        RemoteFileError for a failed download and TimeoutError after ``timeout`` seconds. A caller
        that already holds a lease passes ``wait_for_room=False`` (Note [Leases of several entries]):
        NoRoomError instead of waiting for room in the cache.
        """
        key = as_item(item).key
        with self._mutex:  # fast path: already pinned by this process (Note [Lingering pins], cache_room)
            fast = key in self._pinned and bool(self._held.get(key))
            if fast:
                self._leases[key] += 1
        if fast:
            try:
                backing: Backing = self._state.backing(key)
            except KeyError:  # memory mode: evicted between our pin check and now (cannot happen
                fast = False  # while pinned; kept for safety)
                with self._mutex:
                    self._leases[key] -= 1
        if not fast:
            with self._mutex:  # counted before the wait: the pin it takes is never idle (a download
                self._leases[key] += 1  # pins its entry for us; watchdogs drop idle pins)
            try:
                backing = self._wait_ready(key, pin=True, timeout=timeout, wait_for_room=wait_for_room)
            except BaseException:
                self._end_lease(key)
                raise
            with self._mutex:
                self._pinned.add(key)
            watch_room(self)
        try:
            yield backing
        finally:
            self._end_lease(key)

    def _end_lease(self, key: str) -> None:
        with self._mutex:
            self._leases[key] -= 1
            if not self._leases[key]:
                del self._leases[key]

    def local_path(self, item: CacheItem | str, timeout: float | None = None) -> Backing:
        """Waits for an acquired ``item`` and returns its backing, unpinned (prefer ``lease``)."""
        return self._wait_ready(self._key_of_held(as_item(item).key), pin=False, timeout=timeout)

    def settle(self) -> None:
        """Waits until the downloads of entries this process no longer holds have stopped and deleted
        their temporary files (Note [Releases and downloads in flight])."""
        with self._changed:
            while any(not self._held.get(key) for key in self._downloading):
                self._changed.wait(_MAX_POLL_S)

    def cached_bytes(self) -> int:
        """Bytes of complete and in-progress entries in the cache (all processes sharing it)."""
        with self._state.locked() as files:
            return resident_bytes(files)

    def close(self) -> None:
        """Releases every reference this process holds and stops the download threads."""
        if os.getpid() != self._pid:
            return
        with self._mutex:
            held = dict(self._held)
            items = dict(self._items)
        for key, count in held.items():
            for _ in range(count):
                self.release(items[key])
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> VideoPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------
    def _where(self) -> str:
        return "memory" if self.cache_dir is None else str(self.cache_dir)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:  # a forked copy: the parent's threads and references are not ours
            self._start_process()
        if self._closed:
            raise RuntimeError(f"VideoPrefetcher({self._where()}) is closed")

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="lrs-prefetch")
        return self._executor

    def _key_of_held(self, key: str) -> str:
        with self._mutex:
            if not self._held.get(key):
                raise ValueError(f"{key}: not acquired by this process (call acquire() on admit)")
        return key

    def _wait_ready(
        self, key: str, *, pin: bool, timeout: float | None, wait_for_room: bool = True
    ) -> Backing:
        self._check_process()
        self._key_of_held(key)
        start = time.monotonic()
        try:
            deadline = None if timeout is None else start + timeout
            backing = self._ensure(key, True, pin, deadline, wait_for_room)
        finally:
            waited = time.monotonic() - start
            if waited > 0.001:
                with self._mutex:
                    self.stats.waits += 1
                    self.stats.wait_s += waited
        self._first_lease_done = True
        if backing is None:
            raise ValueError(f"{self._items.get(key, key)}: released while waiting for it")
        return backing

    def _ensure(
        self, key: str, demand: bool, pin: bool, deadline: float | None, wait_for_room: bool = True
    ) -> Backing | None:
        """Loops until ``key`` is complete in the cache (downloading it here when admitted)."""
        with self._mutex:
            item = self._items.get(key)
        if item is None:  # released before this (background) call started
            return None
        poll = _POLL_S
        bar = None
        room_waits = 0
        try:
            while True:
                if self._closed:
                    raise DownloadStopped
                self._raise_failure(key, demand)  # Note [Background prefetches]
                action, size, backing = next_action(self, key, demand, pin)
                if action == "ready":
                    return backing
                if action in ("gone", "done"):
                    return None
                if action == "size":
                    learn_size(self, key, item)
                    continue
                if action == "download":  # then the next look finds it ready (or gone)
                    download_entry(self, key, item, size, background=not demand)
                    continue
                if demand and action == "wait-room":  # Note [Lingering pins]: while a lease waits
                    drop_idle_pins(self)  # for room, this prefetcher pins only what is decoded
                    self._state.want_room()  # and so do the other processes
                    room_waits += 1
                    if not wait_for_room and room_waits > 1:  # Note [Leases of several entries]
                        raise NoRoomError(f"{item.url}: no room in the cache {self._where()} next to the "
                                          "entries this thread holds")  # fmt: skip
                    if room_waits == 1:
                        continue  # look again at once: the dropped pins may have made room
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{item.url}: not in the cache after waiting (cache {self._where()} holds "
                        f"{self.cached_bytes()} of max_bytes={self.max_bytes})"
                    )
                if demand and bar is None and size and self._show_progress():
                    bar = _progress_bar(item.url, size)
                if bar is not None:
                    bar.update(max(self._state.part_bytes(key) - bar.n, 0))
                with self._changed:
                    self._changed.wait(poll)
                poll = min(poll * 1.5, _MAX_POLL_S if demand else _MAX_BACKGROUND_POLL_S)
        finally:
            if bar is not None:
                bar.close()

    def _raise_failure(self, key: str, demand: bool) -> None:
        """Raises why a download of ``key`` gave up: the background's to a lease, a lease's to the
        background thread."""
        with self._mutex:
            failure = (self._failures if demand else self._lease_failures).get(key)
        if failure is not None:
            raise failure

    def _count_retry(self) -> None:
        with self._mutex:
            self.stats.retries += 1

    def _show_progress(self) -> bool:
        if self._first_lease_done:
            return False
        flag = os.environ.get("LRS_PROGRESS")
        if flag is not None:
            return flag not in ("0", "", "false")
        return bool(self._progress) if self._progress is not None else sys.stderr.isatty()


def _progress_bar(url: str, size: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    name = url.rsplit("/", 1)[-1]
    return tqdm(total=size, unit="B", unit_scale=True, desc=f"downloading {name}", leave=False)
