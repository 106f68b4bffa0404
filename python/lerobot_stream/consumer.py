"""A consumer's per-process resources and its sample loop (Note [Consumers and the episode pool] in
``lerobot_stream.dataset``).

``ConsumerRuntime`` is what one (rank, DataLoader worker) process holds while it iterates: the
parquet reader, the decoder cache (none when the decode stage decodes: Note [Decode stage requests]
in ``lerobot_stream.decode_stage``), the video files of pooled episodes
(``lerobot_stream.remote.video_files``), the shared frame blocks of a worker
(``lerobot_stream.shared_frames``) and the sample / batch builders. ``stream`` turns the C++
schedule into samples (or batches), admitting and evicting episodes as the schedule says. One per
process (a forked worker opens its own); not thread-safe.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lerobot_stream.batching import BatchBuilder
from lerobot_stream.decoding import DecoderCache, decode_parallelism
from lerobot_stream.remote.lookahead import DEFAULT_DEPTH as LOOKAHEAD_DEPTH
from lerobot_stream.remote.lookahead import EpisodeLookahead, consumer_order
from lerobot_stream.remote.prefetch import VideoPrefetcher
from lerobot_stream.remote.video_files import EpisodeVideoFiles, default_max_bytes
from lerobot_stream.sample import SampleBuilder
from lerobot_stream.shared_frames import BlockPool, FrameSlots, shared_blocks_supported
from lerobot_stream.tabular import EpisodeRows, TabularReader
from lerobot_stream.world import current_worker, in_worker_process

if TYPE_CHECKING:
    from lerobot_stream.dataset import StreamingLeRobotDataset

_SCHEDULE_CHUNK = 64


def dataset_video_files(
    ds: StreamingLeRobotDataset, *, prefetch: bool, fetch: bool = True
) -> EpisodeVideoFiles:
    """The holder of ``ds``'s episodes' video bytes for one process (Note [Prefetch on admit] in
    ``lerobot_stream.remote.video_files``): for a remote dataset with videos (and ``fetch``), over a
    ``VideoPrefetcher`` with the dataset's cache, bound, download threads and retry policy."""
    prefetcher = None
    if fetch and not ds.meta.data_location.is_local and ds.meta.video_keys:
        cache_dir = None if ds._video_in_memory else ds._video_cache_dir
        max_bytes = ds._video_cache_max_bytes or default_max_bytes(cache_dir)
        retry = asdict(ds._remote_retry)
        prefetcher = VideoPrefetcher(cache_dir, max_bytes, ds._video_prefetch_workers, **retry)
    return EpisodeVideoFiles(ds.meta, prefetcher, prefetch=prefetch, fetch=ds._video_fetch)


def freeze_inherited_objects() -> None:
    """Moves the objects a DataLoader worker starts with out of the garbage collector's sight.

    Note [Garbage collection in workers]
    ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    A worker inherits every object of the training process (torch's modules, the dataset's metadata):
    hundreds of thousands of tracked objects. Python's full collections walk all of them, triggered by
    allocation counts, and the sample loop allocates steadily (dicts, tensors, the remote cache's
    records): measured on a 2-camera dataset over HTTP, collections took about a fifth of a consumer's
    CPU. ``gc.freeze()`` (what CPython recommends for forked workers) moves the inherited objects to a
    permanent generation once, so later collections walk only what the worker itself allocates; it also
    stops the collector from writing to the inherited pages (copy-on-write). Only in workers: the
    training process's collector is left alone. No ``gc.collect()`` before it: in a forked child that
    runs the finalizers of the parent's garbage, and a finalizer that takes a lock another thread of the
    parent held at the fork (a C++ decoder's mutex, a prefetcher's) never returns (seen: both workers of
    a DataLoader hung there).
    """
    gc.freeze()


