"""Image smoke test, run by the Dockerfile's smoke stage as the image's user.

1. Decode: encodes a small AV1 clip whose frame ``i`` is a flat grey of a known level, decodes its
   frames in a shuffled order with ``lerobot_stream.VideoDecoder`` (the image's libavcodec/dav1d) and
   checks shape, dtype, request order and pixel values.
2. Stream: runs the image's entry point, ``lerobot-stream-bench``, on the demo dataset for a few
   batches (DataLoader workers included) and checks the batches and samples it reports.

Prints ``OK`` last and exits 0 only when every check holds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import torch

import lerobot_stream
from lerobot_stream import VideoDecoder

NUM_FRAMES = 24
FPS = 10
WIDTH, HEIGHT = 96, 64
TOLERANCE = 6  # max |decoded - encoded| grey level after lossy AV1 and YUV -> RGB
BENCH_BATCHES, BENCH_BATCH_SIZE = 4, 8


def grey_level(index: int) -> int:
    """The grey level written into frame ``index``: distinct, well inside the video range."""
    return 30 + 8 * index


def write_clip(path: Path) -> None:
    """Writes ``NUM_FRAMES`` flat grey frames as AV1 (libsvtav1) in an mp4 at ``FPS``."""
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libsvtav1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(NUM_FRAMES):
            rgb = np.full((HEIGHT, WIDTH, 3), grey_level(i), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"smoke FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def check_decode() -> None:
    """Decodes a generated clip in shuffled order and checks every frame's grey level."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip)
        decoder = VideoDecoder(str(clip), threads=2)
        times = decoder.frame_times
        check(len(times) == NUM_FRAMES, f"expected {NUM_FRAMES} frame times, got {len(times)}")
        order = list(range(NUM_FRAMES))
        random.Random(0).shuffle(order)
        frames = decoder.get_frames_at([times[i] for i in order])
    check(isinstance(frames, torch.Tensor), f"expected a torch.Tensor, got {type(frames)}")
    check(frames.dtype == torch.uint8, f"expected uint8 frames, got {frames.dtype}")
    check(tuple(frames.shape) == (NUM_FRAMES, 3, HEIGHT, WIDTH), f"unexpected shape {tuple(frames.shape)}")
    for position, index in enumerate(order):
        error = (frames[position].int() - grey_level(index)).abs().max().item()
        check(error <= TOLERANCE, f"frame {index} (requested at {position}) is off by {error} grey levels")
    print(
        f"lerobot_stream {lerobot_stream.__version__}, torch {torch.__version__}, "
        f"decoder backend {decoder.backend}: {NUM_FRAMES} AV1 frames decoded in shuffled order"
    )


def check_stream() -> None:
    """Runs the entry point on the demo dataset for a few batches and checks what it reports."""
    command = ["lerobot-stream-bench", "--max-batches", str(BENCH_BATCHES), "--batch-size"]
    command += [str(BENCH_BATCH_SIZE), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    check(result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    check(figures["batches"] == BENCH_BATCHES, f"expected {BENCH_BATCHES} batches, got {figures}")
    check(figures["samples"] == BENCH_BATCHES * BENCH_BATCH_SIZE, f"unexpected sample count: {figures}")
    print(f"{' '.join(command)}: {json.dumps(figures)}")


def main() -> None:
    check_decode()
    check_stream()
    print("OK")


if __name__ == "__main__":
    main()
