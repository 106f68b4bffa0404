"""The loaders the streaming benchmark compares, one class per peer, all fed the same dataset.

Every peer builds a ``torch.utils.data.DataLoader`` whose samples carry three extra keys, filled in
the worker that produced the sample (see Note [Worker-side probes]):

    ``__bench_worker``   DataLoader worker id (0 in the main process)
    ``__bench_latency``  seconds the worker spent producing this sample
    ``__bench_stats``    the worker's cumulative [cache hits, misses, evictions, decode s, fetch s,
                         frames decoded, frames requested, shared blocks made]
                         (``stream_metrics.STAT_FIELDS``; NaN where the peer has no such counter)

Every peer delivers camera frames of the same dtype, ``BenchConfig.dtype``: float32 in [0, 1] by
default (what lerobot's training code consumes), or uint8 for all of them (``--uint8``); each peer
records the dtype it delivered as ``dtype``.

Peers:
    ``ours``     lerobot_stream.StreamingLeRobotDataset (episode pool, decoder cache, C++ decode)
    ``ours-batched``  the same dataset building whole batches in the workers (``batch_size=B`` with
                 ``DataLoader(batch_size=None)``: frames decoded into reused shared memory, no collate)
    ``ours-stash``  ``ours`` with a frame stash of ``BenchConfig.frame_stash_bytes`` per consumer
                 (Note [Frame stash] in ``cpp/av/frame_stash.h``), behind the plain DataLoader
    ``naive``    a map-style reader that opens every camera's mp4 with PyAV for every sample and
                 decodes from the preceding keyframe ("naive per-sample decode", as lerobot's
                 map-style dataset with the pyav backend does)
    ``lerobot``  lerobot 0.6's StreamingLeRobotDataset, run in the lerobot oracle's own interpreter
                 (.venv-oracle, scripts/install_lerobot_oracle.sh) by ``bench/lerobot_peer.py``,
                 which measures it with the same loop and reports the metrics as JSON

Note [Worker-side probes]
~~~~~~~~~~~~~~~~~~~~~~~~~
Latency is measured where the sample is made (the time between the worker asking its iterator for
the next sample and getting it), so it is the cost of one sample, not of DataLoader queueing. Where
a worker makes a DataLoader batch's samples together (ours, once it knows the batch size: Note
[Decode per DataLoader batch] in ``lerobot_stream.sample``), the batch's first sample carries the
whole batch's time and the others almost none: p50 is then near 0 and p99 is a batch's time.
For ``ours`` the decode and fetch split comes from timing the dataset's consumer runtime
(``builder.decode``: wall time of a decode call, cameras in parallel;
``reader.read_episode``: parquet rows of admitted episodes, downloads included when remote). These
are private attributes; when they are missing the split is reported as null, never guessed.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

# The lerobot oracle's interpreter and environment, shared with the tests (tests/oracle.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle import oracle_python as lerobot_python
from oracle import subprocess_env as _oracle_env
from stream_metrics import STAT_FIELDS

Mode = Literal["single", "sarm", "window"]
FrameDtype = Literal["float32", "uint8"]
BENCH_KEYS = ("__bench_worker", "__bench_latency", "__bench_stats")

# lerobot 0.6 lerobot/rewards/sarm/configuration_sarm.py defaults: n_obs_steps=8, frame_gap=30 frames,
# max_rewind_steps=4; observation_delta_indices = 4 past + current + 4 future, then 4 rewind slots.
SARM_N_OBS_STEPS = 8
SARM_FRAME_GAP = 30
SARM_MAX_REWIND_STEPS = 4
WINDOW_OBS_FRAMES = 2
WINDOW_ACTIONS = 50


def sarm_delta_indices(
    n_obs_steps: int = SARM_N_OBS_STEPS,
    frame_gap: int = SARM_FRAME_GAP,
    max_rewind: int = SARM_MAX_REWIND_STEPS,
) -> list[int]:
    """SARM's ``observation_delta_indices``.

    Defaults give [-120, -90, -60, -30, 0, 30, 60, 90, 120, -30, -60, -90, -120] frames.
    """
    half = n_obs_steps // 2
    past = [-frame_gap * i for i in range(half, 0, -1)]
    future = [frame_gap * i for i in range(1, half + 1)]
    rewind = [-frame_gap * (i + 1) for i in range(max_rewind)]
    return [*past, 0, *future, *rewind]


def delta_timestamps_for(mode: Mode, features: Mapping[str, Any], fps: int) -> dict[str, list[float]] | None:
    """The ``delta_timestamps`` of a benchmark mode, as lerobot's ``resolve_delta_timestamps`` builds them.

    single: none (one frame per camera); sarm: SARM's observation indices on every ``observation.*``
    feature; window: 2 observation frames (previous, current) and 50 future actions.
    """
    observation_keys = [k for k in features if k.startswith("observation.")]
    if mode == "single":
        return None
    if mode == "sarm":
        return {k: [i / fps for i in sarm_delta_indices()] for k in observation_keys}
    if mode == "window":
        deltas = {k: [i / fps for i in range(1 - WINDOW_OBS_FRAMES, 1)] for k in observation_keys}
        if "action" in features:
            deltas["action"] = [i / fps for i in range(WINDOW_ACTIONS)]
        return deltas
    raise ValueError(f"mode must be one of 'single', 'sarm', 'window', got {mode!r}")


@dataclass
class BenchConfig:
    """What every peer loads and how."""

    repo_id: str
    root: str | None
    mode: Mode
    batch_size: int
    num_workers: int
    episode_pool_size: int
    device: str
    video_decode_device: str = "cpu"
    video_decode_stage: bool | None = None
    seed: int = 0
    decoder_cache_size: int | None = None
    dtype: FrameDtype = "float32"
    frame_stash_bytes: int | None = None  # the ``ours-stash`` peer's budget
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def return_uint8(self) -> bool:
        """The ``return_uint8`` every peer is built with (see ``dtype``)."""
        return self.dtype == "uint8"

    @property
    def prefetch_factor(self) -> int | None:
        """The DataLoader's prefetch factor (its default, 2, with workers)."""
        return 2 if self.num_workers > 0 else None

    def loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        """A DataLoader over ``dataset`` with the benchmark's batch size, workers and pinning."""
        options = {"batch_size": self.batch_size, **kwargs}
        return DataLoader(
            dataset,
            num_workers=self.num_workers,
            pin_memory=self.device == "cuda",
            prefetch_factor=self.prefetch_factor,
            **options,
        )


