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

Note [Refcounts shared by processes]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
References live in the cache directory's shared record (``lerobot_stream.remote.cache_state``), per
process, so DataLoader workers and ranks on one node that point at the same ``cache_dir`` share
downloads: a file is downloaded once, whoever acquires it first starts the download, and it is
deleted when the node's last reference goes. A crashed process's references are pruned by the
next operation of any other process (Note [Owners and crashed processes]). A download goes to a
temporary name, is size-checked and then renamed, so a complete-looking file is always whole.

Note [Cache bound and progress]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``max_bytes`` bounds the bytes of complete and in-progress entries in the cache; a download starts
only when its entry fits (entries are never written past the bound). Headers are the exception:
their size is known only once fetched (about 16 bytes per video frame), so they are let in without
reserving room and count toward the bound once complete. Background
prefetches simply wait for room. When the bound is smaller than the working set (the files of the
episodes in the pools), waiting alone could deadlock: every pooled file holds a reference, and the
decoder needs a file that cannot fit. So a *demand* (``lease``/``local_path`` of a file that is not
on disk) may drop referenced but unpinned complete files, least recently used first; they stay
referenced, go back to "queued" and are downloaded again when next leased. A lease pins its file
only while the caller decodes (but see Note [Lingering pins]), and a lease never waits while holding
another, so a demand waits only for downloads and decodes in progress and for consumers that are
not waiting themselves: it always makes progress (re-downloads are the price of a bound below the
working set). A single file larger than ``max_bytes`` is let
in alone, when nothing else is resident, with a warning. Downloads in flight on the node are
bounded by ``max_concurrency`` (one shared count). Decoders may keep a dropped file open: Linux
frees its blocks when they close it, so usage can exceed the bound by files open in decoders.