class ConsumerRuntime:
    """A consumer's per-process resources: parquet reader, decoder cache, sample builder."""

    def __init__(self, ds: StreamingLeRobotDataset) -> None:  # reads the dataset's settings
        self._ds = ds
        self.pid = os.getpid()
        if in_worker_process():
            freeze_inherited_objects()
        self.reader = TabularReader(ds.meta, tolerance_s=ds.tolerance_s)
        # With the decode stage, workers only emit frame requests: no decoders here.
        self.decoder = (
            None
            if ds.emits_frame_requests
            else DecoderCache(
                ds.decoder_cache_size,
                threads=ds._decode_threads,
                max_bytes=ds.decoder_cache_max_bytes,
                stash_bytes=ds.frame_stash_bytes,
            )
        )
        # With the decode stage the workers decode nothing: their prefetch only warms the node's disk
        # cache for the stage (Note [Stage leases] in lerobot_stream.stage_videos); an in-memory cache
        # would be this worker's own, so they fetch nothing then.
        fetch = not (ds.emits_frame_requests and ds._video_in_memory)
        self.videos = dataset_video_files(ds, prefetch=ds._prefetch_videos, fetch=fetch)
        _, num_workers = current_worker()
        consumers = num_workers * max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
        # Note [Shared frame blocks]: frames go to reused shared memory only from a worker.
        shared = (
            in_worker_process()
            and ds.meta.video_keys
            and not ds.emits_frame_requests
            and shared_blocks_supported()
        )
        self.blocks = BlockPool(max_free=len(ds.meta.video_keys)) if shared else None
        slots = None
        if self.blocks is not None and ds.batch_size is None and ds.image_transforms is None:
            slots = FrameSlots(self.blocks)
        self.builder = SampleBuilder(
            ds.meta,
            self.decoder,
            self.videos,
            delta_indices=ds.delta_indices,
            tolerance_s=ds.tolerance_s,
            return_uint8=ds._return_uint8,
            image_transforms=ds.image_transforms,
            depth_output_unit=ds.depth_output_unit,
            parallelism=decode_parallelism(len(ds.meta.video_keys), consumers),
            slots=slots,
        )
        self.batches = (
            None
            if ds.batch_size is None
            else BatchBuilder(self.builder, ds.batch_size, drop_last=ds.drop_last, pool=self.blocks)
        )

    def stats(self) -> dict[str, Any]:
        prefetcher = self.videos.prefetcher
        return {
            **({"decoder_cache": dict(self.decoder.stats())} if self.decoder is not None else {}),
            "frames_requested": self.builder.frames_requested,
            "tabular": self.reader.stats.as_dict(),
            **({"shared_blocks": self.blocks.stats()} if self.blocks is not None else {}),
            **({"prefetch": {**asdict(prefetcher.stats), **self.videos.stats()}} if prefetcher else {}),
        }

    def _chunk_size(self, batches: BatchBuilder | None, chunk: list[tuple[EpisodeRows, int]]) -> int:
        """Samples built together: a batch of the dataset's own, or of the plain DataLoader's once a
        worker knows its size (Note [Decode per DataLoader batch] in ``lerobot_stream.sample``); a
        chunk starts at a batch boundary. 1: sample by sample."""
        if batches is not None:
            return batches.batch_size
        slots = self.builder.slots
        if slots is None or not slots.batch_size or (not chunk and slots.begun % slots.batch_size):
            return 1
        return slots.batch_size

    def _build(self, batches: BatchBuilder | None, chunk: list[tuple[EpisodeRows, int]]) -> Iterator[Any]:
        if batches is not None:
            yield batches.build(chunk)
        else:
            yield from self.builder.build_many(chunk)

    def _evict(self, pool: dict[int, EpisodeRows], episode_pos: int) -> None:
        rows = pool.pop(episode_pos, None)
        if rows is not None:
            self.videos.evict(rows.episode_index)

    def stream(
        self,
        schedule: Any,
        batches: BatchBuilder | None = None,
        plan_slot: tuple[int, int, int] | None = None,
    ) -> Iterator[Any]:
        """Samples of ``schedule`` in order (or ``batches`` of them), loading admitted episodes' rows and
        freeing evicted ones once no pending batch needs them.

        ``plan_slot`` (epoch, role, num_workers) of a plain pass lets a remote consumer read ahead
        (Note [Look-ahead] in ``lerobot_stream.remote.lookahead``).
        """
        ds = self._ds
        remote = not ds.meta.data_location.is_local and ds._prefetch_videos
        depth = LOOKAHEAD_DEPTH if remote and plan_slot is not None else 0
        order = []
        if depth:
            order = consumer_order(ds._episode_lengths, ds.seed, ds.shuffle, plan_slot[0], ds.rank,
                                   ds.world_size, plan_slot[1], plan_slot[2])  # fmt: skip
        ahead = EpisodeLookahead(
            self.reader, self.videos, lambda pos: int(ds._selected_episodes[pos]), order, depth
        )
        schedule.take_admitted()
        schedule.take_evicted()
        if self.decoder is not None:
            self.decoder.begin_pass()  # a new pass: every frame of it is wanted once more
        if self.builder.slots is not None:
            self.builder.slots.restart()  # the DataLoader's batches start again here
        pool: dict[int, EpisodeRows] = {}
        chunk: list[tuple[EpisodeRows, int]] = []
        evicted: list[int] = []  # finished episodes still referenced by `chunk`
        try:
            for pos, _, _ in schedule.pool():
                pool[int(pos)] = ahead.admit(int(pos))
            while schedule.remaining > 0:
                positions, frames = schedule.next(_SCHEDULE_CHUNK)
                for pos, _, _ in schedule.take_admitted():
                    if int(pos) not in pool:
                        pool[int(pos)] = ahead.admit(int(pos))
                for pos, frame in zip(positions.tolist(), frames.tolist(), strict=True):
                    size = self._chunk_size(batches, chunk)
                    if size == 1 and batches is None:  # the dataset's own batch_size=1 is still a batch
                        yield self.builder.build(pool[pos], frame)
                        continue
                    chunk.append((pool[pos], frame))
                    if len(chunk) == size:
                        yield from self._build(batches, chunk)
                        chunk = []
                        for done in evicted:
                            self._evict(pool, done)
                        evicted = []
                for pos, _, _ in schedule.take_evicted():
                    if chunk:
                        evicted.append(int(pos))
                    else:
                        self._evict(pool, int(pos))
            if chunk and (batches is None or not batches.drop_last):
                yield from self._build(batches, chunk)
        finally:
            ahead.close()
            self.videos.close()  # the iterator ended or was dropped: release every remote file
