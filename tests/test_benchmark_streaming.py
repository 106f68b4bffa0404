"""bench/benchmark_streaming.py on the tiny dataset: file naming, reference keys, frame accounting,
the same frame dtype from every peer, the decode limit measured on the same files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
REFERENCE_KEYS = [
    "repo_id",
    "source",
    "mode",
    "batch_size",
    "num_workers",
    "episode_pool_size",
    "num_cameras",
    "fps",
    "device",
    "video_decode_device",
    "frames_measured",
    "first_batch_latency_s",
    "frames_per_s_node",
    "samples_per_s",
    "p50_sample_latency_ms",
    "p95_sample_latency_ms",
    "p99_sample_latency_ms",
    "wallclock_s",
    "video_decoder_cache",
    "prefetch_factor",
    "episodes_per_batch_mean",
    "shuffle_randomness_frac",
    "image_shape",
    "peak_rss_gb",
    "total_time_s",
    "steady_time_s",
    "decode_s_total",
    "fetch_s_total",
    "decode_pct_worker_time",
    "fetch_pct_worker_time",
    "prefetch_waits",
]


@pytest.fixture(scope="module")
def bench_main() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        from benchmark_streaming import main
    finally:
        sys.path.remove(str(BENCH))
    return main


@pytest.mark.parametrize(("mode", "frames_per_camera"), [("single", 1), ("window", 2), ("sarm", 13)])
def test_benchmark_writes_reference_keys_and_counts_frames(
    bench_main: Any, tiny_dataset: Path, tmp_path: Path, mode: str, frames_per_camera: int
) -> None:
    batches, batch_size = 4, 3
    args = [
        "--root",
        str(tiny_dataset),
        "--mode",
        mode,
        "--num-workers",
        "0",
        "--batch-size",
        str(batch_size),
    ]
    args += ["--max-batches", str(batches), "--out-dir", str(tmp_path), "--compare-naive"]
    assert bench_main(args) == 0
    stem = f"local_{mode}_bs{batch_size}_w0_cpu"
    result = json.loads((tmp_path / f"{stem}.json").read_text())
    missing = [k for k in REFERENCE_KEYS if k not in result]
    assert not missing, f"missing reference keys: {missing}"
    cameras = result["num_cameras"]
    # the first batch is start-up; the rest are measured
    assert result["frames_measured"] == (batches - 1) * batch_size * cameras * frames_per_camera
    assert result["peers"]["naive"]["frames_measured"] == result["frames_measured"]
    cache = result["video_decoder_cache"]
    assert cache["hits"] + cache["misses"] >= batches * batch_size * cameras
    assert result["ratios_vs_ours"]["naive"] > 0
    assert result["dtype"] == result["peers"]["naive"]["dtype"] == "float32"  # lerobot's default, for all
    assert result["decoded_per_requested"] >= 1.0 if mode == "single" else result["decoded_per_requested"] > 0
    assert result["decode_limit_frames_per_s"] > 0 and result["ratio_to_limit"] > 0
    assert result["sequential_decode"]["frames"] > 0
    with (tmp_path / f"{stem}.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["mode"] == mode
    assert (tmp_path / f"{stem}_peers.csv").is_file()


def test_uint8_for_every_peer_and_dataset_built_batches(
    bench_main: Any, tiny_dataset: Path, tmp_path: Path
) -> None:
    args = ["--root", str(tiny_dataset), "--mode", "single", "--num-workers", "2", "--batch-size", "3"]
    # 12 batches: with 4, the workers' prefetch (2 x 2 batches) could make all of them before the
    # steady window opened, leaving it under one CPU clock tick (frames_per_cpu_s None; seen once in CI)
    args += ["--max-batches", "12", "--out-dir", str(tmp_path), "--compare-naive", "--compare-batched"]
    args += ["--uint8", "--no-limit"]
    assert bench_main(args) == 0
    result = json.loads((tmp_path / "local_single_bs3_w2_cpu.json").read_text())
    assert {n: p["dtype"] for n, p in result["peers"].items()} == {"ours-batched": "uint8", "naive": "uint8"}
    assert result["dtype"] == "uint8"
    assert result["peers"]["ours-batched"]["frames_measured"] == result["frames_measured"]
    assert result["frames_per_cpu_s"] > 0 and result["decode_limit_frames_per_s"] is None


def test_decode_stage_run_delivers_frames_not_requests(
    bench_main: Any, tiny_dataset: Path, tmp_path: Path
) -> None:
    """--video-decode-stage (what --video-decode-device cuda implies) runs ours through the decode stage:
    the consumer gets camera frames, counted as usual, and the stage's counters are recorded."""
    args = ["--root", str(tiny_dataset), "--mode", "window", "--num-workers", "2", "--batch-size", "3"]
    args += ["--max-batches", "4", "--out-dir", str(tmp_path), "--no-limit", "--video-decode-stage"]
    assert bench_main(args) == 0
    result = json.loads((tmp_path / "local_window_bs3_w2_cpu.json").read_text())
    assert result["video_decode_stage"] is True
    assert result["frames_measured"] == 3 * 3 * result["num_cameras"] * 2  # 3 measured batches, 2 frames each
    stage = result["decode_stage"]
    assert stage["device"] == "cpu" and stage["frames"] == stage["frames_by_backend"]["cpu"] > 0
