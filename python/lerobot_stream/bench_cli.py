"""``lerobot-stream-bench``: stream a LeRobot v3 dataset through a DataLoader and print throughput.

With no ``--root`` it writes (once) the embedded demo dataset, a small synthetic v3 dataset with
real AV1 video, and streams that: the command the README's first set-up step and the Docker image
run. The full benchmark with peers, plots and every reported field is ``bench/benchmark_streaming.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from lerobot_stream.cli_help import argument_parser

DEMO_EPISODES = 12
DEMO_CAMERAS = 2
DEMO_HEIGHT = 96
DEMO_WIDTH = 128
DEMO_FPS = 30


def demo_dataset_root() -> Path:
    """Where the demo dataset lives: ``$LRS_DEMO_DIR`` or ``~/.cache/lerobot_stream/demo``."""
    default = Path.home() / ".cache" / "lerobot_stream" / "demo"
    return Path(os.environ.get("LRS_DEMO_DIR", default))


def ensure_demo_dataset(root: Path) -> Path:
    """Writes the demo dataset to ``root`` unless a complete one is there."""
    if (root / "meta" / "info.json").is_file():
        return root
    from lerobot_stream.synth import write_dataset

    started = time.perf_counter()
    write_dataset(
        root,
        num_episodes=DEMO_EPISODES,
        num_cameras=DEMO_CAMERAS,
        height=DEMO_HEIGHT,
        width=DEMO_WIDTH,
        codec="av1",
        fps=DEMO_FPS,
        min_length=40,
        max_length=90,
        video_files_size_in_mb=0.05,
        overwrite=True,
    )
    print(f"wrote demo dataset to {root} in {time.perf_counter() - started:.1f}s", flush=True)
    return root


def run(
    root: Path,
    *,
    num_workers: int,
    batch_size: int,
    max_batches: int | None,
    episode_pool_size: int,
) -> dict[str, object]:
    """Streams ``root`` for one epoch (or ``max_batches``) and returns the measured figures."""
    from lerobot_stream import StreamingLeRobotDataset

    dataset = StreamingLeRobotDataset(
        repo_id=f"local/{root.name}",
        root=root,
        episode_pool_size=episode_pool_size,
        num_workers=num_workers,
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    camera_keys = list(dataset.meta.camera_keys)
    started = time.perf_counter()
    first_batch_s = None
    samples = 0
    batches = 0
    for batch in loader:
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - started
        samples += len(batch["index"])
        batches += 1
        if max_batches is not None and batches >= max_batches:
            break
    elapsed = time.perf_counter() - started
    return {
        "root": str(root),
        "num_workers": num_workers,
        "batch_size": batch_size,
        "episode_pool_size": episode_pool_size,
        "num_cameras": len(camera_keys),
        "batches": batches,
        "samples": samples,
        "wallclock_s": round(elapsed, 3),
        "first_batch_latency_s": round(first_batch_s or 0.0, 3),
        "samples_per_s": round(samples / elapsed, 1),
        "frames_per_s": round(samples * len(camera_keys) / elapsed, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(
        "lerobot-stream-bench",
        "Stream a LeRobot v3 dataset through StreamingLeRobotDataset and a torch DataLoader, and print\n"
        "throughput (samples/s, decoded frames/s, first-batch latency). Without --root it streams the\n"
        "demo dataset, written once to $LRS_DEMO_DIR (default ~/.cache/lerobot_stream/demo).",
        "The full benchmark (peers, plots, every reported field) is bench/benchmark_streaming.py.",
    )
    parser.add_argument("--root", type=Path, help="a local LeRobot v3 dataset (default: the demo dataset)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per batch")
    parser.add_argument(
        "--max-batches", type=int, default=None, help="stop after this many batches (default: one epoch)"
    )
    parser.add_argument(
        "--episode-pool-size", type=int, default=4, help="whole episodes each worker keeps in RAM"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    root = args.root if args.root is not None else ensure_demo_dataset(demo_dataset_root())
    figures = run(
        root,
        num_workers=args.num_workers,
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        episode_pool_size=args.episode_pool_size,
    )
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"streamed {figures['samples']} samples ({figures['batches']} batches) from {figures['root']} "
            f"with {args.num_workers} workers in {figures['wallclock_s']}s: "
            f"{figures['samples_per_s']} samples/s, {figures['frames_per_s']} decoded frames/s, "
            f"first batch after {figures['first_batch_latency_s']}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