def _probe_fields(latency: float, worker: int, stats: list[float]) -> dict[str, torch.Tensor]:
    return {
        "__bench_worker": torch.tensor(worker, dtype=torch.int64),
        "__bench_latency": torch.tensor(latency, dtype=torch.float64),
        "__bench_stats": torch.tensor(stats, dtype=torch.float64),
    }


def _worker_id() -> int:
    info = torch.utils.data.get_worker_info()
    return 0 if info is None else int(info.id)


class _Timer:
    """Accumulates the wall time of calls to a wrapped function."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


class _ProbedIterable(IterableDataset):
    """Adds the probe fields of Note [Worker-side probes] to every sample of an iterable dataset.

    The base class measures latency only (counters NaN), for third-party datasets.
    """

    def __init__(self, dataset: Any) -> None:
        super().__init__()
        self.dataset = dataset

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = _worker_id()
        counters = self._counters()
        for sample, latency in _timed(iter(self.dataset)):
            yield {**sample, **_probe_fields(latency, worker, counters())}

    def _counters(self) -> Callable[[], list[float]]:
        """Called once the dataset iterator exists; returns a function giving the STAT_FIELDS values."""
        nan = [math.nan] * len(STAT_FIELDS)
        return lambda: nan


class _ProbedStream(_ProbedIterable):
    """``ours`` with its decoder-cache counters and decode / fetch timers."""

    def __len__(self) -> int:
        return len(self.dataset)

    def _counters(self) -> Callable[[], list[float]]:
        runtime = getattr(self.dataset, "_runtime", None)
        builder = getattr(runtime, "builder", None)
        reader = getattr(runtime, "reader", None)
        decode = fetch = None
        # ``decode`` does every camera decode (per sample, per DataLoader batch, per dataset batch);
        # older versions decoded in ``_decode_videos``
        method = next((m for m in ("decode", "_decode_videos") if hasattr(builder, m)), None)
        if method is not None:
            decode = _Timer()
            setattr(builder, method, decode.wrap(getattr(builder, method)))
        if reader is not None and hasattr(reader, "read_episode"):
            fetch = _Timer()
            reader.read_episode = fetch.wrap(reader.read_episode)

        def counters() -> list[float]:
            stats = self.dataset.stats()
            cache = stats.get("decoder_cache", {})
            values = [float(cache.get(k, math.nan)) for k in ("hits", "misses", "evictions")]
            decoder = cache.get("decoder", {})
            return [
                *values,
                decode.seconds if decode else math.nan,
                fetch.seconds if fetch else math.nan,
                *(float(decoder.get(k, math.nan)) for k in ("frames_decoded", "frames_requested")),
                float(stats.get("shared_blocks", {}).get("created", math.nan)),
            ]

        return counters


def _timed(it: Iterator[Any]) -> Iterator[tuple[Any, float]]:
    """Each item of ``it`` with the seconds its ``next`` took."""
    while True:
        start = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        yield item, time.perf_counter() - start


class _ProbedBatches(_ProbedStream):
    """``ours-batched``: the probe fields per batch, the batch's latency shared by its samples."""

    def __iter__(self) -> Iterator[Any]:
        worker = _worker_id()
        counters = self._counters()
        for batch, latency in _timed(iter(self.dataset)):
            size = int(batch["index"].shape[0])
            batch.update(
                {
                    "__bench_worker": torch.full((size,), worker, dtype=torch.int64),
                    "__bench_latency": torch.full((size,), latency / size, dtype=torch.float64),
                    "__bench_stats": torch.tensor([counters()] * size, dtype=torch.float64),
                }
            )
            yield batch


