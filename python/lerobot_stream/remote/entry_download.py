"""One process's download of one prefetch cache entry: claim it, fetch it, commit it or give it up.

The download path of ``VideoPrefetcher`` (``lerobot_stream.remote.prefetch``), on the cache's shared
record (``lerobot_stream.remote.cache_state``):

    next_action(prefetcher, key, ...)    one locked look at the entry: ready, gone, done, size, wait,
                                         or "download" after claiming it (admitted by
                                         ``lerobot_stream.remote.cache_room.admit``)
    learn_size(prefetcher, key, item)    asks the server for the entry's size (HEAD)
    download_entry(prefetcher, ...)      fetches a claimed entry into its temporary ``.part`` file,
                                         size-checks and renames it into place (commit), or, after
                                         a failure or a release, deletes what it wrote and puts the
                                         record back to "queued"

Owns no state: these functions read and change the prefetcher's bookkeeping (``_downloading``,
``_pinned``, ``_background_done``, ``_failures``, ``_lease_failures``, ``stats``) and the shared
record.

Thread-safety: called from any thread of the prefetcher (lease callers and its download threads);
each takes the record's lock (``CacheState.locked``) before the prefetcher's mutex, like the rest
of the prefetcher.
"""

from __future__ import annotations

import contextlib
import time
from typing import IO, TYPE_CHECKING, NoReturn

from lerobot_stream.remote.cache_items import Backing, CacheItem, fetch_item
from lerobot_stream.remote.cache_room import admit, watch_room
from lerobot_stream.remote.cache_state import CacheWriteError, cache_write_error
from lerobot_stream.remote.download import fetch_size
from lerobot_stream.remote.retry import RemoteFileError

if TYPE_CHECKING:
    from lerobot_stream.remote.prefetch import VideoPrefetcher

__all__ = ["DownloadStopped", "download_entry", "learn_size", "next_action"]


class DownloadStopped(Exception):
    """Internal: the prefetcher was closed (or the entry released) while a download or wait ran."""


def next_action(
    prefetcher: VideoPrefetcher, key: str, demand: bool, pin: bool
) -> tuple[str, int, Backing | None]:
    """One locked look at ``key``: ready (pinned if asked), gone, done (a background prefetch of an
    entry that was complete), size, download (claimed) or wait."""
    p = prefetcher
    claimed = False
    try:
        with p._state.locked() as files:
            record = files.get(key)
            if record is None or p._owner not in record["refs"]:
                return "gone", 0, None
            if record["status"] == "ready" and not p._state.has(key):
                record["status"] = "queued"  # deleted behind our back: fetch it again
            if record["status"] == "ready":
                record["last_used"] = time.time()
                if pin:
                    record["pins"][p._owner] = 1  # one shared pin per prefetcher
                with p._mutex:
                    if p._held.get(key):
                        p._background_done.add(key)
                return "ready", record["size"], p._state.backing(key)
            if not demand and key in p._background_done:  # Note [Background prefetches] (prefetch.py)
                return "done", 0, None
            if record["size"] is None and record.get("kind") != "header":
                return "size", 0, None
            if record["status"] != "queued":
                return "wait", record["size"] or 0, None  # someone downloads it
            verdict, evicted = admit(
                files,
                key,
                demand=demand,
                max_bytes=p.max_bytes,
                max_concurrency=p.max_concurrency,
                state=p._state,
            )
            p.stats.evictions += evicted
            if verdict != "yes":
                return f"wait-{verdict}", record["size"] or 0, None
            record["status"] = "downloading"
            record["downloader"] = p._owner
            with p._mutex:  # in the lock: settle() sees the claim as soon as others do
                p._downloading.add(key)
            claimed = True
            return "download", record["size"] or 0, None
    except BaseException:
        if claimed:  # the record could not be saved: the claim never happened
            with p._changed:
                p._downloading.discard(key)
                p._changed.notify_all()
        raise


def learn_size(prefetcher: VideoPrefetcher, key: str, item: CacheItem) -> None:
    """Records the size of ``item``'s file (a HEAD request) if the record does not know it yet."""
    p = prefetcher
    size = fetch_size(item.url, p.policy, on_retry=p._count_retry)
    with p._state.locked() as files:
        record = files.get(key)
        if record is not None and record["size"] is None:
            record["size"] = size


