"""Room in the bounded prefetch cache: which download may start, what a demand evicts, which pins go.

The prefetcher (``lerobot_stream.remote.prefetch``) asks here, in its locked look at an entry,
whether the entry may start downloading now (``admit``: the ``max_concurrency`` and ``max_bytes``
rules, dropping unpinned complete entries for a demand), and keeps its pins from blocking others
while someone waits for room (``drop_idle_pins``, and ``watch_room``'s watchdog thread for waits in
other processes sharing the cache). Owns no state: ``admit`` changes the record it is given, the
pin functions the prefetcher's ``_pinned`` set and the shared record's pins.

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

Thread-safety: ``admit`` runs inside the cache record's lock (``CacheState.locked``), which its
caller holds; ``drop_idle_pins`` takes the record's lock, then the prefetcher's mutex, and may run
on any thread; ``watch_room`` starts at most one watchdog thread per prefetcher and process.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal

from lerobot_stream.remote.cache_state import CacheState, MemoryCacheState, resident_bytes

if TYPE_CHECKING:
    from lerobot_stream.remote.prefetch import VideoPrefetcher

__all__ = ["admit", "drop_idle_pins", "watch_room"]

_WATCH_S = 0.05  # how often a process holding pins looks whether another waits for room


def admit(
    files: dict[str, dict[str, Any]],
    key: str,
    *,
    demand: bool,
    max_bytes: int,
    max_concurrency: int,
    state: CacheState | MemoryCacheState,
) -> tuple[Literal["yes", "busy", "room"], int]:
    """Whether ``key`` may start downloading now: "yes", "busy" (too many downloads) or "room"
    (the bound), and how many referenced entries it evicted to make room (a demand only; their
    records go back to "queued" and ``state`` deletes their bytes); see Note [Cache bound and
    progress]."""
    if sum(r["status"] == "downloading" for r in files.values()) >= max_concurrency:
        return "busy", 0
    size = files[key]["size"] or 0  # a header's size is learned by its fetch
    used = resident_bytes(files)
    if used + size <= max_bytes:
        return "yes", 0
    droppable = (  # only a demand evicts
        sorted(
            (r["last_used"], k)
            for k, r in files.items()
            if k != key and r["status"] == "ready" and not r["pins"]
        )
        if demand
        else []
    )
    kept = used - sum(files[k]["size"] or 0 for _, k in droppable)
    if kept + size > max_bytes and not (kept == 0 and size > max_bytes):
        return "room", 0
    evicted = 0
    for _, victim in droppable:
        if used + size <= max_bytes:
            break
        files[victim]["status"] = "queued"
        state.delete(victim)
        used -= files[victim]["size"] or 0
        evicted += 1
    if size > max_bytes:
        warnings.warn(
            f"{files[key]['url']}: {size} bytes exceed the prefetch cache bound max_bytes="
            f"{max_bytes}; downloading it alone",
            RuntimeWarning,
            stacklevel=2,
        )
    return "yes", evicted


def drop_idle_pins(prefetcher: VideoPrefetcher) -> None:
    """Drops the prefetcher's shared pins of entries no thread of it is leasing right now (Note
    [Lingering pins])."""
    p = prefetcher
    if not _has_idle_pins(p):
        return
    with p._state.locked() as files:  # the record's lock first: no lease pins in between
        with p._mutex:
            idle = {k for k in p._pinned if not p._leases.get(k)}
            p._pinned -= idle
        for key in idle:
            if key in files:
                files[key]["pins"].pop(p._owner, None)


def watch_room(prefetcher: VideoPrefetcher) -> None:
    """Starts this process's watchdog (shared caches): while the prefetcher pins entries, it drops
    the idle pins whenever a lease of another process waits for room (Note [Lingering pins])."""
    p = prefetcher
    if not p._state.shared or p._watchdog is not None:
        return
    with p._mutex:
        if p._watchdog is not None:
            return
        p._watchdog = threading.Thread(target=_watch, args=(p,), name="lrs-room", daemon=True)
    p._watchdog.start()


def _watch(prefetcher: VideoPrefetcher) -> None:
    p = prefetcher
    state, pid = p._state, p._pid
    while not p._closed and os.getpid() == pid:
        time.sleep(_WATCH_S)
        if _has_idle_pins(p) and state.room_wanted():
            with contextlib.suppress(OSError):
                drop_idle_pins(p)


def _has_idle_pins(prefetcher: VideoPrefetcher) -> bool:
    """Whether the prefetcher pins an entry no thread of it is leasing right now."""
    with prefetcher._mutex:
        return any(not prefetcher._leases.get(k) for k in prefetcher._pinned)