class OursPeer:
    """lerobot_stream.StreamingLeRobotDataset."""

    name = "ours"
    batched = False
    stash = False

    def __init__(self, cfg: BenchConfig) -> None:
        from lerobot_stream import StreamingLeRobotDataset

        self.cfg = cfg
        self.dtype = cfg.dtype
        probe = StreamingLeRobotDataset(cfg.repo_id, root=cfg.root)
        self.dataset = StreamingLeRobotDataset(
            cfg.repo_id,
            root=cfg.root,
            delta_timestamps=delta_timestamps_for(cfg.mode, probe.features, probe.fps),
            episode_pool_size=cfg.episode_pool_size,
            seed=cfg.seed,
            shuffle=True,
            return_uint8=cfg.return_uint8,
            decoder_cache_size=cfg.decoder_cache_size,
            num_workers=max(cfg.num_workers, 1),
            video_decode_device=cfg.video_decode_device,
            # an older install (a baseline run with its own interpreter) has no decode stage
            **({} if cfg.video_decode_stage is None else {"video_decode_stage": cfg.video_decode_stage}),
            **({"batch_size": cfg.batch_size} if self.batched else {}),
            **({"frame_stash_bytes": cfg.frame_stash_bytes} if self.stash else {}),
            **cfg.extra,
        )

    @property
    def fps(self) -> int:
        return int(self.dataset.fps)

    @property
    def camera_keys(self) -> list[str]:
        return list(self.dataset.video_keys)

    def loader(self) -> Any:
        if self.batched:
            loader = self.cfg.loader(_ProbedBatches(self.dataset), batch_size=None)
        else:
            loader = self.cfg.loader(_ProbedStream(self.dataset))
        if not getattr(self.dataset, "emits_frame_requests", False):  # (an older install has none)
            return loader
        # video_decode_device="cuda" / video_decode_stage: the workers emit frame requests and the
        # decode stage of this process decodes them: the DecodeStage ds.dataloader() makes, around
        # the probed loader (Note [Worker-side probes]), so the consumer gets frames.
        from lerobot_stream import DecodeStage

        return DecodeStage(loader, self.dataset)


class OursBatchedPeer(OursPeer):
    """lerobot_stream.StreamingLeRobotDataset(batch_size=B) behind ``DataLoader(batch_size=None)``."""

    name = "ours-batched"
    batched = True


class OursStashPeer(OursPeer):
    """lerobot_stream.StreamingLeRobotDataset(frame_stash_bytes=...) behind the plain DataLoader."""

    name = "ours-stash"
    stash = True


