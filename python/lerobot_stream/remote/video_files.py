"""The video bytes a consumer's pooled episodes need: local files, or remote episode segments.

The dataset calls three hooks (Note [Prefetch on admit]); for a local dataset they do nothing but
join paths. For a remote one:

    admit(episode)   the episode entered the pool: plan and start fetching its bytes per camera
    local(ep, key)   around each decode: what to decode (a ByteSource of the episode's segment,
                     or a whole file's path); waits only if its bytes have not arrived
    evict(episode)   the episode left the pool: release its bytes (the last release deletes them)

Note [Prefetch on admit]
~~~~~~~~~~~~~~~~~~~~~~~~
With ``fetch="ranges"`` (the default), admitting an episode plans each camera in the background:
the file's index (Note [Header entries] in ``lerobot_stream.remote.video_headers``) gives the byte range
of the episode's samples (Note [Episode byte ranges] in ``lerobot_stream.remote.video_index``), which is
acquired from the prefetcher as a segment entry and downloads with one range request. Disk use is
then about the pooled episodes' size, not their files'. A decode builds a ``ByteSource`` of the
file's header pieces (in memory) and the segment (its cache file, or bytes in memory mode) and
decodes exactly the frames the whole file would give. With ``fetch="whole_files"`` (and for files
that cannot be read by ranges: Note [Whole-file fallback]) an episode acquires its whole video
files instead, held while any pooled episode uses them. With ``prefetch=False`` nothing starts on
admit: the first decode of an episode plans it and waits for its bytes (the "no prefetch" baseline
of the benchmark); it is still released on evict. ``close()`` (end of the iterator) releases
everything this consumer still holds, so the cache is empty once every consumer ends.

A decode does not queue behind the background planner: it plans the camera itself when nobody has
started to (a plan is made once: a thread asking for a slot being planned waits for that plan,
which takes a cached index lookup and an acquire, or the file's header download), so a consumer
waits only for downloads (Note [Cache bound and progress] in ``lerobot_stream.remote.cache_room``). No lock
is held across network or cache-record I/O.

One instance per consumer (per process); the prefetcher underneath is thread-safe, and ``local``
may be called from several decode threads at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lerobot_stream.metadata import DatasetMetadata
from lerobot_stream.remote.cache_items import CacheItem
from lerobot_stream.remote.cache_state import CacheState
from lerobot_stream.remote.prefetch import NoRoomError, VideoPrefetcher
from lerobot_stream.remote.video_headers import VideoHeaders
from lerobot_stream.remote.video_index import FileIndex, Segment
from lerobot_stream.validation import check_segment_frames

FetchMode = Literal["ranges", "whole_files"]
FETCH_MODES = ("ranges", "whole_files")
_DEFAULT_MAX_BYTES = 20 << 30
_DEFAULT_MEMORY_MAX_BYTES = 2 << 30


def default_cache_dir() -> Path:
    """``$LRS_CACHE_DIR``, else ``<tmp>/lerobot-stream-videos``: one per node, shared by its processes."""
    return Path(os.environ.get("LRS_CACHE_DIR") or Path(tempfile.gettempdir()) / "lerobot-stream-videos")


def default_max_bytes(cache_dir: Path | None) -> int:
    """On disk: 20 GiB, or half the free space of ``cache_dir``'s disk when less. In memory: 2 GiB."""
    if cache_dir is None:
        return _DEFAULT_MEMORY_MAX_BYTES
    cache_dir.mkdir(parents=True, exist_ok=True)
    return min(_DEFAULT_MAX_BYTES, shutil.disk_usage(cache_dir).free // 2)


_swept_at_exit: set[Path] = set()


def check_cache_dir(cache_dir: Path) -> None:
    """Creates ``cache_dir`` and checks that files can be written there; ValueError naming the
    ``video_cache_dir`` option and the path otherwise (at construction, not at the first batch)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=cache_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"video_cache_dir={str(cache_dir)!r} is not a writable directory ({err.strerror or err}): "
            "pass video_cache_dir= a writable local directory (or $LRS_CACHE_DIR), or video_cache='memory'"
        ) from None


def sweep_at_exit(cache_dir: Path) -> None:
    """When this process exits, drop what dead processes left in ``cache_dir`` (a DataLoader worker
    killed mid-epoch cannot release its entries; Note [Owners and crashed processes])."""
    if cache_dir in _swept_at_exit:
        return
    _swept_at_exit.add(cache_dir)
    pid = os.getpid()

    def sweep() -> None:
        if os.getpid() == pid and cache_dir.is_dir():
            with contextlib.suppress(OSError):
                CacheState(cache_dir).sweep_orphans()

    # After multiprocessing's exit handler has terminated and joined the DataLoader's (daemonic)
    # workers, so that their references are those of dead processes (an atexit hook runs before).
    multiprocessing.util.Finalize(None, sweep, exitpriority=-10)


@dataclass
class _Plan:
    """What one camera of one pooled episode holds in the prefetcher."""

    item: CacheItem
    index: FileIndex | None = None  # None: the whole file
    segment: Segment | None = None
    source: Any = None  # the ByteSource, built at the first decode


class EpisodeVideoFiles:
    """Per-consumer bookkeeping of pooled episodes' video bytes; see Note [Prefetch on admit]."""

    def __init__(
        self,
        meta: DatasetMetadata,
        prefetcher: VideoPrefetcher | None,
        *,
        prefetch: bool,
        fetch: FetchMode = "ranges",
        headers: VideoHeaders | None = None,
    ) -> None:
        if fetch not in FETCH_MODES:
            raise ValueError(f"video fetch mode must be one of {FETCH_MODES}, got {fetch!r}")
        self._meta = meta
        self._prefetcher = prefetcher if not meta.data_location.is_local else None
        self._prefetch = prefetch
        self.mode: FetchMode = fetch
        self._headers = None
        if self._prefetcher is not None and fetch == "ranges":
            self._headers = headers or VideoHeaders(self._prefetcher)
        self._admitted: set[int] = set()
        self._plans: dict[tuple[int, str], _Plan] = {}
        self._making: dict[tuple[int, str], threading.Event] = {}  # plans being made
        self._planner: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._local_paths: dict[tuple[int, str], str] = {}

    @property
    def prefetcher(self) -> VideoPrefetcher | None:
        """The prefetcher (None for local datasets)."""
        return self._prefetcher

    def stats(self) -> dict[str, Any]:
        """Fetch mode and header counters (see Note [Whole-file fallback])."""
        headers = self._headers.stats if self._headers is not None else None
        return {
            "mode": self.mode,
            "whole_file_fallbacks": headers.whole_file_fallbacks if headers else 0,
            "headers_loaded": headers.loaded if headers else 0,
        }

    def admit(self, episode_index: int) -> None:
        """The episode entered the pool: plan and start fetching its bytes (remote, with prefetch)."""
        if self._prefetcher is None or not self._prefetch:
            return
        with self._lock:
            self._admitted.add(episode_index)
            if self._planner is None:
                self._planner = ThreadPoolExecutor(2, thread_name_prefix="lrs-plan")
            planner = self._planner
        future: Future = planner.submit(self._plan_episode, episode_index)
        future.add_done_callback(_ignore_failure)  # a decode plans again and raises the error

    def evict(self, episode_index: int) -> None:
        """The episode left the pool: release the bytes it held."""
        with self._lock:
            self._admitted.discard(episode_index)
            items = [self._plans.pop(k).item for k in list(self._plans) if k[0] == episode_index]
        if items:
            self._prefetcher.release(*items)  # type: ignore[union-attr]

    @contextlib.contextmanager
    def local(self, episode_index: int, video_key: str, timeout: float | None = None) -> Iterator[Any]:
        """What to decode for ``video_key`` of the episode (a path or a ByteSource), valid in the block.

        ``timeout``: seconds to wait for the bytes (TimeoutError after; they stay acquired).
        """
        if self._prefetcher is None:
            yield self._local_path(episode_index, video_key)
            return
        plan = self._admitted_plan(episode_index, video_key)
        with self._prefetcher.lease(plan.item, timeout=timeout) as backing:
            yield self._decodable(plan, backing)

    @contextlib.contextmanager
    def local_all(self, slots: list[tuple[int, str]]) -> Iterator[list[Any] | None]:
        """What to decode for every (episode, key) of ``slots`` at once, valid in the block; None when
        the cache cannot hold them together now (Note [Leases of several entries] in
        ``lerobot_stream.remote.prefetch``): then decode them one at a time with ``local``."""
        if self._prefetcher is None or len(slots) == 1:
            with contextlib.ExitStack() as held:
                yield [held.enter_context(self.local(ep, key)) for ep, key in slots]
            return
        plans = [self._admitted_plan(ep, key) for ep, key in slots]  # planned before any lease is held
        with contextlib.ExitStack() as held:
            try:
                backings = [
                    held.enter_context(self._prefetcher.lease(plan.item, wait_for_room=i == 0))
                    for i, plan in enumerate(plans)
                ]
            except NoRoomError:
                backings = None
                held.close()  # release the leases held before decoding one at a time
            yield (
                None
                if backings is None
                else [self._decodable(p, b) for p, b in zip(plans, backings, strict=True)]
            )

    def _admitted_plan(self, episode_index: int, video_key: str) -> _Plan:
        with self._lock:
            self._admitted.add(episode_index)  # prefetch=False: the first decode admits
        plan = self._plan(episode_index, video_key)
        assert plan is not None
        return plan

    def close(self) -> None:
        """Releases everything still held (the iterator ended or was abandoned)."""
        with self._lock:
            planner, self._planner = self._planner, None
            self._admitted.clear()
        if planner is not None:
            planner.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            plans, self._plans = self._plans, {}
        if plans:
            self._prefetcher.release(*(plan.item for plan in plans.values()))  # type: ignore[union-attr]
        if self._headers is not None:
            self._headers.close()
        if self._prefetcher is not None:  # the released entries' downloads in flight end here
            self._prefetcher.settle()

    # --- internals ------------------------------------------------------------------------------
    def _local_path(self, episode_index: int, video_key: str) -> str:
        """The video file of a local dataset's episode (asked per sample: joining paths costs
        ~25 us, so it is made once per episode and camera)."""
        slot = (episode_index, video_key)
        path = self._local_paths.get(slot)
        if path is None:
            if len(self._local_paths) > 65536:
                self._local_paths.clear()
            location = self._meta.get_video_file_path(episode_index, video_key)
            path = self._local_paths[slot] = str(self._meta.data_location.join(location))
        return path

    def _plan_episode(self, episode_index: int) -> None:
        for key in self._meta.video_keys:
            if self._plan(episode_index, key) is None:
                return  # evicted meanwhile

    def _plan(self, episode_index: int, video_key: str) -> _Plan | None:
        """The plan of one camera of an admitted episode, made (and its bytes acquired) once.

        One thread makes a slot's plan, without holding the lock while it reads the file's index or
        acquires (decodes of other slots go on); another thread asking for the same slot waits for
        it. None: the episode was evicted (or never admitted).
        """
        slot = (episode_index, video_key)
        while True:
            with self._lock:
                plan = self._plans.get(slot)
                if plan is not None or episode_index not in self._admitted:
                    return plan
                making = self._making.get(slot)
                if making is None:
                    making = self._making[slot] = threading.Event()
                    break
            making.wait()  # the maker always sets it (finally below): look again
        try:
            plan = self._make_plan(episode_index, video_key)
            self._prefetcher.acquire(plan.item)  # type: ignore[union-attr]
            with self._lock:
                evicted = episode_index not in self._admitted
                if not evicted:
                    self._plans[slot] = plan
            if evicted:
                self._prefetcher.release(plan.item)  # type: ignore[union-attr]
                return None
            return plan
        finally:
            with self._lock:
                self._making.pop(slot, None)
            making.set()

    def _make_plan(self, episode_index: int, video_key: str) -> _Plan:
        url = self._meta.data_location.download_url(self._meta.get_video_file_path(episode_index, video_key))
        index = self._headers.get(url) if self._headers is not None else None
        if index is None:
            return _Plan(CacheItem.whole_file(url))
        row = self._meta.episode_row(episode_index)
        where = self._meta.videos[video_key]
        begin_s, end_s = float(where.from_timestamp[row]), float(where.to_timestamp[row])
        segment = index.segment(begin_s, end_s, self._meta.fps)
        num, den = index.time_base
        file_end_s = lambda: float(index.pts.max()) * (num / den)  # noqa: E731 (for the message only)
        check_segment_frames(self._meta, segment.frames, file_end_s, episode_index, video_key, url)
        return _Plan(CacheItem.byte_range(url, segment.begin, segment.end), index, segment)

    def _decodable(self, plan: _Plan, backing: Path | bytes) -> Any:
        """A path (whole file on disk), or a ByteSource (a segment, or a whole file in memory)."""
        if plan.source is not None:
            return plan.source
        if plan.index is None or plan.segment is None:
            if isinstance(backing, Path):
                return str(backing)
            from lerobot_stream import _core

            source = _core.ByteSource(plan.item.url, len(backing), [(0, len(backing), backing, 0)])
        else:
            source = plan.index.source(plan.segment, backing)
        plan.source = source  # reused while the episode is pooled (a racing thread builds an equal one)
        return source


def _ignore_failure(future: Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: the decode that needs the plan makes it again and raises
