"""``python -m lerobot_stream.demo``: write the embedded demo dataset, decode and stream it.

The README's first set-up step. Prints the decode rate of one video file and the DataLoader
throughput of ``StreamingLeRobotDataset`` on the demo dataset.
"""

from __future__ import annotations

import sys
import time

from lerobot_stream import VideoDecoder
from lerobot_stream.bench_cli import demo_dataset_root, ensure_demo_dataset, main


def decode_rate(root_videos: list[str]) -> str:
    """Sequential decode rate of the first video file, frames/s."""
    decoder = VideoDecoder(root_videos[0])
    times = decoder.frame_times
    started = time.perf_counter()
    for start in range(0, len(times), 32):
        decoder.get_frames_at(times[start : start + 32])
    elapsed = time.perf_counter() - started
    return f"decoded {len(times)} frames of {root_videos[0]} at {len(times) / elapsed:.0f} frames/s"


if __name__ == "__main__":
    root = ensure_demo_dataset(demo_dataset_root())
    print(decode_rate(sorted(str(p) for p in root.glob("videos/*/chunk-*/file-*.mp4"))))
    sys.exit(main(["--root", str(root)]))
