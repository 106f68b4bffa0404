"""What the streaming benchmark measures and writes: per-batch records, peak RSS, JSON / CSV / PNG.

``RunRecorder`` sees every batch a peer's DataLoader hands the consumer (with the probe fields of
``stream_peers``) and reduces them to the reference-design keys; ``TreeRssSampler`` polls the RSS of
this process and all its children (DataLoader workers); ``write_results`` writes
``{stem}.json``, ``{stem}.csv`` (one row, ours), ``{stem}_peers.csv`` (one row per peer) and
``{stem}.png`` (throughput and latency over time, one line per peer).

Definitions:
    frames: decoded camera frames delivered (a sample with K cameras and T timestamps each is K*T).
    steady: from the first batch's arrival to the last one; ``frames_per_s_node`` and
        ``samples_per_s`` count batches after the first over it (start-up is ``first_batch_latency_s``).
        With ``--warmup-batches N`` the window opens at batch N + 1 instead (batches 1..N are
        warm-up): a loader that sets up memory while its pipeline fills (our reused shared blocks,
        made during the first batches) is then measured at the rate a long run sees.
    sample latency: worker-side seconds to produce one sample (see Note [Worker-side probes]).
    prefetch wait: the consumer asked for a batch and none was ready (waited > 1 ms).
    peak_rss_gb: max over time of the summed RSS of the process tree (shared pages count once per
        process, so it over-counts forked workers' shared memory; it is what schedulers see).
    peak_pss_gb: max over time of the summed PSS of the process tree (a page shared by N processes
        counts 1/N in each): the memory the loader really holds. A batch in shared memory that both
        a worker (which reuses the block) and the main process map counts once here, twice in RSS.
        Sampled every 2 s (Note [Sampler cost]); null where ``/proc/<pid>/smaps_rollup`` is missing.
    peak_node_memory_gb: max over time of the node's used memory (``MemTotal - MemAvailable``) above
        its value when the run started. Unlike PSS it also counts shared memory no process maps at
        that moment (a batch in transit between a worker and the main process, held only by a file
        descriptor) and counts every process on the node, so run it on a quiet machine.
    frames_per_cpu_s: frames delivered in the steady window per CPU second the process tree (main +
        workers, less the memory sampler's own thread: Note [Sampler cost]) used in it: the loader's
        cost per frame, which other load on the machine barely changes (wall-clock rates do).
    decoded_per_requested: frames the peer's decoders decoded per frame asked for (null where the
        peer does not count them).
    shared_blocks_created, shared_blocks_created_steady: shared frame blocks our workers made in the
        run and in its steady window (each a fresh, page-faulted batch; Note [Block pool size]).
    dtype: the camera tensors' dtype as the consumer received them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import resource
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The probe counters every peer reports per worker in ``__bench_stats``, in this order (cumulative;
# NaN where a peer has no such counter): bench/stream_peers.py fills them, RunRecorder sums them.
STAT_FIELDS = (
    "hits",
    "misses",
    "evictions",
    "decode_s",
    "fetch_s",
    "frames_decoded",
    "frames_requested",
    "shared_blocks_created",
)

PREFETCH_WAIT_THRESHOLD_S = 1e-3


def _tree_rss_psutil() -> int:
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _tree_pids() -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    pids, stack = [], [os.getpid()]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def _tree_rss_proc() -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in _tree_pids():
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
    return total


def tree_pss_bytes() -> int | None:
    """Summed PSS of this process and its descendants (None without ``smaps_rollup``)."""
    if not Path(f"/proc/{os.getpid()}/smaps_rollup").exists():
        return None
    total = 0
    for pid in _tree_pids():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def node_used_bytes() -> int | None:
    """``MemTotal - MemAvailable`` of the node (None without ``/proc/meminfo``)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return (int(fields["MemTotal"].split()[0]) - int(fields["MemAvailable"].split()[0])) * 1024
    except (OSError, KeyError, ValueError):
        return None