class NaiveFrameReader(Dataset):
    """Map-style dataset that decodes every camera frame of every sample from scratch with PyAV.

    Each ``__getitem__`` reads the sample's rows from memory (all parquet rows are loaded up front),
    then, per camera, opens the mp4, seeks to the keyframe before the first requested timestamp and
    decodes forward to each requested frame; nothing is cached between samples. Windows clamp to the
    episode and set ``<key>_is_pad`` like lerobot's map-style dataset.
    """

    def __init__(
        self,
        repo_id: str,
        root: str,
        delta_timestamps: dict[str, list[float]] | None,
        return_uint8: bool = False,
    ) -> None:
        from lerobot_stream.metadata import load_metadata

        self.return_uint8 = return_uint8
        self.meta = load_metadata(repo_id, root)
        self.root = Path(root)
        self.video_keys = list(self.meta.video_keys)
        files = sorted({str(self.meta.get_data_file_path(int(e))) for e in self.meta.episode_index})
        table = pa.concat_tables([pq.read_table(self.root / f) for f in files]).sort_by("index")
        numeric = [n for n in table.column_names if n not in self.video_keys and n != "task"]
        self.columns = {n: _column_tensor(table.column(n)) for n in numeric}
        fps = self.meta.fps
        self.deltas = {k: [round(d * fps) for d in v] for k, v in (delta_timestamps or {}).items()}
        self.episode_rows = {int(e): r for r, e in enumerate(self.meta.episode_index)}

    def __len__(self) -> int:
        return int(self.columns["index"].shape[0])

    def __getitem__(self, idx: int) -> dict[str, Any]:
        start = time.perf_counter()
        episode = int(self.columns["episode_index"][idx])
        row = self.episode_rows[episode]
        ep_from, ep_to = int(self.meta.dataset_from_index[row]), int(self.meta.dataset_to_index[row])
        item: dict[str, Any] = {name: col[idx] for name, col in self.columns.items()}
        windows: dict[str, list[int]] = {}
        for key, offsets in self.deltas.items():
            wanted = [idx + o for o in offsets]
            windows[key] = [min(max(i, ep_from), ep_to - 1) for i in wanted]
            item[f"{key}_is_pad"] = torch.tensor([not ep_from <= i < ep_to for i in wanted])
            if key in self.columns:
                item[key] = self.columns[key][windows[key]]
        decode_start = time.perf_counter()
        for key in self.video_keys:
            frames = windows.get(key, [idx])
            loc = self.meta.videos[key]
            times = [float(loc.from_timestamp[row]) + float(self.columns["timestamp"][i]) for i in frames]
            path = self.root / self.meta.get_video_file_path(episode, key)
            decoded = torch.from_numpy(_decode_at(path, times, self.meta.fps))
            if not self.return_uint8:
                decoded = decoded.type(torch.float32) / 255  # as lerobot's decoders do
            item[key] = decoded if key in windows else decoded[0]
        decode_s = time.perf_counter() - decode_start
        self._decode_s = getattr(self, "_decode_s", 0.0) + decode_s
        stats = [self._decode_s if field == "decode_s" else math.nan for field in STAT_FIELDS]
        return {**item, **_probe_fields(time.perf_counter() - start, _worker_id(), stats)}


def _column_tensor(column: Any) -> torch.Tensor:
    values = column.to_numpy(zero_copy_only=False)
    if values.dtype == object:  # list columns (state, action vectors)
        values = np.stack(values)
    return torch.from_numpy(np.array(values))  # owned, writable copy


def _decode_at(path: Path, times: list[float], fps: int) -> np.ndarray:
    """RGB uint8 [T, 3, H, W] frames nearest to ``times`` (seconds) in ``path``, decoded from scratch."""
    import av

    half_frame = 0.5 / fps
    out: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for target in sorted(set(times)):
            container.seek(int(max(target - half_frame, 0.0) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= target - half_frame:
                    out[target] = frame.to_ndarray(format="rgb24").transpose(2, 0, 1)
                    break
            else:
                raise ValueError(f"{path}: no frame at {target:.4f} s")
    return np.stack([out[t] for t in times])


class NaivePeer:
    """Naive per-sample decode: ``NaiveFrameReader`` behind a shuffling DataLoader."""

    name = "naive"

    def __init__(self, cfg: BenchConfig) -> None:
        from lerobot_stream.metadata import load_metadata

        if cfg.root is None or "://" in cfg.root:
            raise RuntimeError("the naive peer reads local datasets only (pass --root PATH)")
        meta = load_metadata(cfg.repo_id, cfg.root)
        self.cfg = cfg
        self.dtype = cfg.dtype
        self.dataset = NaiveFrameReader(
            cfg.repo_id,
            cfg.root,
            delta_timestamps_for(cfg.mode, meta.features, meta.fps),
            return_uint8=cfg.return_uint8,
        )

    @property
    def fps(self) -> int:
        return int(self.dataset.meta.fps)

    @property
    def camera_keys(self) -> list[str]:
        return self.dataset.video_keys

    def loader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.cfg.seed)
        return self.cfg.loader(self.dataset, shuffle=True, generator=generator)


LEROBOT_RUNNER = Path(__file__).resolve().with_name("lerobot_peer.py")


def lerobot_unavailable_reason() -> str | None:
    """None when lerobot's StreamingLeRobotDataset runs in the oracle interpreter; else why not."""
    python = lerobot_python()
    if not python.exists():
        return f"no lerobot environment at {python.parent.parent}: run scripts/install_lerobot_oracle.sh"
    probe = "import lerobot.datasets.streaming_dataset"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=_oracle_env())
    if done.returncode != 0:
        return f"lerobot does not import in {python}: {done.stderr.strip().splitlines()[-1:]}"
    return None


