"""``StreamingLeRobotDataset``: a drop-in, exact-resume replacement for lerobot 0.6's streaming dataset.

Note [Consumers and the episode pool]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A consumer is one (rank, DataLoader worker). Each epoch the C++ core (``_core.ConsumerSchedule``)
permutes the selected episodes from (seed, epoch) and gives every consumer the same number of
frames, so that every frame is emitted exactly once per epoch across all consumers (except fewer
than ``num_consumers`` frames, a remainder that changes from epoch to epoch) and DDP ranks never
wait on each other. A consumer holds the whole tabular rows of ``episode_pool_size`` admitted
episodes in RAM, emits random frames across them without replacement, evicts an exhausted episode
and admits the next. Video is decoded only when a sample is emitted (decode-on-exit), through one
LRU decoder cache per consumer. This module does parquet I/O and glue; the core does the order.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lerobot_stream import _core
from lerobot_stream.consumer import ConsumerRuntime
from lerobot_stream.decode_stage import check_stage_dataset, make_loader, wants_decode_stage
from lerobot_stream.decoding import default_decoder_cache_capacity, frame_stash_bytes_for
from lerobot_stream.depth import check_depth_unit, warn_missing_units
from lerobot_stream.elastic import (
    FirstPass,
    Layout,
    advance,
    fill_layout,
    first_pass,
    normalize,
    phase_tuples,
)
from lerobot_stream.metadata import DatasetMetadata, load_metadata
from lerobot_stream.remote.retry import RetryPolicy
from lerobot_stream.remote.video_files import (
    FETCH_MODES,
    FetchMode,
    check_cache_dir,
    default_cache_dir,
    sweep_at_exit,
)
from lerobot_stream.state import (
    INT64_MAX,
    UINT64_MAX,
    EpochCounters,
    ResumeState,
    dataset_fingerprint,
    whole_number,
)
from lerobot_stream.windows import check_delta_timestamps, delta_indices
from lerobot_stream.world import current_worker, in_worker_process, resolve_rank_world

# Open decoders' estimated memory per consumer; lerobot's unbounded cache reached 35 GB per worker.
DEFAULT_DECODER_CACHE_MAX_BYTES = 1 << 30


class StreamingLeRobotDataset(torch.utils.data.IterableDataset):
    """Streams a local LeRobot v3 dataset: samples equal ``LeRobotDataset[i]``, exact resume.

    The first arguments are lerobot 0.6's, in the same order, so existing code keeps working.

    What to read:
        repo_id, root, revision: the dataset: a local directory, or a URL streamed without downloading
            it whole (``http(s)://``, ``hf://datasets/<org>/<name>`` at ``revision``, ``s3://``); ``root``
            defaults to ``$HF_LEROBOT_HOME/<repo_id>``, else the Hub (see ``lerobot_stream.remote.location``).
        data_files_root: where ``data/`` and ``videos/`` are read from when they are not next to
            ``meta/`` (a local directory or a URL, e.g. ``hf://buckets/<org>/<name>``); metadata still
            comes from ``root`` / ``repo_id``.
        episodes: episode indices to use (default: all). Unknown indices raise ValueError.

    What a sample holds:
        delta_timestamps: ``{feature: [seconds, ...]}`` windows; offsets must be multiples of 1/fps
            within ``tolerance_s``. Windows outside the episode repeat its edge frame and set
            ``<feature>_is_pad``, as lerobot's map-style dataset does (no length limit).
        tolerance_s: how far a decoded frame may be from the requested time.
        image_transforms: applied to every camera tensor except depth maps, as lerobot does.
        return_uint8: uint8 CHW video frames instead of float32 in [0, 1] (as in lerobot, ``image``
            features stay float32 and depth maps are float32 in ``depth_output_unit``).
        depth_output_unit: ``"mm"`` or ``"m"``: the unit of depth-map cameras (videos are dequantized
            from their 12-bit codes, images converted from their recorded unit; ``lerobot_stream.depth``).

    Order:
        seed, shuffle: episode permutation and within-pool order from (seed, epoch, rank, worker);
            ``shuffle=False`` emits episodes in index order and frames in order.
        episode_pool_size: whole episodes each consumer keeps in RAM and samples across.
        rank, world_size: override the detected distributed setup (see ``lerobot_stream.world``).

    Remote video (Note [Prefetch on admit] in ``lerobot_stream.remote.video_files``):
        video_fetch: ``"ranges"`` (default): each pooled episode fetches only its own byte range of
            each camera's file, after the file's index (read once per node); ``"whole_files"``: whole
            video files, as before. Files that cannot be read by ranges fall back to whole files with
            a warning, counted in ``stats()["prefetch"]["whole_file_fallbacks"]``.
        prefetch_videos: fetch an episode's video bytes in the background when it enters the pool
            (False: the first decode of an episode waits for them).
        video_prefetch_workers: downloads in flight on the node.
        video_cache: ``"disk"`` (default): a cache directory shared by every process of the node;
            ``"memory"``: this process's memory (machines without local disk; not shared).
        video_cache_dir, video_cache_max_bytes: the disk cache and its bound (default
            ``$LRS_CACHE_DIR`` or ``<tmp>/lerobot-stream-videos``; 20 GiB or half the free disk);
            in memory, the bound per process (default 2 GiB).
        remote_retry: ``RetryPolicy`` of every remote read (retries, backoff, stall timeout); a
            server that stays unreachable raises ``ServerUnreachableError`` naming the URL.

    Decoding:
        video_decode_device: ``"cpu"`` (default: workers decode) or ``"cuda"`` / ``"cuda:N"``: the
            training process decodes on the GPU; iterate ``ds.dataloader(...)``, whose batches carry
            GPU camera tensors (a plain ``DataLoader(ds)`` yields frame requests instead; Note [Decode
            stage requests]). No usable GPU raises ``CudaUnavailableError`` with ``cuda_info()``'s reason.
        video_decode_stage: decode in the training process's C++ decode stage (default: for CUDA only;
            with ``"cpu"``: the same samples, bitwise, decoded by C++ threads of the training process).
        cuda_backend: ``"auto"``, ``"nvdec"`` or ``"cpu->cuda"`` (``lerobot_stream.decoding``).
        decoder_cache_size (alias ``video_decoder_cache_size``): open video decoders per consumer,
            default ``min((episode_pool_size + 1) * num_cameras, 128)``, twice that for a remote dataset
            read by episode ranges (a decoder per pooled episode's segment, not per file).
        decoder_cache_max_bytes: bound on those decoders' estimated memory per consumer (default
            1 GiB; ``None`` bounds by count only).
        frame_stash_bytes: keep decoded frames a consumer's later samples will ask for (frames decoded
            on the way to another, and the rest of a GOP before a seek leaves it) in up to this many
            bytes of YUV frames per consumer, so random access decodes most frames once per epoch
            instead of about 1.5 times, keyframes included (Note [Frame stash] in
            ``cpp/av/frame_stash.h``). The whole gain needs about a quarter of a consumer's pooled
            frames per camera at the peak, more with few or rotating episodes (``"auto"`` sizes it at a
            third, from ``episode_pool_size``, the mean episode length, the consumers and the cameras'
            frame size: ``frame_stash_bytes_for``; e.g. 0.51 GiB
            for 2 cameras of 480x640 and 1,800 pooled frames); a smaller budget gains less, and a pool of
            many long episodes needs GBs (bench/README.md, "Frame stash"). Samples are bitwise the same.
            ``None`` (default): keep none. CPU decoding in workers only.
        decode_threads: libav threads per decoder. A sample's cameras decode in parallel only when
            cores are idle: ``cores // (DataLoader workers x $LOCAL_WORLD_SIZE)`` threads per consumer
            (see ``lerobot_stream.decoding.decode_parallelism``).

    Batches (Note [Shared batch blocks] in ``lerobot_stream.batching``):
        batch_size: yield whole batches of this many samples instead of samples, for
            ``DataLoader(ds, batch_size=None, num_workers=W)``: the same batches, in the same order, as
            ``DataLoader(ds_without_batch_size, batch_size=batch_size, num_workers=W)`` (resume included),
            with camera frames decoded straight into the batch and handed to the main process without
            a copy. ``None`` (default): samples, for the usual ``DataLoader(ds, batch_size=...)``.
        drop_last: with ``batch_size``, drop each worker's last incomplete batch (as the DataLoader's
            ``drop_last`` does).

    Camera features may be videos (RGB or depth maps) or ``image`` features (PNG/JPEG/TIFF bytes in the
    data parquet, ``lerobot_stream.images``); all are decoded only when a sample is emitted.

    Accepted for compatibility and ignored: ``force_cache_sync``, ``streaming``, ``token`` (set
    ``$HF_TOKEN``); ``buffer_size`` (warns:
    ``episode_pool_size`` replaced it), ``rng`` (warns: use ``seed``), ``max_num_shards`` (warns: work
    is split by frames across all consumers, not by parquet shards).

    Length: ``len(ds)`` is the number of samples (with ``batch_size``: batches) this rank emits per epoch
    when the DataLoader has
    ``num_workers`` workers (constructor hint, default 1; 0 counts as 1). With another worker count
    the true count differs by fewer than max(hint, actual workers) samples: each epoch leaves out
    ``num_frames mod (world_size * workers)`` frames so that every consumer emits the same count.
    The first pass after an elastic resume (another layout) is shorter: the rest of that epoch.

    Resume: the trainer stores ``ds.state_dict(batches_consumed=B, batch_size=b)`` (B: batches this
    rank consumed since the start of training; ``drop_last=True`` if its DataLoader drops last
    batches) and passes it to ``load_state_dict`` before iterating, on every rank. The world size and
    the DataLoader's ``num_workers`` may change between the two (elastic resume: the rest of the
    interrupted epoch is split equally among the new consumers); seed, shuffle, episode_pool_size and
    the episodes may not. The bare ``{"batches_consumed": B, "batch_size": b}`` works too when the
    world size and num_workers stay the same. See Note [Resume state schema].
    """

    def __init__(
        self,
        repo_id: str,
        root: str | Path | None = None,
        episodes: Sequence[int] | None = None,
        image_transforms: Callable | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        revision: str | None = None,
        force_cache_sync: bool = False,
        streaming: bool = True,
        buffer_size: int | None = None,
        max_num_shards: int | None = None,
        seed: int = 42,
        rng: np.random.Generator | None = None,
        shuffle: bool = True,
        return_uint8: bool = False,
        depth_output_unit: str = "mm",
        *,
        episode_pool_size: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        decoder_cache_size: int | None = None,
        video_decoder_cache_size: int | None = None,
        decoder_cache_max_bytes: int | None = DEFAULT_DECODER_CACHE_MAX_BYTES,
        frame_stash_bytes: int | Literal["auto"] | None = None,
        decode_threads: int = 1,
        num_workers: int = 1,
        video_decode_device: str = "cpu",
        video_decode_stage: bool | None = None,
        cuda_backend: str = "auto",
        data_files_root: str | None = None,
        repo_type: str = "dataset",
        token: str | bool | None = None,
        prefetch_videos: bool = True,
        video_prefetch_workers: int = 8,
        video_cache_dir: str | Path | None = None,
        video_cache_max_bytes: int | None = None,
        video_fetch: FetchMode = "ranges",
        video_cache: Literal["disk", "memory"] = "disk",
        remote_retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        _warn_ignored(buffer_size=buffer_size, rng=rng, max_num_shards=max_num_shards)
        if repo_type != "dataset":
            raise NotImplementedError(
                f"repo_type={repo_type!r} is not supported: for a bucket pass data_files_root="
                f"'hf://buckets/{repo_id}' (metadata from root=/repo_id)"
            )
        check_depth_unit(depth_output_unit)
        # ValueError / CudaUnavailableError (cuda_info()'s reason) before any metadata is read
        decode_stage = wants_decode_stage(video_decode_device, video_decode_stage, cuda_backend)
        if image_transforms is not None and not callable(image_transforms):
            raise TypeError("image_transforms must be callable or None.")
        whole_number(episode_pool_size, "episode_pool_size", 1)
        whole_number(seed, "seed", 0, UINT64_MAX)
        for name, value, least in [
            ("num_workers", num_workers, 0),
            ("decode_threads", decode_threads, 0),
            ("video_prefetch_workers", video_prefetch_workers, 1),
        ]:
            whole_number(value, name, least)
        for name, value, least in [
            ("batch_size", batch_size, 1),
            ("rank", rank, 0),
            ("world_size", world_size, 1),
            ("decoder_cache_size", decoder_cache_size, 1),
            ("video_decoder_cache_size", video_decoder_cache_size, 1),
            ("frame_stash_bytes", None if frame_stash_bytes == "auto" else frame_stash_bytes, 1),
        ]:
            if value is not None:
                whole_number(value, name, least)
        if episodes is not None:
            if isinstance(episodes, (str, bytes)) or not isinstance(episodes, Iterable):
                raise ValueError(f"episodes must be a list of episode indices or None, got {episodes!r}")
            episodes = [whole_number(e, "episodes[...]", 0) for e in episodes]
        if frame_stash_bytes is not None and decode_stage:
            raise ValueError(
                "frame_stash_bytes is for decoding in DataLoader workers (video_decode_device='cpu' without "
                "the decode stage)"
            )
        if decoder_cache_size is not None and video_decoder_cache_size is not None:
            raise ValueError("Pass decoder_cache_size or video_decoder_cache_size, not both")
        if video_fetch not in FETCH_MODES:
            raise ValueError(f"video_fetch must be one of {FETCH_MODES}, got {video_fetch!r}")
        if video_cache not in ("disk", "memory"):
            raise ValueError(f"video_cache must be 'disk' or 'memory', got {video_cache!r}")
        if not (isinstance(tolerance_s, numbers.Real) and math.isfinite(tolerance_s) and tolerance_s >= 0):
            raise ValueError(f"tolerance_s must be a finite number of seconds >= 0, got {tolerance_s!r}")

        self.repo_id = repo_id
        self._remote_retry = remote_retry or RetryPolicy()
        self.meta: DatasetMetadata = load_metadata(
            repo_id, root, revision, data_files_root, self._remote_retry
        )
        self.root = self.meta.root
        self.data_files_root = data_files_root
        self.depth_output_unit = depth_output_unit
        warn_missing_units(
            [k for k in self.meta.depth_keys if not (self.features[k].get("info") or {}).get("depth_unit")],
            depth_output_unit,
        )
        self.episodes = None if episodes is None else list(episodes)
        if self.episodes is not None and not self.episodes:
            raise ValueError(f"{self.root}: episodes=[] selects no episode (None selects them all)")
        selected = (
            self.meta.episode_index
            if self.episodes is None
            else np.array(sorted(set(self.episodes)), np.int64)
        )
        self._episode_rows = np.array([self.meta.episode_row(e) for e in selected], dtype=np.int64)
        self._selected_episodes = selected
        self._episode_lengths = self.meta.length[self._episode_rows]

        self.delta_timestamps = None if delta_timestamps is None else dict(delta_timestamps)
        self.delta_indices: dict[str, np.ndarray] | None = None
        if self.delta_timestamps is not None:
            check_delta_timestamps(self.delta_timestamps, self.meta.features, self.meta.fps, tolerance_s)
            self.delta_indices = delta_indices(self.delta_timestamps, self.meta.fps)

        self.image_transforms = image_transforms
        self.tolerance_s = tolerance_s
        self.revision = revision
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.episode_pool_size = int(episode_pool_size)
        self.rank, self.world_size = resolve_rank_world(rank, world_size)
        self._return_uint8 = return_uint8
        self._decode_threads = decode_threads
        self.video_decode_device = str(video_decode_device)
        self.cuda_backend = cuda_backend
        self._decode_stage = decode_stage
        if decode_stage:
            check_stage_dataset(self.meta, self.video_decode_device)
        self._prefetch_videos = bool(prefetch_videos)
        self._video_prefetch_workers = int(video_prefetch_workers)
        self._video_cache_dir = Path(video_cache_dir) if video_cache_dir is not None else default_cache_dir()
        self._video_cache_max_bytes = video_cache_max_bytes
        self._video_fetch: FetchMode = video_fetch
        self._video_in_memory = video_cache == "memory"
        if not self.meta.data_location.is_local and self.meta.video_keys and not self._video_in_memory:
            check_cache_dir(self._video_cache_dir)
            sweep_at_exit(self._video_cache_dir)
        self._num_workers = int(num_workers)
        self._num_workers_hint = max(self._num_workers, 1)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        cache_size = decoder_cache_size if decoder_cache_size is not None else video_decoder_cache_size
        self.decoder_cache_size = (
            int(cache_size)
            if cache_size is not None
            else default_decoder_cache_capacity(self.episode_pool_size, len(self.meta.video_keys))
            * (2 if not self.meta.data_location.is_local and video_fetch == "ranges" else 1)
        )
        self.decoder_cache_max_bytes = decoder_cache_max_bytes
        if frame_stash_bytes == "auto":
            frame_stash_bytes = self._full_gain_stash_bytes()
        self.frame_stash_bytes = None if frame_stash_bytes is None else int(frame_stash_bytes)
        self._fingerprint = dataset_fingerprint(self._selected_episodes, self._episode_lengths)
        self._counters = EpochCounters()
        self._resume: ResumeState | None = None
        self._elastic: tuple[Any, Any] | None = None  # (key, _core.ElasticPass) of the last elastic resume
        self._warned_idle = False
        self._runtime: ConsumerRuntime | None = None

    # --- lerobot-compatible properties --------------------------------------------------------
    @property
    def fps(self) -> int:
        """Frames per second of the dataset."""
        return self.meta.fps

    @property
    def features(self) -> dict[str, dict]:
        """Feature name -> {dtype, shape, names}."""
        return self.meta.features

    @property
    def camera_keys(self) -> list[str]:
        """Camera features (videos and images)."""
        return self.meta.camera_keys

    def _full_gain_stash_bytes(self) -> int:
        """``frame_stash_bytes="auto"``: a consumer's pooled frames (its share of the epoch's frames, at
        most ``episode_pool_size`` episodes of the mean length) priced by ``frame_stash_bytes_for``."""
        consumers = self.world_size * self._num_workers_hint
        per_consumer = int(self._episode_lengths.sum()) / consumers
        pool_frames = min(per_consumer, self.episode_pool_size * float(self._episode_lengths.mean()))
        cameras = [self.meta.features[key].get("info") or {} for key in self.meta.video_keys]
        cameras = [cam for cam in cameras if "video.height" in cam and "video.width" in cam]
        return frame_stash_bytes_for(math.ceil(pool_frames), cameras) if cameras else 1

    @property
    def video_keys(self) -> list[str]:
        """Camera features stored as videos."""
        return self.meta.video_keys

    @property
    def return_uint8(self) -> bool:
        """Camera frames as uint8 instead of float32 in [0, 1]."""
        return self._return_uint8

    @property
    def decode_threads(self) -> int:
        """libav threads per decoder."""
        return self._decode_threads

    @property
    def num_workers_hint(self) -> int:
        """The constructor's ``num_workers`` (the DataLoader's, for ``len()``)."""
        return self._num_workers

    @property
    def emits_frame_requests(self) -> bool:
        """True when samples carry frame requests for a decode stage instead of frames
        (Note [Decode stage requests] in ``lerobot_stream.decode_stage``)."""
        return self._decode_stage

    def dataloader(self, batch_size: int | None = None, **kwargs: Any) -> Iterable[dict[str, Any]]:
        """The loader to iterate: ``DataLoader(self, ...)``, wrapped in a
        :class:`~lerobot_stream.DecodeStage` when frames are decoded in the training process
        (``video_decode_device="cuda"`` or ``video_decode_stage=True``). ``batch_size``: the dataset's
        own when it builds batches (then the DataLoader gets ``batch_size=None``), else 1. Keyword
        arguments: :func:`lerobot_stream.decode_stage.make_loader`'s. Batches, their order and the
        resume state are the same either way: checkpoint
        ``{"batches_consumed": step + 1, "batch_size": batch_size}``."""
        return make_loader(self, batch_size, **kwargs)

    @property
    def num_frames(self) -> int:
        """Frames in the selected episodes."""
        return int(self._episode_lengths.sum())

    @property
    def num_episodes(self) -> int:
        """Number of selected episodes."""
        return len(self._selected_episodes)

    def __len__(self) -> int:
        """Samples this rank emits per epoch with the ``num_workers`` hint; see the class docstring."""
        workers = self._num_workers_hint
        plan = _core.EpochPlan(self._episode_lengths, self.seed, self.shuffle, self.world_size * workers)
        per_consumer = int(plan.samples_per_consumer)
        if self.batch_size is not None:
            whole, partial = divmod(per_consumer, self.batch_size)
            per_consumer = whole + (1 if partial and not self.drop_last else 0)
        return per_consumer * workers

    # --- epochs and resume --------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """The next ``__iter__`` (in every worker) runs ``epoch``; later ones continue from it.

        A pending ``load_state_dict`` takes precedence: it fixes the epoch of the next ``__iter__``.
        """
        self._counters.set_epoch(whole_number(epoch, "epoch", 0, INT64_MAX))

    def state_dict(
        self,
        batches_consumed: int | None = None,
        batch_size: int | None = None,
        drop_last: bool | None = None,
    ) -> dict[str, Any]:
        """The resume state of Note [Resume state schema], the same dict on every rank.

        Pass the trainer's counters: ``batches_consumed`` (batches this rank consumed since the start of
        training), ``batch_size`` and ``drop_last`` (default: those of the loaded state, else 1 and
        False); without ``batches_consumed`` the loaded position (or 0) is returned. The state records
        the world size and the ``num_workers`` the DataLoader iterated with (else the loaded state's,
        else the constructor's), so it can resume under another layout. ValueError when the counters
        go backwards, or batch_size/drop_last change in the middle of an epoch without a layout change.
        """
        counters = {"batches_consumed": batches_consumed, "batch_size": batch_size, "drop_last": drop_last}
        given = {k: v for k, v in counters.items() if v is not None}
        ResumeState.from_dict({"batches_consumed": 0, "batch_size": 1, **given})  # the same strict checks
        base = self._resume or ResumeState(0, 1, world_size=self.world_size)
        seen = self._counters.workers_seen()
        if seen is None:
            seen = base.num_workers if base.num_workers is not None else self._num_workers_hint
        state = advance(base, Layout(self.world_size, seen), self.num_frames, **counters)
        return replace(
            state,
            seed=self.seed,
            shuffle=self.shuffle,
            episode_pool_size=self.episode_pool_size,
            dataset_fingerprint=self._fingerprint,
        ).as_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from a ``state_dict()`` (or the bare ``{"batches_consumed": B, "batch_size": b}``).

        Applied by the next ``__iter__`` of every worker. Under the saved world size and num_workers each
        worker derives its own epoch and skip in O(1) and the batches equal the uninterrupted run's;
        under another layout the rest of the interrupted epoch is split equally among the new
        consumers (Note [Elastic resume]; its replay is O(samples consumed in that epoch), tabular only).
        Either way the fast-forward reads no parquet rows beyond the pool it ends in and decodes nothing.
        ValueError (naming the field) for a malformed state, and for a state saved under another seed,
        shuffle, pool size or dataset.
        """
        parsed = ResumeState.from_dict(state)
        expected = (self.batch_size, self.drop_last)
        if self.batch_size is not None and (parsed.batch_size, parsed.drop_last) != expected:
            raise ValueError(
                f"{self.root}: the state counts batches of {parsed.batch_size} "
                f"(drop_last={parsed.drop_last}) but this dataset yields batches of {self.batch_size} "
                f"(drop_last={self.drop_last})"
            )
        parsed.check_matches(
            seed=self.seed,
            shuffle=self.shuffle,
            episode_pool_size=self.episode_pool_size,
            dataset_fingerprint=self._fingerprint,
        )
        if parsed.world_size is not None and parsed.num_workers is not None:
            normalize(parsed, self.num_frames)  # the counts must fit this dataset: fail now, not in a worker
        self._resume = parsed
        self._counters.reset()
        self._counters.arm_resume()

    @property
    def resume_epoch(self) -> int | None:
        """The epoch the first pass after ``load_state_dict()`` continues (the interrupted one, or the
        next on an epoch boundary); later passes are the epochs after it. None when nothing is loaded."""
        if self._resume is None:
            return None
        layout = Layout(self.world_size, self._num_workers_hint)
        return normalize(fill_layout(self._resume, layout), self.num_frames).epoch

    # --- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        worker, num_workers = current_worker()
        start = self._start(worker, num_workers)
        if start.phases:
            schedule = self._elastic_pass(start).schedule(self.rank, self.world_size, start.role, num_workers)
        else:
            schedule = _core.ConsumerSchedule(
                self._episode_lengths,
                self.seed,
                self.shuffle,
                start.epoch,
                self.rank,
                self.world_size,
                start.role,
                num_workers,
                self.episode_pool_size,
            )
        if schedule.total == 0 and not start.phases and not self._warned_idle:
            self._warned_idle = True
            warnings.warn(
                f"{self.root}: {self.num_frames} frames cannot feed {self.world_size * num_workers} "
                f"consumers (world_size={self.world_size} x num_workers={num_workers}); rank {self.rank} "
                f"worker {worker} "
                "gets no samples. Use fewer workers or more episodes.",
                stacklevel=2,
            )
        if start.skip:
            schedule.skip(start.skip)
        runtime = self._consumer_runtime()
        plan_slot = None if start.phases else (start.epoch, start.role, num_workers)  # for look-ahead
        return runtime.stream(schedule, runtime.batches, plan_slot)

    def _start(self, worker: int, num_workers: int) -> FirstPass:
        """What this ``__iter__`` of ``worker`` runs; applies a pending resume once.

        The role is the worker id whose schedule this worker plays; see Note [Resuming mid round-robin]
        in ``lerobot_stream.elastic``. ``phases`` is non-empty for an elastic pass.
        """
        resume = self._resume
        in_worker = in_worker_process()
        slot = worker if in_worker else None
        self._counters.observe_workers(num_workers, in_worker)
        if resume is None or not self._counters.take_resume(slot):
            return FirstPass(
                role=worker, epoch=self._counters.start_epoch(slot), skip=0, phases=(), epoch_start=0
            )
        layout = Layout(self.world_size, num_workers if in_worker else 0)
        start = first_pass(resume, layout, worker, self.num_frames)
        self._counters.start_epoch(slot, start.epoch)
        return start

    def _elastic_pass(self, start: FirstPass) -> Any:
        """The ``_core.ElasticPass`` replaying ``start.phases`` (computed once per process)."""
        key = (start.epoch, start.epoch_start, start.phases)
        if self._elastic is None or self._elastic[0] != key:
            replay = _core.ElasticPass(
                self._episode_lengths,
                self.seed,
                self.shuffle,
                start.epoch,
                phase_tuples(start.phases, start.epoch_start),
                self.episode_pool_size,
            )
            self._elastic = (key, replay)
        return self._elastic[1]

    def _consumer_runtime(self) -> ConsumerRuntime:
        # A forked DataLoader worker inherits the parent's runtime, whose decoding threads did not
        # survive the fork: every process opens its own.
        if self._runtime is None or self._runtime.pid != os.getpid():
            self._runtime = ConsumerRuntime(self)
        return self._runtime

    def stats(self) -> dict[str, Any]:
        """This process's consumer counters: decoder cache, frames requested, parquet reads."""
        if self._runtime is None:
            return {}
        return self._runtime.stats()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runtime"] = None  # decoders and threads stay in the process that opened them
        state["_elastic"] = None  # a C++ object: recomputed where needed
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(repo_id={self.repo_id!r}, root={str(self.root)!r}, "
            f"episodes={self.num_episodes}, frames={self.num_frames}, fps={self.fps}, "
            f"cameras={self.meta.video_keys}, episode_pool_size={self.episode_pool_size}, "
            f"rank={self.rank}/{self.world_size}, seed={self.seed})"
        )


def _warn_ignored(**values: Any) -> None:
    reasons = {
        "buffer_size": "episode_pool_size replaced it (whole episodes kept in RAM per consumer)",
        "rng": "the order derives from seed (counter-based per consumer)",
        "max_num_shards": "work is split by frames across (rank, worker) consumers, not by parquet shards",
    }
    for name, value in values.items():
        if value is not None:
            warnings.warn(
                f"StreamingLeRobotDataset: {name} is ignored: {reasons[name]}", UserWarning, stacklevel=3
            )