def _tree_cpu_psutil() -> float:
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _tree_cpu_proc() -> float:
    total = 0
    for pid in _tree_pids():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds() -> float:
    """User + system CPU seconds used so far by this process, its live descendants and its children
    that exited and were waited for (a DataLoader joins its workers at the end of an epoch)."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        live = _tree_cpu_psutil()
    except ImportError:
        live = _tree_cpu_proc()
    return live + reaped.ru_utime + reaped.ru_stime


class TreeRssSampler:
    """Background thread recording the peak RSS and PSS of this process and its descendants.

    Note [Sampler cost]
    ~~~~~~~~~~~~~~~~~~~
    Reading ``smaps_rollup`` walks a process's page tables: with float32 batches in shared blocks
    (about 1 GB mapped per worker) one PSS sample of the tree costs about 36 ms of CPU. Sampled
    with RSS every 0.2 s, that was 18 % of a core, billed to the loader's CPU seconds and taken
    from its cores, more for float32 than for uint8 (four times the mapped pages). PSS is now
    sampled every ``pss_interval_s`` (and when the run ends), and the thread's own CPU time
    (``own_cpu_s``) is left out of ``loader_cpu_seconds()``.
    """

    def __init__(self, interval_s: float = 0.2, pss_interval_s: float = 2.0) -> None:
        try:
            import psutil  # noqa: F401

            self._measure = _tree_rss_psutil
        except ImportError:
            self._measure = _tree_rss_proc
        self._interval = interval_s
        self._pss_interval = pss_interval_s
        self._next_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_bytes = 0
        self.peak_pss_bytes: int | None = None
        self._node_start = node_used_bytes()
        self.peak_node_bytes: int | None = None
        self.own_cpu_s = 0.0

    def _sample(self, pss: bool) -> None:
        self.peak_bytes = max(self.peak_bytes, self._measure())
        if pss:
            value = tree_pss_bytes()
            if value is not None:
                self.peak_pss_bytes = max(self.peak_pss_bytes or 0, value)
        node = node_used_bytes()
        if node is not None and self._node_start is not None:
            self.peak_node_bytes = max(self.peak_node_bytes or 0, node - self._node_start)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.thread_time()
            now = time.perf_counter()
            pss = now >= self._next_pss
            if pss:
                self._next_pss = now + self._pss_interval
            self._sample(pss)
            self.own_cpu_s += time.thread_time() - start
            self._stop.wait(self._interval)

    def loader_cpu_seconds(self) -> float:
        """``tree_cpu_seconds()`` less this sampler's own CPU time (Note [Sampler cost])."""
        return tree_cpu_seconds() - self.own_cpu_s

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(pss=True)


def _frames_in(batch: Mapping[str, Any], camera_keys: list[str]) -> int:
    return sum(int(batch[k].shape[:-3].numel()) for k in camera_keys if k in batch)


def _shuffle_fraction(episodes: torch.Tensor, frames: torch.Tensor) -> float:
    """Fraction of adjacent sample pairs in a batch that are not consecutive frames of one episode."""
    if episodes.numel() < 2:
        return math.nan
    sequential = (episodes[1:] == episodes[:-1]) & (frames[1:] == frames[:-1] + 1)
    return float((~sequential).float().mean())


