"""The video files a consumer's pooled episodes need: local paths, or remote files via the prefetcher.

The dataset calls three hooks (Note [Prefetch on admit]); for a local dataset they do nothing but
join paths. For a remote one:

    admit(episode)   when the episode enters the pool: acquire each camera's file (downloads start)
    local(ep, key)   around each decode: lease the file's local path (waits only if not downloaded)
    evict(episode)   when the episode leaves the pool: release its files (the last one deletes them)

Note [Prefetch on admit]
~~~~~~~~~~~~~~~~~~~~~~~~
v3 packs many episodes per video file, so a file is acquired once per pooled episode that uses it
and stays while any of them is pooled. With ``prefetch=False`` nothing starts on admit: the first
decode of an episode acquires its file and waits for the whole download (the "no prefetch"
baseline of the benchmark); it is still released on evict. ``close()`` (end of the iterator)
releases everything this consumer still holds, so the cache is empty once every consumer ends.

One instance per consumer (per process); the prefetcher underneath is thread-safe, and ``local``
may be called from several decode threads at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from lerobot_stream.metadata import DatasetMetadata
from lerobot_stream.prefetch import VideoPrefetcher

_DEFAULT_MAX_BYTES = 20 << 30


def default_cache_dir() -> Path:
    """``$LRS_CACHE_DIR``, else ``<tmp>/lerobot-stream-videos``: one per node, shared by its processes."""
    return Path(os.environ.get("LRS_CACHE_DIR") or Path(tempfile.gettempdir()) / "lerobot-stream-videos")


def default_max_bytes(cache_dir: Path) -> int:
    """20 GiB, or half the free space of ``cache_dir``'s disk when that is less."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return min(_DEFAULT_MAX_BYTES, shutil.disk_usage(cache_dir).free // 2)


class EpisodeVideoFiles:
    """Per-consumer bookkeeping of pooled episodes' video files; see Note [Prefetch on admit]."""

    def __init__(self, meta: DatasetMetadata, prefetcher: VideoPrefetcher | None, *, prefetch: bool) -> None:
        self._meta = meta
        self._prefetcher = prefetcher if not meta.data_location.is_local else None
        self._prefetch = prefetch
        self._held: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    @property
    def prefetcher(self) -> VideoPrefetcher | None:
        """The prefetcher (None for local datasets)."""
        return self._prefetcher

    def admit(self, episode_index: int) -> None:
        """The episode entered the pool: start downloading its files (remote, with prefetch)."""
        if self._prefetcher is not None and self._prefetch:
            self._acquire(episode_index)

    def evict(self, episode_index: int) -> None:
        """The episode left the pool: release the files it held."""
        with self._lock:
            urls = self._held.pop(episode_index, [])
        for url in urls:
            self._prefetcher.release(url)  # type: ignore[union-attr]

    @contextlib.contextmanager
    def local(self, episode_index: int, video_key: str) -> Iterator[str]:
        """The local path of ``video_key``'s file of the episode, valid inside the block."""
        rel = self._meta.get_video_file_path(episode_index, video_key)
        if self._prefetcher is None:
            yield str(self._meta.data_location.join(rel))
            return
        with self._lock:
            held = episode_index in self._held
        if not held:
            self._acquire(episode_index)
        with self._prefetcher.lease(self._meta.data_location.download_url(rel)) as path:
            yield str(path)

    def close(self) -> None:
        """Releases every file still held (the iterator ended or was abandoned)."""
        for episode in list(self._held):
            self.evict(episode)

    def _acquire(self, episode_index: int) -> None:
        with self._lock:
            if episode_index in self._held:
                return
            urls = [
                self._meta.data_location.download_url(self._meta.get_video_file_path(episode_index, key))
                for key in self._meta.video_keys
            ]
            for url in urls:  # under the lock: a concurrent local() must not lease before this
                self._prefetcher.acquire(url)  # type: ignore[union-attr]
            self._held[episode_index] = urls
