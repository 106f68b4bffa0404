"""bench/stream_metrics.py's accounting: which batches and CPU seconds the steady window counts
(with and without a warm-up), and the memory sampler's own CPU left out of the loader's."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def metrics() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import stream_metrics

        yield stream_metrics
    finally:
        sys.path.remove(str(BENCH))


class Clock:
    """A settable stand-in for time.perf_counter and the loader's CPU clock."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0

    def perf_counter(self) -> float:
        return self.wall


def batch(samples: int, cameras: int = 2, blocks_created: int = 0) -> dict[str, torch.Tensor]:
    out = {f"observation.images.cam{c}": torch.zeros(samples, 3, 4, 4) for c in range(cameras)}
    out["__bench_latency"] = torch.full((samples,), 0.01, dtype=torch.float64)
    out["__bench_worker"] = torch.zeros(samples, dtype=torch.int64)
    out["__bench_stats"] = torch.zeros(samples, 8, dtype=torch.float64)
    out["__bench_stats"][:, 7] = blocks_created  # the worker's cumulative count
    return out


@pytest.mark.parametrize(("warmup_batches", "window_opens_at"), [(0, 0), (3, 3)])
def test_steady_window_counts_batches_after_the_one_that_opens_it(
    metrics: Any, monkeypatch: pytest.MonkeyPatch, warmup_batches: int, window_opens_at: int
) -> None:
    clock = Clock()
    monkeypatch.setattr(metrics.time, "perf_counter", clock.perf_counter)
    cameras = ["observation.images.cam0", "observation.images.cam1"]
    recorder = metrics.RunRecorder(cameras, cpu_clock=lambda: clock.cpu, warmup_batches=warmup_batches)
    cpu_at_open = None
    for i in range(8):  # batch i arrives at start + i + 1 s; the loader uses 2 CPU s per batch
        clock.wall += 1.0
        clock.cpu += 2.0
        if i == window_opens_at:
            cpu_at_open, wall_at_open = clock.cpu, clock.wall
        recorder.record(batch(4, blocks_created=min(i, 5)), wait_s=0.0)  # a block per batch up to 5
    summary = recorder.summary(clock.wall, peak_rss_bytes=0, cpu_at_end=clock.cpu)
    measured_batches = 8 - 1 - window_opens_at
    assert summary["frames_measured"] == measured_batches * 4 * 2
    assert summary["batches_measured"] == measured_batches
    assert summary["steady_time_s"] == pytest.approx(clock.wall - wall_at_open)
    assert summary["cpu_s_steady"] == pytest.approx(clock.cpu - cpu_at_open)
    assert summary["frames_per_cpu_s"] == pytest.approx(4 * 2 / 2.0)
    assert summary["first_batch_latency_s"] == pytest.approx(1.0)  # start-up is the first batch either way
    assert summary["frames_total"] == 8 * 4 * 2
    assert summary["warmup_batches"] == warmup_batches
    assert summary["shared_blocks_created"] == 5
    assert summary["shared_blocks_created_steady"] == 5 - window_opens_at  # after the opening batch's


def test_sampler_cpu_is_left_out_of_the_loaders(metrics: Any) -> None:
    with metrics.TreeRssSampler(interval_s=0.01, pss_interval_s=0.0) as sampler:
        deadline = time.perf_counter() + 0.5
        while sampler.own_cpu_s == 0.0 and time.perf_counter() < deadline:
            time.sleep(0.02)
        own = sampler.own_cpu_s
        loader = sampler.loader_cpu_seconds()
        tree = metrics.tree_cpu_seconds()
    assert own > 0.0
    assert loader <= tree - own + 1e-6
    assert sampler.peak_bytes > 0