def _use_pyav_when_torchcodec_is_missing() -> str:
    """lerobot 0.6.1's streaming dataset always decodes with torchcodec; where torchcodec cannot load,
    lerobot's own PyAV backend (``decode_video_frames(..., backend="pyav")``) stands in, and the result
    says so. Returns the backend lerobot will use. Runs in the lerobot interpreter."""
    try:
        importlib.import_module("torchcodec.decoders")
        return "torchcodec"
    except Exception:
        import lerobot.datasets.streaming_dataset as streaming
        from lerobot.datasets.video_utils import decode_video_frames

        def decode_with_pyav(video_path, timestamps, tolerance_s, decoder_cache=None, return_uint8=False):
            del decoder_cache
            return decode_video_frames(
                video_path, timestamps, tolerance_s, backend="pyav", return_uint8=return_uint8
            )

        streaming.decode_video_frames_torchcodec = decode_with_pyav
        return "pyav"


class LerobotDatasetPeer:
    """lerobot 0.6's StreamingLeRobotDataset itself; built inside the lerobot interpreter only."""

    def __init__(self, cfg: BenchConfig, buffer_size: int | None) -> None:
        from lerobot.datasets.streaming_dataset import StreamingLeRobotDataset

        self.decode_backend = _use_pyav_when_torchcodec_is_missing()
        self.cfg = cfg
        self.dtype = cfg.dtype
        probe = StreamingLeRobotDataset(cfg.repo_id, root=cfg.root)
        self.dataset = StreamingLeRobotDataset(
            cfg.repo_id,
            root=cfg.root,
            delta_timestamps=delta_timestamps_for(cfg.mode, probe.meta.features, probe.meta.fps),
            seed=cfg.seed,
            shuffle=True,
            return_uint8=cfg.return_uint8,
            **({} if buffer_size is None else {"buffer_size": buffer_size}),
        )
        self.fps = int(probe.meta.fps)
        self.camera_keys = list(probe.meta.video_keys)

    def loader(self) -> DataLoader:
        return self.cfg.loader(_ProbedIterable(self.dataset))


class LerobotPeer:
    """lerobot 0.6's StreamingLeRobotDataset (default buffer), measured in the lerobot interpreter.

    lerobot 0.6.1 needs Python >= 3.12 and torch < 2.12, so it runs in its own environment:
    ``run(args)`` starts ``bench/lerobot_peer.py`` there, which builds ``LerobotDatasetPeer`` and runs
    ``benchmark_streaming.run_peer`` on it (the same loop, probes and RSS sampling as every peer), and
    returns the metrics it reports as JSON.
    """

    name = "lerobot"
    buffer_size: int | None = None  # None: lerobot's default

    def __init__(self, cfg: BenchConfig) -> None:
        from lerobot_stream.metadata import load_metadata

        reason = lerobot_unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.cfg = cfg
        meta = load_metadata(cfg.repo_id, cfg.root)
        self.fps = int(meta.fps)
        self.camera_keys = list(meta.video_keys)

    def run(self, args: Any) -> dict[str, Any]:
        """The metrics of one run (``benchmark_streaming.run_peer``'s dict), measured in the lerobot env."""
        request = {
            "cfg": {k: v for k, v in vars(self.cfg).items() if k != "extra"},
            "buffer_size": self.buffer_size,
            "args": {k: getattr(args, k) for k in ("max_batches", "seconds", "consumer_ms", "device")},
        }
        with tempfile.TemporaryDirectory(prefix="lrs-bench-lerobot-") as tmp:
            path = Path(tmp) / "request.json"
            path.write_text(json.dumps({**request, "out": str(Path(tmp) / "result.json")}))
            done = subprocess.run([str(lerobot_python()), str(LEROBOT_RUNNER), str(path)], env=_oracle_env())
            if done.returncode != 0:
                raise RuntimeError(f"the lerobot peer failed (exit {done.returncode}); see its output above")
            return json.loads((Path(tmp) / "result.json").read_text())


class LerobotBuffer100Peer(LerobotPeer):
    """lerobot 0.6's StreamingLeRobotDataset with ``buffer_size=100`` (its shuffle buffer)."""

    name = "lerobot-buffer100"
    buffer_size = 100


PEERS: dict[str, type] = {
    "ours": OursPeer,
    "ours-batched": OursBatchedPeer,
    "ours-stash": OursStashPeer,
    "naive": NaivePeer,
    "lerobot": LerobotPeer,
    "lerobot-buffer100": LerobotBuffer100Peer,
}