class RunRecorder:
    """Accumulates one peer's batches; ``summary()`` returns the reference-design keys."""

    def __init__(
        self,
        camera_keys: list[str],
        cpu_clock: Callable[[], float] = tree_cpu_seconds,
        warmup_batches: int = 0,
    ) -> None:
        """``cpu_clock``: the loader's CPU seconds so far (``TreeRssSampler.loader_cpu_seconds``).
        ``warmup_batches``: batches after the first that precede the steady window (0: the window
        opens at the first batch)."""
        self.camera_keys = camera_keys
        self.cpu_clock = cpu_clock
        self.warmup_batches = warmup_batches
        self.start = time.perf_counter()
        self.first_batch_at: float | None = None
        self.window_start: float | None = None
        self.timeline: list[dict[str, float]] = []
        self.latencies: list[np.ndarray] = []
        self.worker_stats: dict[int, np.ndarray] = {}
        self.worker_stats_at_window: dict[int, np.ndarray] = {}
        self.episodes_per_batch: list[int] = []
        self.shuffle_fracs: list[float] = []
        self.waits: list[float] = []
        self.frames_total = 0
        self.frames_steady = 0
        self.samples_steady = 0
        self.image_shape: list[int] | None = None
        self.dtype: str | None = None
        self.cpu_at_window_start: float | None = None

    def record(self, batch: Mapping[str, Any], wait_s: float) -> None:
        """One batch the consumer received after waiting ``wait_s`` for it."""
        now = time.perf_counter()
        frames = _frames_in(batch, self.camera_keys)
        latency = batch["__bench_latency"].cpu().numpy()
        samples = int(latency.shape[0])
        if self.first_batch_at is None:
            self.first_batch_at = now
            if self.camera_keys and self.camera_keys[0] in batch:
                self.image_shape = list(batch[self.camera_keys[0]].shape[-3:])
                self.dtype = str(batch[self.camera_keys[0]].dtype).removeprefix("torch.")
        opens_window = self.window_start is None and len(self.timeline) >= self.warmup_batches
        if opens_window:  # batch warmup_batches + 1 opens the steady window
            self.window_start = now
            self.cpu_at_window_start = self.cpu_clock()
        elif self.window_start is not None:
            self.frames_steady += frames
            self.samples_steady += samples
            self.waits.append(wait_s)
        self.frames_total += frames
        self.latencies.append(latency)
        workers = batch["__bench_worker"].cpu().numpy()
        stats = batch["__bench_stats"].cpu().numpy()
        for w in np.unique(workers):
            latest = stats[workers == w].max(axis=0)  # counters are cumulative per worker
            prev = self.worker_stats.get(int(w))
            self.worker_stats[int(w)] = latest if prev is None else np.fmax(prev, latest)
        if opens_window:  # the counters up to this batch are the warm-up's
            self.worker_stats_at_window = {w: v.copy() for w, v in self.worker_stats.items()}
        if "episode_index" in batch:
            episodes = batch["episode_index"].reshape(-1).cpu()
            self.episodes_per_batch.append(int(episodes.unique().numel()))
            if "frame_index" in batch:
                self.shuffle_fracs.append(_shuffle_fraction(episodes, batch["frame_index"].reshape(-1).cpu()))
        self.timeline.append(
            {
                "t_s": now - self.start,
                "frames": frames,
                "samples": samples,
                "wait_s": wait_s,
                "p50_sample_latency_ms": float(np.median(latency) * 1e3),
            }
        )

    def summary(
        self,
        end: float,
        peak_rss_bytes: int,
        cpu_at_end: float | None = None,
        peak_pss_bytes: int | None = None,
        peak_node_bytes: int | None = None,
    ) -> dict[str, Any]:
        """The reference-design keys measured by this run (null where unmeasurable).

        ``cpu_at_end``: ``cpu_clock()`` when the last batch arrived (before the workers stop).
        """
        lat_ms = np.concatenate(self.latencies) * 1e3 if self.latencies else np.array([math.nan])
        totals = np.nansum(np.stack(list(self.worker_stats.values())), axis=0) if self.worker_stats else None
        any_value = (
            np.any(~np.isnan(np.stack(list(self.worker_stats.values()))), axis=0)
            if self.worker_stats
            else None
        )

        def stat(i: int) -> float | None:
            return None if totals is None or not any_value[i] else float(totals[i])

        hits, misses, evictions, decode_s, fetch_s, decoded, requested, blocks = (
            stat(i) for i in range(len(STAT_FIELDS))
        )
        at = STAT_FIELDS.index("shared_blocks_created")
        blocks_before = [v[at] for v in self.worker_stats_at_window.values() if not np.isnan(v[at])]
        worker_s = float(np.nansum(lat_ms) / 1e3)
        total = end - self.start
        steady = end - self.window_start if self.window_start is not None else math.nan
        lookups = (hits or 0) + (misses or 0)
        cpu_steady = (
            cpu_at_end - self.cpu_at_window_start
            if cpu_at_end is not None and self.cpu_at_window_start is not None
            else None
        )
        return {
            "dtype": self.dtype,
            "frames_measured": self.frames_steady,
            "frames_total": self.frames_total,
            "first_batch_latency_s": None
            if self.first_batch_at is None
            else self.first_batch_at - self.start,
            "frames_per_s_node": _rate(self.frames_steady, steady),
            "samples_per_s": _rate(self.samples_steady, steady),
            "cpu_s_steady": cpu_steady,
            "frames_per_cpu_s": _rate(self.frames_steady, cpu_steady) if cpu_steady else None,
            "decoded_per_requested": decoded / requested if decoded is not None and requested else None,
            "shared_blocks_created": blocks,
            "shared_blocks_created_steady": None if blocks is None else blocks - float(sum(blocks_before)),
            "p50_sample_latency_ms": float(np.nanpercentile(lat_ms, 50)),
            "p95_sample_latency_ms": float(np.nanpercentile(lat_ms, 95)),
            "p99_sample_latency_ms": float(np.nanpercentile(lat_ms, 99)),
            "video_decoder_cache": {
                "hits": hits,
                "misses": misses,
                "evictions": evictions,
                "hit_rate": hits / lookups if hits is not None and lookups else None,
            },
            "prefetch_waits": sum(w > PREFETCH_WAIT_THRESHOLD_S for w in self.waits),
            "prefetch_wait_s_total": float(sum(self.waits)),
            "batches_measured": len(self.waits),
            "episodes_per_batch_mean": _mean(self.episodes_per_batch),
            "shuffle_randomness_frac": _mean([f for f in self.shuffle_fracs if not math.isnan(f)]),
            "image_shape": self.image_shape,
            "peak_rss_gb": peak_rss_bytes / 2**30,
            "peak_pss_gb": None if peak_pss_bytes is None else peak_pss_bytes / 2**30,
            "peak_node_memory_gb": None if peak_node_bytes is None else peak_node_bytes / 2**30,
            "total_time_s": total,
            "warmup_batches": self.warmup_batches,
            "steady_time_s": steady,
            "decode_s_total": decode_s,
            "fetch_s_total": fetch_s,
            "worker_time_s_total": worker_s,
            "decode_pct_worker_time": _pct(decode_s, worker_s),
            "fetch_pct_worker_time": _pct(fetch_s, worker_s),
        }


