"""The machine's decode limit for a dataset, measured in the benchmark's own run (Note [Decode limit]).

Note [Decode limit]
~~~~~~~~~~~~~~~~~~~
A loader that decodes on the CPU cannot deliver more frames per second than the cores can decode:
``cores x sequential rate / decoded_per_requested``, where the sequential rate is one thread decoding
a file from its start to RGB24 (``ffmpeg -threads 1 -c:v libdav1d -i F -pix_fmt rgb24 -f null -``,
the decoder's best case: every decoded frame is delivered) and ``decoded_per_requested`` is what a
random access really decodes (our decoders count it: about 1.5 at GOP 2, less when a sample's
frames repeat). The sequential rate is measured on the benchmarked dataset's own files, in the same
run, so ``ratio_to_limit`` (frames/s delivered / the limit) compares like with like. The same ratio
per CPU second (``ratio_to_limit_cpu``: frames per CPU second of the loader's process tree against
the sequential frames per CPU second of ffmpeg) stays meaningful on a machine shared with other
work, where wall-clock rates follow the load.

The hard bound is every requested frame decoded once, in order: ``cores x sequential rate``
(``ratio_to_sequential``). A loader that keeps frames decoded on the way for their own requests
(Note [Frame stash] in ``cpp/av/frame_stash.h``) decodes fewer than ``decoded_per_requested`` and can
pass the first limit, not this one, unless samples ask for a frame several times (windows: SARM's
offsets), where frames requested outnumber frames decoded even without a stash.

At small GOPs the limit is optimistic: a keyframe costs several times a frame between keyframes,
and random access decodes one keyframe per request while a sequential read decodes one per GOP
(``lrs_decode_bench`` prices the decoded mix; bench/README.md).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

SEQUENTIAL_FRAMES = 300  # per file: a few seconds of decoding on one thread


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ffmpeg_rate(path: Path, codec: str, frames: int) -> tuple[int, float, float]:
    """(frames, wall s, CPU s) of ffmpeg decoding the first ``frames`` frames of ``path`` on one thread."""
    decoder = ["-c:v", "libdav1d"] if codec == "av1" else []
    command = ["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", *decoder, "-i", str(path)]
    command += ["-frames:v", str(frames), "-pix_fmt", "rgb24", "-f", "null", "-"]
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return frames, time.perf_counter() - start, _children_cpu() - cpu


def _own_rate(path: Path, frames: int) -> tuple[int, float, float]:
    """The same with lerobot_stream's decoder (uint8, one thread) when ffmpeg is not installed."""
    from lerobot_stream import VideoDecoder

    decoder = VideoDecoder(str(path), threads=1)
    times = decoder.frame_times[:frames]
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(0, len(times), 16):
        decoder.get_frames_at(times[i : i + 16])
    return len(times), time.perf_counter() - start, time.process_time() - cpu


def sequential_rate(files: list[Path], codec: str, frames_per_file: int = SEQUENTIAL_FRAMES) -> dict:
    """One thread's sequential decode rate over ``files`` (the first ``frames_per_file`` of each)."""
    use_ffmpeg = shutil.which("ffmpeg") is not None
    total = wall = cpu = 0.0
    for path in files:
        n, w, c = (
            _ffmpeg_rate(path, codec, frames_per_file) if use_ffmpeg else _own_rate(path, frames_per_file)
        )
        total, wall, cpu = total + n, wall + w, cpu + c
    tool = "ffmpeg -threads 1" + (" -c:v libdav1d" if codec == "av1" else "") + " -pix_fmt rgb24"
    return {
        "tool": tool if use_ffmpeg else "lerobot_stream.VideoDecoder(threads=1) uint8",
        "files": [str(f) for f in files],
        "frames": int(total),
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": total / wall if wall else None,
        "frames_per_cpu_s": total / cpu if cpu else None,
    }


def dataset_video_files(root: Path, video_keys: list[str]) -> list[Path]:
    """The first video file of every camera of a local dataset."""
    out = []
    for key in video_keys:
        files = sorted((root / "videos" / key).rglob("*.mp4"))
        if files:
            out.append(files[0])
    return out


def limit_fields(
    result: dict[str, Any], sequential: dict[str, Any], decoded_per_requested: float | None
) -> dict:
    """``decode_limit_frames_per_s``, ``ratio_to_limit``, ``ratio_to_sequential`` (and per-CPU-second
    twins) for one peer's result (Note [Decode limit])."""
    if not decoded_per_requested or not sequential.get("frames_per_s"):
        return {
            "decode_limit_frames_per_s": None,
            "ratio_to_limit": None,
            "ratio_to_limit_cpu": None,
            "ratio_to_sequential": None,
            "ratio_to_sequential_cpu": None,
        }
    limit = cores() * sequential["frames_per_s"] / decoded_per_requested
    per_cpu = sequential.get("frames_per_cpu_s")
    limit_cpu = per_cpu / decoded_per_requested if per_cpu else None
    fps, fpc = result.get("frames_per_s_node"), result.get("frames_per_cpu_s")
    return {
        "decode_limit_frames_per_s": limit,
        "ratio_to_limit": fps / limit if fps else None,
        "decode_limit_frames_per_cpu_s": limit_cpu,
        "ratio_to_limit_cpu": fpc / limit_cpu if fpc and limit_cpu else None,
        "ratio_to_sequential": fps / (cores() * sequential["frames_per_s"]) if fps else None,
        "ratio_to_sequential_cpu": fpc / per_cpu if fpc and per_cpu else None,
    }
