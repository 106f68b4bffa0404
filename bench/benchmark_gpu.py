"""GPU decode benchmark: ours against the NVDEC limit and the GPU peers, on the same files.

Rows (one class per peer, each timed on the same files, steady state only):

    ffmpeg-nvdec   ``ffmpeg -hwaccel cuda -hwaccel_output_format cuda -i F -f null -``: NVDEC's raw
                   rate, frames left on the GPU in NV12 (the limit: no colour conversion, no copy)
    ours-nvdec     ``DecodeStage`` on cuda, cuda_backend="nvdec": RGB uint8 batches on the GPU
    ffmpeg-dav1d   ``ffmpeg -threads 1 -c:v libdav1d -i F -f null -``: one core's AV1 rate
    ours-hybrid    ``DecodeStage`` on cuda, cuda_backend="cpu->cuda": dav1d on CPU threads, planar YUV
                   copied to the GPU, RGB there (Note [Hybrid path])
    ours-cpu       ``DecodeStage`` on the CPU: dav1d/libavcodec + swscale RGB, for reference
    torchcodec     ``torchcodec.decoders.VideoDecoder(F, device="cuda")``, when importable
    pynvvideocodec ``PyNvVideoCodec.SimpleDecoder`` (planar RGB), when importable

Each row decodes every frame of the file in order, ``--concurrency`` files at once (ffmpeg: that many
processes; ours: that many stage threads over that many copies; peers: threads). Startup (process,
CUDA context, decoder open) is excluded: ffmpeg's rate is the difference of two runs with different
``-stream_loop`` counts, ours and the peers time only the decode calls. Goals (issue 17): ours-nvdec
>= 0.8 x ffmpeg-nvdec; ours-hybrid >= 0.8 x (cores x ffmpeg-dav1d / 1.5).

Without a GPU the GPU rows are recorded as skipped, with the reason, and the CPU rows still run.

    python bench/benchmark_gpu.py --make-media DIR          # here: write DIR/{h264,hevc,av1}.mp4
    python bench/benchmark_gpu.py --media DIR --out gpu_bench.json [--seconds 4] [--ffmpeg PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lerobot_stream import _core, cuda_info

CODECS = ("h264", "hevc", "av1")


@dataclass
class Row:
    peer: str
    codec: str
    concurrency: int
    frames: int = 0
    seconds: float = 0.0
    frames_per_s: float | None = None
    skipped: str | None = None  # why the row did not run
    notes: dict[str, Any] = field(default_factory=dict)


def make_media(out: Path, frames: int) -> None:
    """One 480x640 camera video per codec, written by our v3 writer (lerobot's settings, GOP 2)."""
    from lerobot_stream.synth import write_dataset

    out.mkdir(parents=True, exist_ok=True)
    for codec in CODECS:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_dataset(
                Path(tmp) / "ds",
                num_episodes=1,
                num_cameras=1,
                height=480,
                width=640,
                codec=codec,
                min_length=frames,
                max_length=frames,
            )
            video = next((root / "videos").rglob("*.mp4"))
            shutil.copyfile(video, out / f"{codec}.mp4")
        print(f"wrote {out / f'{codec}.mp4'} ({(out / f'{codec}.mp4').stat().st_size >> 10} KiB)")


class FfmpegPeer:
    """ffmpeg processes decoding to the null muxer; rate from two loop counts (startup cancels)."""

    def __init__(self, ffmpeg: str, decode_args: list[str]) -> None:
        self.ffmpeg = ffmpeg
        self.decode_args = decode_args

    def _run(self, path: Path, loops: int, concurrency: int) -> float:
        cmd = [
            self.ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            *self.decode_args,
            "-stream_loop",
            str(loops - 1),
            "-i",
            str(path),
            "-f",
            "null",
            "-",
        ]
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE) for _ in range(concurrency)]
        errors = [p.communicate()[1].decode(errors="replace") for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError(f"{' '.join(cmd)} failed: {errors[0].strip()[-300:]}")
        return time.perf_counter() - start

    def measure(self, row: Row, path: Path, frames: int, seconds: float) -> None:
        self._run(path, 1, row.concurrency)  # warm: page cache, driver
        one = self._run(path, 1, row.concurrency)
        loops = max(2, int(seconds / max(one, 1e-3)))
        many = self._run(path, loops, row.concurrency)
        row.frames = (loops - 1) * frames * row.concurrency
        row.seconds = max(many - one, 1e-9)
        row.notes["command"] = " ".join([self.ffmpeg, *self.decode_args, "-i", path.name, "-f", "null", "-"])


class OursPeer:
    """Our DecodeStage: `concurrency` threads over that many copies of the file, every frame in order,
    16 frames per request, batches of `concurrency` requests (one per file)."""

    def __init__(self, device: str, cuda_backend: str) -> None:
        self.device = device
        self.cuda_backend = cuda_backend

    def measure(self, row: Row, path: Path, frames: int, seconds: float) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            copies = []
            for i in range(row.concurrency):  # the decoder cache keys by path: one decoder per copy
                copies.append(Path(tmp) / f"{i}{path.suffix}")
                os.link(path, copies[-1]) if _same_fs(path, Path(tmp)) else shutil.copyfile(path, copies[-1])
            stage = _core.DecodeStage(
                self.device,
                threads=row.concurrency,
                max_batches_ahead=3,
                cache_capacity=max(row.concurrency, 1),
                cuda_backend=self.cuda_backend,
            )
            times = np.array(_core.CpuVideoDecoder(str(path)).frame_times)
            info = _core.CpuVideoDecoder(str(path)).info
            stream = torch.cuda.current_stream().cuda_stream if self.device != "cpu" else 0
            chunks = [times[i : i + 16] for i in range(0, len(times) - 15, 16)]

            def one_pass() -> int:
                pending, done = [], 0
                for chunk in chunks:
                    ts = np.ascontiguousarray(np.tile(chunk, (row.concurrency, 1)))
                    pending.append(
                        stage.submit(
                            [[str(c) for c in copies]], [ts], [(info["height"], info["width"])], 1e-4, stream
                        )
                    )
                    if len(pending) > 2:
                        stage.take(pending.pop(0))
                    done += ts.size
                for ticket in pending:
                    stage.take(ticket)
                if self.device != "cpu":
                    torch.cuda.synchronize()
                return done

            one_pass()  # warm: decoders open, pools sized
            start, decoded = time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                decoded += one_pass()
            row.seconds = time.perf_counter() - start
            row.frames = decoded
            stats = stage.stats()
            row.notes["frames_by_backend"] = stats["frames_by_backend"]
            row.notes["decode_seconds"] = round(stats["decode_seconds"], 3)


class TorchcodecPeer:
    def measure(self, row: Row, path: Path, frames: int, seconds: float) -> None:
        from torchcodec.decoders import VideoDecoder

        def one_pass(decoder: Any) -> int:
            n = 0
            for start in range(0, frames, 16):
                batch = decoder.get_frames_in_range(start, min(start + 16, frames))
                n += batch.data.shape[0]
            return n

        _threaded(row, seconds, lambda: VideoDecoder(str(path), device="cuda"), one_pass)


class PyNvVideoCodecPeer:
    def measure(self, row: Row, path: Path, frames: int, seconds: float) -> None:
        import PyNvVideoCodec as nvc

        def make() -> Any:
            return nvc.SimpleDecoder(str(path), gpu_id=0, output_color_type=nvc.OutputColorType.RGBP)

        def one_pass(decoder: Any) -> int:
            n = 0
            for start in range(0, frames, 16):
                n += len(decoder.get_batch_frames_by_index(list(range(start, min(start + 16, frames)))))
            return n

        _threaded(row, seconds, make, one_pass)


def _threaded(row: Row, seconds: float, make: Callable[[], Any], one_pass: Callable[[Any], int]) -> None:
    decoders = [make() for _ in range(row.concurrency)]
    for d in decoders:
        one_pass(d)  # warm
    torch.cuda.synchronize()
    counts = [0] * row.concurrency

    def work(i: int) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            counts[i] += one_pass(decoders[i])

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(row.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    torch.cuda.synchronize()
    row.seconds = time.perf_counter() - start
    row.frames = sum(counts)


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def gpu_skip_reason() -> str | None:
    info = cuda_info()
    if not (info["driver_loaded"] and info["device_count"]):
        return f"no usable GPU: {info['reason']}"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} has no CUDA"
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = cuda_info()
    cores = len(os.sched_getaffinity(0))
    gpu_skip = gpu_skip_reason()
    nvdec_skip = gpu_skip or (None if info["available"] else f"no NVDEC: {info['reason']}")
    ffmpeg = args.ffmpeg or shutil.which("ffmpeg")
    files = {c: args.media / f"{c}.mp4" for c in CODECS}
    frames = {c: len(_core.CpuVideoDecoder(str(f)).frame_times) for c, f in files.items() if f.exists()}
    nvdec_codecs = {
        c for c in CODECS if info["devices"] and info["devices"][0]["nvdec"].get(c, {}).get("supported")
    }
    k = args.concurrency
    plan: list[tuple[str, str, int, Any, str | None]] = []
    for codec in CODECS:
        no_nvdec_codec = None if nvdec_skip or codec in nvdec_codecs else f"this GPU's NVDEC has no {codec}"
        for conc in (1, k):
            plan.append(
                (
                    "ffmpeg-nvdec",
                    codec,
                    conc,
                    FfmpegPeer(ffmpeg or "ffmpeg", ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda"]),
                    nvdec_skip or no_nvdec_codec or (None if ffmpeg else "no ffmpeg program"),
                )
            )
            plan.append(
                ("ours-nvdec", codec, conc, OursPeer("cuda:0", "nvdec"), nvdec_skip or no_nvdec_codec)
            )
        plan.append(("torchcodec", codec, 1, TorchcodecPeer(), gpu_skip or _importable("torchcodec")))
        plan.append(
            ("pynvvideocodec", codec, 1, PyNvVideoCodecPeer(), nvdec_skip or _importable("PyNvVideoCodec"))
        )
    plan.append(
        (
            "ffmpeg-dav1d",
            "av1",
            1,
            FfmpegPeer(ffmpeg or "ffmpeg", ["-threads", "1", "-c:v", "libdav1d"]),
            None if ffmpeg else "no ffmpeg program",
        )
    )
    plan.append(("ours-hybrid", "av1", cores, OursPeer("cuda:0", "cpu->cuda"), gpu_skip))
    plan.append(("ours-cpu", "av1", cores, OursPeer("cpu", "auto"), None))
    rows = []
    for peer, codec, conc, runner, skip in plan:
        row = Row(peer, codec, conc)
        if codec not in frames:
            row.skipped = f"no {files[codec]}"
        elif skip:
            row.skipped = skip
        else:
            try:
                runner.measure(row, files[codec], frames[codec], args.seconds)
                row.frames_per_s = round(row.frames / row.seconds, 1)
            except Exception as e:  # a peer that cannot run here is recorded, not fatal
                row.skipped = f"failed: {type(e).__name__}: {str(e)[:300]}"
        print(
            f"{peer:15s} {codec:5s} x{conc:<3d} "
            + (f"{row.frames_per_s} frames/s" if row.frames_per_s else f"skipped: {row.skipped}"),
            flush=True,
        )
        rows.append(row)
    return {
        "environment": _environment(info, cores, ffmpeg),
        "rows": [asdict(r) for r in rows],
        "ratios": _ratios(rows, cores),
    }


def _importable(module: str) -> str | None:
    try:
        __import__(module)
    except Exception as e:
        return f"{module} not importable: {type(e).__name__}: {str(e)[:200]}"
    return None


def _ratios(rows: list[Row], cores: int) -> dict[str, Any]:
    rate = {(r.peer, r.codec, r.concurrency): r.frames_per_s for r in rows if r.frames_per_s}
    out: dict[str, Any] = {}
    for (peer, codec, conc), fps in rate.items():
        limit = rate.get(("ffmpeg-nvdec", codec, conc))
        if peer == "ours-nvdec" and limit:
            out[f"ours-nvdec/ffmpeg-nvdec {codec} x{conc}"] = round(fps / limit, 3)
    dav1d = rate.get(("ffmpeg-dav1d", "av1", 1))
    hybrid = rate.get(("ours-hybrid", "av1", cores))
    if dav1d:
        out["hybrid_goal_frames_per_s"] = round(0.8 * cores * dav1d / 1.5, 1)
        if hybrid:
            out["ours-hybrid/(cores*dav1d/1.5)"] = round(hybrid / (cores * dav1d / 1.5), 3)
    return out


def _environment(info: dict[str, Any], cores: int, ffmpeg: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {"cores": cores, "torch": torch.__version__, "ffmpeg": ffmpeg, "cuda_info": info}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--media", type=Path, help="folder with {h264,hevc,av1}.mp4")
    parser.add_argument("--make-media", type=Path, help="write the media to this folder and exit")
    parser.add_argument("--frames", type=int, default=300, help="frames per media file (--make-media)")
    parser.add_argument("--out", type=Path, help="JSON results")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    parser.add_argument("--concurrency", type=int, default=4, help="files decoded at once (second row)")
    parser.add_argument("--ffmpeg", help="ffmpeg program (default: on PATH)")
    args = parser.parse_args()
    if args.make_media:
        make_media(args.make_media, args.frames)
        return
    if args.media is None:
        parser.error("--media or --make-media is required")
    results = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