def _rate(count: float, seconds: float) -> float | None:
    return count / seconds if seconds and seconds > 0 and not math.isnan(seconds) else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _pct(part: float | None, whole: float) -> float | None:
    return 100.0 * part / whole if part is not None and whole > 0 else None


def _flat(result: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row: nested dicts become ``outer.inner`` columns, lists become JSON."""
    row: dict[str, Any] = {}
    for key, value in result.items():
        if key in ("timeline", "peers", "ratios_vs_ours"):
            continue
        if isinstance(value, Mapping):
            row.update({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            row[key] = json.dumps(value)
        else:
            row[key] = value
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_timelines(path: Path, timelines: Mapping[str, list[dict[str, float]]], title: str) -> bool:
    """PNG of frames/s (1 s bins) and p50 sample latency per batch over time; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, timeline in timelines.items():
        if not timeline:
            continue
        t = np.array([r["t_s"] for r in timeline])
        frames = np.array([r["frames"] for r in timeline])
        edges = np.arange(0.0, t.max() + 1.0, 1.0)
        per_bin, _ = np.histogram(t, bins=edges, weights=frames)
        top.stairs(per_bin, edges, label=name)
        bottom.plot(t, [r["p50_sample_latency_ms"] for r in timeline], ".-", label=name, markersize=3)
    top.set_ylabel("frames/s (1 s bins)")
    bottom.set_ylabel("p50 sample latency (ms)")
    bottom.set_xlabel("seconds since the DataLoader iterator was created")
    top.legend()
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_results(out_dir: Path, stem: str, result: dict[str, Any]) -> list[Path]:
    """Writes ``{stem}.json``, ``{stem}.csv``, ``{stem}_peers.csv`` and ``{stem}.png``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}.json", out_dir / f"{stem}.csv"]
    written[0].write_text(json.dumps(result, indent=2, default=float) + "\n")
    _write_csv(written[1], [_flat(result)])
    peers = result.get("peers", {})
    if peers:
        written.append(out_dir / f"{stem}_peers.csv")
        _write_csv(written[-1], [{"peer": name, **_flat(r)} for name, r in peers.items()])
    timelines = {"ours": result.get("timeline", [])}
    timelines.update({name: r.get("timeline", []) for name, r in peers.items()})
    png = out_dir / f"{stem}.png"
    if plot_timelines(png, timelines, f"{stem} ({result.get('repo_id')})"):
        written.append(png)
    return written
