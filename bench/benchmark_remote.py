"""Remote streaming vs local: bytes the server sent per epoch, cache peak, first batch, frames/s.

Writes a synthetic dataset (or uses ``--root``), serves it with nginx on 127.0.0.1 behind the tests'
fault proxy, which adds ``--latency-ms`` to every request and caps every connection at
``--mbit`` Mbit/s, and streams one epoch through a DataLoader, side by side in one run:

    local        the dataset directory
    http         the same dataset over HTTP: episode byte ranges (default), or whole video files
                 with ``--whole-files`` (the behaviour before ranges, for the before/after figures)

For the HTTP run it reports, from nginx's own access log (``$body_bytes_sent``): video bytes and
data (parquet) bytes sent ÷ those files' bytes on disk; the video cache directory's peak bytes on
disk (polled every 10 ms); first-batch latency; frames/s (camera frames, whole run and steady
state after the first batch) and their ratio to local. One JSON object goes to stdout (and
``--out``).

The server (nginx and the proxy, which is Python) runs on the same cores as the loader here, so
the wall-clock ratio also pays for the server's CPU, which a real deployment spends on another
machine. ``consumer_cpu_s`` counts only the loader's CPU (DataLoader workers and the main thread,
not the proxy's threads), ``server_cpu_s`` the server's, and ``consumer_cpu_ratio_http_to_local``
compares frames per consumer CPU second: the remote path's own cost, whatever the server costs.

    python bench/benchmark_remote.py                    # ~1 min: 240 episodes, 2 cameras, 96x128
    python bench/benchmark_remote.py --whole-files      # the same, whole video files (before)
    python -m lerobot_stream.synth data/w1 --episodes 40 --cameras 2 --height 480 --width 640 \\
        --codec av1 --fps 30 --min-length 280 --max-length 320  # W1 (minutes to write)
    python bench/benchmark_remote.py --root data/w1

Run it with another checkout's interpreter (``/path/to/main/.venv/bin/python bench/...``) to measure
that code: options it does not know (``video_fetch``) are left out.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test servers

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.synth import write_dataset

try:
    from lerobot_stream.remote.cache_state import INTERNAL_FILES
except ImportError:  # an older checkout (run with its interpreter for "before" figures)
    INTERNAL_FILES = (".lock", ".state.json")
from servers import FaultProxy, NginxServer


class CachePeak(threading.Thread):
    """Polls a directory's total file bytes (temporary files included); keeps the peak."""

    def __init__(self, directory: Path) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.peak = 0
        self.cpu_s = 0.0  # this thread's own CPU (measurement, not server or loader)
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.thread_time()
        while not self._stop_event.is_set():
            total = 0
            with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
                for entry in entries:
                    with contextlib.suppress(FileNotFoundError):
                        total += entry.stat().st_size if entry.name not in INTERNAL_FILES else 0
            self.peak = max(self.peak, total)
            self._stop_event.wait(0.01)
        self.cpu_s = time.thread_time() - start

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run(root: str | Path, args: argparse.Namespace, **kwargs: Any) -> dict[str, float]:
    """One epoch through a DataLoader: frames/s (camera frames), first-batch latency, wall time."""
    start = time.perf_counter()
    main_thread_start = time.thread_time()
    cpu_start = (_cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN))
    accepted = inspect.signature(StreamingLeRobotDataset).parameters
    ds = StreamingLeRobotDataset(
        "bench/remote",
        root=root,
        episode_pool_size=args.pool,
        num_workers=args.workers,
        **{k: v for k, v in kwargs.items() if k in accepted},
    )
    loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers)
    cameras = len(ds.meta.video_keys)
    samples, first_batch, first_samples = 0, 0.0, 0
    for batch in loader:
        samples += len(batch["index"])
        if not first_samples:
            first_batch, first_samples = time.perf_counter() - start, samples
    wall = time.perf_counter() - start
    main_thread = time.thread_time() - main_thread_start
    workers = _cpu_s(resource.RUSAGE_CHILDREN) - cpu_start[1]
    return {
        "samples": samples,
        "frames_per_s": samples * cameras / wall,
        "steady_frames_per_s": (samples - first_samples) * cameras / max(wall - first_batch, 1e-9),
        "first_batch_latency_s": first_batch,
        "wallclock_s": wall,
        # CPU seconds of this process (the test proxy's threads run here) and of the ended workers
        "cpu_main_s": _cpu_s(resource.RUSAGE_SELF) - cpu_start[0],
        "cpu_main_thread_s": main_thread,
        "cpu_workers_s": workers,
        "consumer_cpu_s": main_thread + workers,
        "frames_per_consumer_cpu_s": samples * cameras / max(main_thread + workers, 1e-9),
    }


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def disk_bytes(root: Path, sub: str) -> int:
    return sum(p.stat().st_size for p in (root / sub).rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="existing local dataset (default: write one)")
    parser.add_argument("--episodes", type=int, default=240)
    parser.add_argument("--min-length", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--video-mb", type=float, default=0.22, help="video file size cap (MB)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every HTTP request")
    parser.add_argument("--mbit", type=float, default=100.0, help="cap per connection (Mbit/s; 0: none)")
    parser.add_argument("--whole-files", action="store_true", help="fetch whole video files (before)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16)
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
                codec="h264",
                gop=4,
                crf=16,
                min_length=args.min_length,
                max_length=args.max_length,
                video_files_size_in_mb=args.video_mb,
            )
        else:
            shutil.copytree(root, work / "www" / "ds")
        root = Path(root)
        fetch = "whole_files" if args.whole_files else "ranges"
        results: dict[str, Any] = {"config": {k: str(v) for k, v in vars(args).items()}, "fetch": fetch}
        results["local"] = run(root, args)
        cache = work / "cache"
        shaping = {"latency_s": args.latency_ms / 1000, "bandwidth_bps": args.mbit * 125_000 or None}
        with NginxServer(work / "www") as server, FaultProxy(server.port, **shaping) as proxy:
            peak = CachePeak(cache)
            peak.start()
            nginx_cpu = server.cpu_s()
            results["http"] = run(f"{proxy.url}/ds", args, video_cache_dir=cache, video_fetch=fetch)
            http = results["http"]
            http["peak_cache_bytes"] = peak.stop()
            http["cache_poller_cpu_s"] = peak.cpu_s
            # nginx, plus this process's CPU beyond its main thread and the cache poller: the proxy's
            http["server_cpu_s"] = (
                server.cpu_s() - nginx_cpu + http["cpu_main_s"] - http["cpu_main_thread_s"] - peak.cpu_s
            )
            sent = server.bytes_sent()
            results["http"]["http_requests"] = proxy.requests
        for sub in ("videos", "data"):
            on_disk = disk_bytes(root, sub)
            served = sum(n for path, n in sent.items() if path.startswith(f"/ds/{sub}/"))
            results["http"][f"{sub}_bytes_sent"] = served
            results["http"][f"{sub}_bytes_on_disk"] = on_disk
            results["http"][f"{sub}_sent_per_disk"] = served / on_disk
        results["http"]["peak_cache_per_video_disk"] = results["http"]["peak_cache_bytes"] / disk_bytes(
            root, "videos"
        )
        results["ratio_http_to_local"] = results["http"]["frames_per_s"] / results["local"]["frames_per_s"]
        results["consumer_cpu_ratio_http_to_local"] = (
            results["http"]["frames_per_consumer_cpu_s"] / results["local"]["frames_per_consumer_cpu_s"]
        )
        results["steady_ratio_http_to_local"] = (
            results["http"]["steady_frames_per_s"] / results["local"]["steady_frames_per_s"]
        )
        text = json.dumps(results, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