def download_entry(
    prefetcher: VideoPrefetcher, key: str, item: CacheItem, size: int, *, background: bool
) -> None:
    """Downloads ``key``, which ``next_action`` claimed for this process, into the cache, pinned for
    the first lease (Note [Lingering pins] in ``lerobot_stream.remote.cache_room``); on any failure
    gives the claim up and raises."""
    p = prefetcher
    part: IO[bytes] | None = None

    def stop_if_released() -> None:  # nobody here wants it any more: stop downloading
        if p._closed or not p._held.get(key):
            raise DownloadStopped

    def on_bytes(n: int) -> None:
        stop_if_released()
        with p._mutex:
            p.stats.bytes_downloaded += n
            if item.kind == "header":
                p.stats.header_bytes += n
            elif item.kind == "range":
                p.stats.segment_bytes += n
            else:
                p.stats.file_bytes += n

    def on_retry() -> None:
        stop_if_released()
        p._count_retry()

    try:  # next_action() put the key in p._downloading when it claimed the download
        try:
            part = p._state.open_part(key, p._owner)
            fetch_item(item, part, size, p.policy, on_bytes, on_retry)
            written = p._state.finish(part)
        except OSError as err:
            _raise_write_error(p, item, err)
        with p._state.locked() as files:
            record = files.get(key)
            if record is None or record["downloader"] != p._owner or not record["refs"]:
                p._state.discard(key, p._owner, part)  # released (or taken over) meanwhile
                if record is not None and not record["refs"]:
                    del files[key]
            else:
                try:
                    p._state.commit(key, p._owner)
                except OSError as err:
                    _raise_write_error(p, item, err)
                record["size"] = written
                record["status"], record["downloader"] = "ready", None
                record["last_used"] = time.time()
                with p._mutex:  # pinned for our first lease (Note [Lingering pins]): no lookup
                    if p._held.get(key):
                        record["pins"][p._owner] = 1
                        p._pinned.add(key)
                        p._background_done.add(key)
    except BaseException as err:
        _give_up_download(p, key, part, err, background)
        raise
    finally:
        with p._changed:  # after the temporary file is gone (settle() waits for this)
            p._downloading.discard(key)
            p._changed.notify_all()
    watch_room(p)
    with p._changed:
        p.stats.downloads += 1
        p._changed.notify_all()


def _raise_write_error(prefetcher: VideoPrefetcher, item: CacheItem, err: OSError) -> NoReturn:
    """Raises a local write failure of ``item``'s download as ``CacheWriteError`` (Note [Writes on a
    full disk] in ``lerobot_stream.remote.cache_state``); remote errors as they are."""
    p = prefetcher
    if isinstance(err, (RemoteFileError, CacheWriteError)) or p.cache_dir is None:
        raise err
    path = p._state.part_path(item.key, p._owner)  # type: ignore[union-attr]
    raise cache_write_error(err, path, p.cache_dir, p.max_bytes, item.url) from err


def _give_up_download(
    prefetcher: VideoPrefetcher, key: str, part: IO[bytes] | None, err: BaseException, background: bool
) -> None:
    """Puts ``key`` back to "queued" after this process's download of it failed (or was stopped),
    deleting what it wrote; waiting leases of this process see ``err`` (background downloads)."""
    p = prefetcher
    # Our temporary file goes first (nobody else reads it): a lease that raises ``err`` below finds
    # nothing of this download left behind. If it cannot go (a cache directory made read-only
    # mid-run), the bookkeeping below must still happen: else the record stays "downloading" by a
    # live process and every lease of it waits forever. ``err`` is what the caller raises.
    with contextlib.suppress(OSError):
        p._state.discard(key, p._owner, part)
    if not isinstance(err, DownloadStopped):  # seen before the record goes back to "queued": by
        with p._mutex:  # waiting leases, or by the background thread (Note [Background prefetches])
            (p._failures if background else p._lease_failures)[key] = err
    with p._state.locked() as files:
        record = files.get(key)
        if record is not None and record["downloader"] == p._owner:
            record["status"], record["downloader"] = "queued", None
            with contextlib.suppress(OSError):
                p._state.delete(key)  # renamed before the record could say so
            if not record["refs"]:
                del files[key]
