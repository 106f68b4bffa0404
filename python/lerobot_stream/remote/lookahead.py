"""``EpisodeLookahead``: start reading the next episodes of a consumer before they enter its pool.

Note [Look-ahead]
~~~~~~~~~~~~~~~~~
A consumer admits its episodes in a fixed order: its segments of the epoch plan
(``_core.EpochPlan.segments``; ``consumer_order`` computes it). Streaming from a remote dataset,
admitting an episode costs round trips: its rows (a parquet range request) and its video bytes (a
range request per camera). Done on admission, the consumer would stall for them once per episode,
and short episodes are admitted often. So when an episode is admitted, the next ``depth`` episodes
of the order start too: their video bytes are planned and acquired (``EpisodeVideoFiles.admit``:
downloads start in the background) and their rows are read by ``ROW_THREADS`` background threads,
each with its own ``TabularReader`` (readers are not thread-safe; parquet footers are cached per
process, so a reader costs no extra requests), so that round trips overlap. Their counters are
added to the consumer's reader's. The rows of at most ``depth`` episodes wait in memory; their video
bytes count in the cache like pooled episodes' (released when the episode leaves the pool, or at
``close``). Local datasets use ``depth=0``: rows are read on admission, on the consumer's thread,
as before.

One instance per consumer iterator; driven by one thread (the consumer's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from lerobot_stream import _core
from lerobot_stream.remote.video_files import EpisodeVideoFiles
from lerobot_stream.tabular import EpisodeRows, TabularReader, TabularStats

DEFAULT_DEPTH = 8
ROW_THREADS = 4


def consumer_order(
    lengths: Sequence[int],
    seed: int,
    shuffle: bool,
    epoch: int,
    rank: int,
    world_size: int,
    role: int,
    num_workers: int,
) -> list[int]:
    """Episode positions in the order the consumer (rank, worker ``role``) admits them in ``epoch``."""
    plan = _core.EpochPlan(lengths, seed, shuffle, world_size * max(num_workers, 1))
    consumer = _core.consumer_id(rank, world_size, role, num_workers)
    return [int(pos) for pos, _, _ in plan.segments(epoch, consumer)]


class EpisodeLookahead:
    """Rows and video bytes of the next ``depth`` episodes, started early; see Note [Look-ahead]."""

    def __init__(
        self,
        reader: TabularReader,
        videos: EpisodeVideoFiles,
        episode_of: Callable[[int], int],
        order: Sequence[int],
        depth: int,
    ) -> None:
        self._reader, self._videos, self._episode_of = reader, videos, episode_of
        self._order = list(order) if depth > 0 else []
        self._index = {pos: i for i, pos in enumerate(self._order)}
        self._depth = depth
        self._next = 0  # index in _order of the first episode not started yet
        self._started: dict[int, Future] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()  # each row thread's own reader
        self._stats_lock = threading.Lock()

    def admit(self, pos: int) -> EpisodeRows:
        """The rows of the episode at ``pos`` (entering the pool); starts the following ones."""
        if self._depth <= 0:
            episode = self._episode_of(pos)
            self._videos.admit(episode)
            return self._reader.read_episode(episode)
        index = self._index.get(pos, -1)
        self._next = max(self._next, index + 1)  # admission follows the order: earlier ones are done
        if pos not in self._started:
            self._start(pos)
        ahead = index + self._depth
        while self._next < len(self._order) and self._next <= ahead:
            if self._order[self._next] not in self._started:
                self._start(self._order[self._next])
            self._next += 1
        return self._started.pop(pos).result()

    def close(self) -> None:
        """Stops reading ahead (video bytes are released by ``EpisodeVideoFiles.close``)."""
        for future in self._started.values():
            future.cancel()
        self._started.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _start(self, pos: int) -> None:
        episode = self._episode_of(pos)
        self._videos.admit(episode)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(ROW_THREADS, thread_name_prefix="lrs-rows")
        self._started[pos] = self._executor.submit(self._read, episode)

    def _read(self, episode: int) -> EpisodeRows:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self._reader.fork()
        reader.stats = TabularStats()
        rows = reader.read_episode(episode)
        with self._stats_lock:
            self._reader.stats.add(reader.stats)
        return rows