Note [Lingering pins]
~~~~~~~~~~~~~~~~~~~~~
Writing the shared record around every decode would cost milliseconds per frame, so a pin
outlives its lease: the prefetcher keeps one shared pin per entry it has leased, and later leases
of that entry take an in-process fast path (no lock, no I/O). The pin goes when the prefetcher
releases the entry, and while any lease of this prefetcher waits for room in the cache, every
idle pin (one no thread is decoding from right now) is dropped, at each turn of the wait: several
threads share one prefetcher (cameras decoded in parallel, the episode planner), so a pin kept by a
thread that finished its lease must not block another that waits. So when a lease waits for room,
a pinned entry is being decoded by a consumer that is not waiting, which keeps the progress
argument of Note [Cache bound and progress]. Other processes sharing the cache drop their idle
pins too: a waiting lease touches the directory's ``.room-wanted`` file, and every process that
pins entries runs a watchdog thread that looks at that file's age every 50 ms and then drops its
own idle pins (issue 14: a DataLoader worker blocked while the DataLoader waits for another
worker's batch runs none of our code, yet its lingering pins stopped that other worker for good).
(Waits for a download in flight or for a free download slot keep the pins: dropping them would
not help, and would cost every later lease a lookup.)

Note [Background prefetches]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``acquire`` starts a background thread that waits for room and downloads the entry. Its job ends
once the entry has been complete for this process, seen by any of its threads: an entry a demand
dropped meanwhile (Note [Cache bound and progress]) comes back only when next leased, never by a
background thread that woke late (issue 14: such a thread re-fetched a dropped video header while
the stage released everything, and its ``.part`` outlived ``close()``).

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
progress argument above (issue 14: two cameras, a bound that holds one camera's segment, hung
before the first sample): the held entry is pinned by a consumer that is itself waiting. So every
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
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from lerobot_stream.remote.cache_items import Backing, CacheItem, as_item, fetch_item
from lerobot_stream.remote.cache_state import (
    CacheState,
    CacheWriteError,
    MemoryCacheState,
    cache_write_error,
    new_record,
    owner_id,
    resident_bytes,
)
from lerobot_stream.remote.download import fetch_size
from lerobot_stream.remote.retry import RemoteFileError, RetryPolicy

__all__ = ["CacheItem", "NoRoomError", "PrefetchStats", "RemoteFileError", "VideoPrefetcher"]

_POLL_S = 0.02
_MAX_POLL_S = 0.1
# A background prefetch waits for this process's downloads (it is woken when one ends) or for
# another process's (noticed by polling): polling slowly costs nothing a decode waits for.
_MAX_BACKGROUND_POLL_S = 0.5
_WATCH_S = 0.05  # how often a process holding pins looks whether another waits for room


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
    evictions: int = 0  # referenced files dropped to make room (Note [Cache bound and progress])


class _Closed(Exception):
    """Internal: the prefetcher was closed while a download ran."""


class NoRoomError(RuntimeError):
    """A ``lease(..., wait_for_room=False)`` would have to wait for room in the cache (Note [Leases of
    several entries]): release the leases held and lease one entry at a time."""


class VideoPrefetcher:
    """A bounded, node-shared, refcounted download cache for remote video bytes.

    Where and how much:
        cache_dir: local directory; every process on the node using it shares its entries.
            ``None``: this process's memory (leases give ``bytes`` instead of paths).
        max_bytes: bound on the cache's bytes (Note [Cache bound and progress]).
    Network:
        max_concurrency: downloads in flight on the node.
        retries, backoff_s, max_backoff_s: retries of transient errors, exponential backoff with
            jitter (Note [Transient and permanent errors] in ``lerobot_stream.remote.download``).
        timeout_s: a read that stalls this long fails (and is retried).
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
        progress: bool | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.max_bytes = int(max_bytes)
        self.max_concurrency = int(max_concurrency)
        self.policy = RetryPolicy(retries, backoff_s, max_backoff_s, timeout_s)
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
        self._was_ready: set[str] = set()  # held keys seen complete (Note [Background prefetches])
        self._failures: dict[str, BaseException] = {}  # background downloads that gave up
        self._leases: Counter[str] = Counter()  # leases open now, per key
        self._pinned: set[str] = set()  # keys this prefetcher pins in the shared record
        self._executor: ThreadPoolExecutor | None = None
        self._watchdog: threading.Thread | None = None  # Note [Lingering pins]: other processes
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
                    self._was_ready.discard(key)  # a download of it in flight stops (on_bytes)
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
                    if not record["refs"] and record["status"] != "downloading":
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
        with self._mutex:  # fast path: already pinned by this process (Note [Lingering pins])
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
            self._watch_room()
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
                    raise _Closed
                if demand:  # the background download of this entry gave up: report why
                    self._raise_background_failure(key)
                action, size, backing = self._step(key, demand, pin)
                if action == "ready":
                    return backing
                if action in ("gone", "done"):
                    return None
                if action == "size":
                    self._learn_size(key, item)
                    continue
                if action == "download":
                    self._download(key, item, size, background=not demand)
                    continue
                if demand and action == "wait-room":  # Note [Lingering pins]: while a lease waits
                    self._drop_idle_pins()  # for room, this prefetcher pins only what is decoded
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

    def _drop_idle_pins(self) -> None:
        with self._mutex:
            if not any(not self._leases.get(k) for k in self._pinned):
                return
        with self._state.locked() as files:  # the record's lock first: no lease pins in between
            with self._mutex:
                idle = {k for k in self._pinned if not self._leases.get(k)}
                self._pinned -= idle
            for key in idle:
                if key in files:
                    files[key]["pins"].pop(self._owner, None)

    def _watch_room(self) -> None:
        """Starts this process's watchdog (shared caches): while this prefetcher pins entries, it drops
        the idle pins whenever a lease of another process waits for room (Note [Lingering pins])."""
        if not self._state.shared or self._watchdog is not None:
            return
        with self._mutex:
            if self._watchdog is not None:
                return
            self._watchdog = threading.Thread(target=self._watch, name="lrs-room", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        state, pid = self._state, self._pid
        while not self._closed and os.getpid() == pid:
            time.sleep(_WATCH_S)
            with self._mutex:
                idle = any(not self._leases.get(k) for k in self._pinned)
            if idle and state.room_wanted():
                with contextlib.suppress(OSError):
                    self._drop_idle_pins()

    def _raise_background_failure(self, key: str) -> None:
        with self._mutex:
            failure = self._failures.get(key)
        if failure is not None:
            raise failure

    def _step(self, key: str, demand: bool, pin: bool) -> tuple[str, int, Backing | None]:
        """One locked look at ``key``: ready (pinned if asked), gone, done (a background prefetch of an
        entry that was complete), size, download (claimed) or wait."""
        claimed = False
        try:
            with self._state.locked() as files:
                record = files.get(key)
                if record is None or self._owner not in record["refs"]:
                    return "gone", 0, None
                if record["status"] == "ready" and not self._state.has(key):
                    record["status"] = "queued"  # deleted behind our back: fetch it again
                if record["status"] == "ready":
                    record["last_used"] = time.time()
                    if pin:
                        record["pins"][self._owner] = 1  # one shared pin per prefetcher
                    with self._mutex:
                        if self._held.get(key):
                            self._was_ready.add(key)
                    return "ready", record["size"], self._state.backing(key)
                if not demand and key in self._was_ready:  # Note [Background prefetches]
                    return "done", 0, None
                if record["size"] is None and record.get("kind") != "header":
                    return "size", 0, None
                if record["status"] != "queued":
                    return "wait", record["size"] or 0, None  # someone downloads it
                verdict = self._admit(files, key, demand)
                if verdict != "yes":
                    return f"wait-{verdict}", record["size"] or 0, None
                record["status"] = "downloading"
                record["downloader"] = self._owner
                with self._mutex:  # in the lock: settle() sees the claim as soon as others do
                    self._downloading.add(key)
                claimed = True
                return "download", record["size"] or 0, None
        except BaseException:
            if claimed:  # the record could not be saved: the claim never happened
                with self._changed:
                    self._downloading.discard(key)
                    self._changed.notify_all()
            raise

    def _admit(self, files: dict[str, dict[str, Any]], key: str, demand: bool) -> str:
        """Whether ``key`` may start downloading now: "yes", "busy" (too many downloads) or "room"
        (the bound); see Note [Cache bound and progress]."""
        if sum(r["status"] == "downloading" for r in files.values()) >= self.max_concurrency:
            return "busy"
        size = files[key]["size"] or 0  # a header's size is learned by its fetch
        used = resident_bytes(files)
        if used + size <= self.max_bytes:
            return "yes"
        droppable = sorted(
            (r["last_used"], k)
            for k, r in files.items()
            if k != key and r["status"] == "ready" and not r["pins"]
        )
        if not demand:
            droppable = []
        kept = used - sum(files[k]["size"] or 0 for _, k in droppable)
        if kept + size > self.max_bytes and not (kept == 0 and size > self.max_bytes):
            return "room"
        for _, victim in droppable:
            if used + size <= self.max_bytes:
                break
            files[victim]["status"] = "queued"
            self._state.delete(victim)
            used -= files[victim]["size"] or 0
            self.stats.evictions += 1
        if size > self.max_bytes:
            warnings.warn(
                f"{files[key]['url']}: {size} bytes exceed the prefetch cache bound max_bytes="
                f"{self.max_bytes}; downloading it alone",
                RuntimeWarning,
                stacklevel=2,
            )
        return "yes"

    def _learn_size(self, key: str, item: CacheItem) -> None:
        size = fetch_size(item.url, self.policy, on_retry=self._count_retry)
        with self._state.locked() as files:
            record = files.get(key)
            if record is not None and record["size"] is None:
                record["size"] = size

    def _download(self, key: str, item: CacheItem, size: int, *, background: bool) -> None:
        part: IO[bytes] | None = None

        def stop_if_released() -> None:  # nobody here wants it any more: stop downloading
            if self._closed or not self._held.get(key):
                raise _Closed

        def on_bytes(n: int) -> None:
            stop_if_released()
            with self._mutex:
                self.stats.bytes_downloaded += n
                if item.kind == "header":
                    self.stats.header_bytes += n
                elif item.kind == "range":
                    self.stats.segment_bytes += n
                else:
                    self.stats.file_bytes += n

        def on_retry() -> None:
            stop_if_released()
            self._count_retry()

        try:  # _step() put the key in self._downloading when it claimed the download
            try:
                part = self._state.open_part(key, self._owner)
                fetch_item(item, part, size, self.policy, on_bytes, on_retry)
                written = self._state.finish(part)
            except OSError as err:
                self._raise_write_error(item, err)
            with self._state.locked() as files:
                record = files.get(key)
                if record is None or record["downloader"] != self._owner or not record["refs"]:
                    self._state.discard(key, self._owner, part)  # released (or taken over) meanwhile
                    if record is not None and not record["refs"]:
                        del files[key]
                else:
                    try:
                        self._state.commit(key, self._owner)
                    except OSError as err:
                        self._raise_write_error(item, err)
                    record["size"] = written
                    record["status"], record["downloader"] = "ready", None
                    record["last_used"] = time.time()
                    with self._mutex:  # pinned for our first lease (Note [Lingering pins]): no lookup
                        if self._held.get(key):
                            record["pins"][self._owner] = 1
                            self._pinned.add(key)
                            self._was_ready.add(key)
        except BaseException as err:
            self._give_up_download(key, part, err, background)
            raise
        finally:
            with self._changed:  # after the temporary file is gone (settle() waits for this)
                self._downloading.discard(key)
                self._changed.notify_all()
        self._watch_room()
        with self._changed:
            self.stats.downloads += 1
            self._changed.notify_all()

    def _raise_write_error(self, item: CacheItem, err: OSError) -> NoReturn:
        """Raises a local write failure of ``item``'s download as ``CacheWriteError`` (Note [Writes on a
        full disk] in ``lerobot_stream.remote.cache_state``); remote errors as they are."""
        if isinstance(err, (RemoteFileError, CacheWriteError)) or self.cache_dir is None:
            raise err
        path = self._state.part_path(item.key, self._owner)  # type: ignore[union-attr]
        raise cache_write_error(err, path, self.cache_dir, self.max_bytes, item.url) from err

    def _give_up_download(
        self, key: str, part: IO[bytes] | None, err: BaseException, background: bool
    ) -> None:
        """Puts ``key`` back to "queued" after this process's download of it failed (or was stopped),
        deleting what it wrote; waiting leases of this process see ``err`` (background downloads)."""
        if background and not isinstance(err, _Closed):  # seen by waiting leases before the record
            with self._mutex:  # goes back to "queued"
                self._failures[key] = err
        with self._state.locked() as files:
            record = files.get(key)
            if record is not None and record["downloader"] == self._owner:
                record["status"], record["downloader"] = "queued", None
                self._state.delete(key)  # renamed before the record could say so
                if not record["refs"]:
                    del files[key]
            self._state.discard(key, self._owner, part)

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
