"""``StageVideos``: what the decode stage decodes for each request, and how long its bytes are held.

Note [Stage leases]
~~~~~~~~~~~~~~~~~~~
The decode stage (``lerobot_stream.decode_stage``) decodes in the training process what the
DataLoader workers only requested (episode and camera). For a local dataset a request's video is
the file's path. For a remote one it is the episode's bytes in the video cache (Note [Prefetch on
admit] in ``lerobot_stream.remote.video_files``): a ``ByteSource`` of the episode's segment, or a whole
file. The stage holds them through its own ``EpisodeVideoFiles``, with its own references in the
node-shared disk cache, so an entry that a worker prefetched when its episode entered the worker's
pool is found there, not downloaded again.

- A batch's distinct (episode, camera) videos are leased when the batch is submitted, and the
  leases end only once the batch has been taken from the C++ stage, that is once every one of its
  frames is decoded: a lease pins the bytes, so the cache cannot drop them under a decoder.
- An episode stays acquired (referenced, not pinned: the cache may still drop it under pressure)
  while pending batches use it and until ``keep`` other episodes were used after it (an episode
  is sampled across many batches; ``keep`` covers the workers' pools). Then it is released, and the
  node's last reference deletes its bytes.
- A lease never waits for room in the cache while this process's earlier batches hold leases
  that only the waiting thread could end (by taking those batches): that wait could last forever
  when the cache bound is below a few batches' bytes. So a lease that has not got its bytes after
  ``DRAIN_AFTER_S`` first lets the caller finish its oldest pending batch (``drain``: take it, end
  its leases), then waits again; with no batch pending it waits as a worker's lease does (Note
  [Cache bound and progress] in ``lerobot_stream.remote.cache_room``).
- At the end of a pass (the epoch ended, or the iterator was dropped) everything is released, so
  the cache is empty once the workers' iterators have ended too.

With ``video_cache="memory"`` the cache is each process's own: the workers, which decode nothing,
fetch no video bytes (``lerobot_stream.consumer``), and the stage fetches them.

Used by one thread (the one iterating the stage); not thread-safe.
"""

from __future__ import annotations

import contextlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lerobot_stream.consumer import dataset_video_files

if TYPE_CHECKING:
    from lerobot_stream.dataset import StreamingLeRobotDataset

DRAIN_AFTER_S = 0.5


class BatchLeases:
    """The leases of one submitted batch; ``release`` ends them (once)."""

    def __init__(self, owner: StageVideos, episodes: set[int]) -> None:
        self._owner = owner
        self._episodes = episodes
        self.stack = contextlib.ExitStack()
        self._released = False

    def release(self) -> None:
        """Ends the batch's leases (call once its frames are decoded)."""
        if self._released:
            return
        self._released = True
        try:
            self.stack.close()
        finally:
            self._owner._done(self._episodes)


class StageVideos:
    """The videos of the decode stage's requests (paths or ByteSources); see Note [Stage leases]."""

    def __init__(self, ds: StreamingLeRobotDataset, keep_episodes: int) -> None:
        self._videos = dataset_video_files(ds, prefetch=False)
        self._keep = max(int(keep_episodes), 0)
        self._users: Counter[int] = Counter()  # pending batches per episode
        self._idle: OrderedDict[int, None] = OrderedDict()  # acquired, unused; least recent first

    @property
    def remote(self) -> bool:
        """Whether the videos are fetched (a remote dataset), i.e. held in the video cache."""
        return self._videos.prefetcher is not None

    def stats(self) -> dict[str, Any]:
        """The stage's video cache counters (remote datasets), as a worker's ``stats()["prefetch"]``."""
        prefetcher = self._videos.prefetcher
        if prefetcher is None:
            return {}
        return {**asdict(prefetcher.stats), **self._videos.stats()}

    def hold(
        self, episodes: Mapping[str, Sequence[int]], drain: Callable[[], bool]
    ) -> tuple[list[list[Any]], BatchLeases]:
        """The video of every (camera key, sample): ``episodes[key][i]``'s, leased until the returned
        ``BatchLeases`` is released. ``drain()`` finishes the oldest pending batch of the caller and
        says whether there was one (Note [Stage leases])."""
        distinct = {int(e) for column in episodes.values() for e in column}
        for episode in distinct:
            self._users[episode] += 1
            self._idle.pop(episode, None)
        leases = BatchLeases(self, distinct)
        try:
            sources: dict[tuple[int, str], Any] = {}
            for key, column in episodes.items():
                for episode in column:
                    slot = (int(episode), key)
                    if slot not in sources:
                        sources[slot] = self._lease(leases.stack, *slot, drain)
        except BaseException:
            leases.release()
            raise
        return [[sources[(int(e), key)] for e in column] for key, column in episodes.items()], leases

    def close(self) -> None:
        """Releases every episode (the end of a pass); the holder can be used again."""
        self._users.clear()
        self._idle.clear()
        self._videos.close()

    def _lease(self, stack: contextlib.ExitStack, episode: int, key: str, drain: Callable[[], bool]) -> Any:
        timeout: float | None = DRAIN_AFTER_S
        while True:
            try:
                return stack.enter_context(self._videos.local(episode, key, timeout=timeout))
            except TimeoutError:
                if not drain():  # nothing of ours pending: wait as a worker's lease does
                    timeout = None

    def _done(self, episodes: set[int]) -> None:
        for episode in episodes:
            self._users[episode] -= 1
            if self._users[episode] <= 0:
                del self._users[episode]
                self._idle[episode] = None
        while len(self._idle) > self._keep:
            episode, _ = self._idle.popitem(last=False)
            self._videos.evict(episode)
