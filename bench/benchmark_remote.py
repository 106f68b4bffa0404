"""Local vs. HTTP streaming (with added latency), with and without the video prefetcher.

Writes a synthetic dataset (or uses ``--root``), serves it with nginx on 127.0.0.1 behind the
tests' proxy adding ``--latency-ms`` to every request, and streams one epoch through a DataLoader
three ways: from the local directory, over HTTP with prefetch-on-admit, over HTTP without
prefetch (each episode's first decode waits for its video files). Prints one JSON object with
frames/s per run (whole run, and steady = after the first batch) and the ratios to local;
``--out`` also writes it to a file.

    python bench/benchmark_remote.py --episodes 24 --length 200 --latency-ms 50

Measured (2 shared CPU cores, 24 episodes x 200 frames, 2 cameras 240x320 AV1, batch 16, 2 workers,
pool 64, 50 ms per request): local 690 frames/s; HTTP with prefetch 639 (0.93 of local; steady
state after the first batch 1.01); HTTP without prefetch 603 (0.87; steady 0.97). First batch:
0.42 s local, 1.7 s HTTP (metadata and parquet footers over 50 ms round trips).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test servers

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.synth import write_dataset
from servers import FaultProxy, NginxServer


def run(root: str | Path, args: argparse.Namespace, **kwargs: Any) -> dict[str, float]:
    """One epoch through a DataLoader: frames/s (camera frames), first-batch latency, wall time."""
    start = time.perf_counter()
    ds = StreamingLeRobotDataset(
        "bench/remote", root=root, episode_pool_size=args.pool, num_workers=args.workers, **kwargs
    )
    loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers)
    cameras = len(ds.meta.video_keys)
    samples, first_batch, first_samples = 0, 0.0, 0
    for batch in loader:
        samples += len(batch["index"])
        if not first_samples:
            first_batch, first_samples = time.perf_counter() - start, samples
    wall = time.perf_counter() - start
    return {
        "samples": samples,
        "frames_per_s": samples * cameras / wall,
        "steady_frames_per_s": (samples - first_samples) * cameras / max(wall - first_batch, 1e-9),
        "first_batch_latency_s": first_batch,
        "wallclock_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="existing local dataset (default: write one)")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--video-mb", type=float, default=2.0, help="video file size cap (MB)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    work = Path(tempfile.mkdtemp(prefix="lrs-bench-remote-"))
    try:
        root = args.root
        if root is None:
            root = write_dataset(
                work / "www" / "ds",
                num_episodes=args.episodes,
                num_cameras=args.cameras,
                height=args.height,
                width=args.width,
                min_length=args.length,
                max_length=args.length,
                video_files_size_in_mb=args.video_mb,
            )
        else:
            shutil.copytree(root, work / "www" / "ds")
        results: dict[str, Any] = {"config": {k: str(v) for k, v in vars(args).items()}}
        results["local"] = run(root, args)
        with (
            NginxServer(work / "www") as server,
            FaultProxy(server.port, latency_s=args.latency_ms / 1000) as proxy,
        ):
            url = f"{proxy.url}/ds"
            for name, prefetch in (("http_prefetch", True), ("http_no_prefetch", False)):
                cache = work / f"cache-{name}"
                results[name] = run(url, args, video_cache_dir=cache, prefetch_videos=prefetch)
                results[name]["http_requests"] = proxy.requests
                proxy.requests = 0
        local_fps = results["local"]["frames_per_s"]
        for name in ("http_prefetch", "http_no_prefetch"):
            results[f"ratio_{name}_to_local"] = results[name]["frames_per_s"] / local_fps
            results[f"steady_ratio_{name}_to_local"] = (
                results[name]["steady_frames_per_s"] / results["local"]["steady_frames_per_s"]
            )
        text = json.dumps(results, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
