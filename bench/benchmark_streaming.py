#!/usr/bin/env python
"""Data-loading benchmark with a dummy consumer: how fast does a DataLoader feed a trainer?

Runs lerobot_stream's StreamingLeRobotDataset (and, side by side, the peers asked for) on one
dataset and writes ``{source}_{mode}_bs{B}_w{W}_{device}.json`` / ``.csv`` / ``_peers.csv`` / ``.png``
into ``--out-dir``. See bench/README.md for the matrix and the meaning of every key.

    python bench/benchmark_streaming.py --root data/ds --mode single --num-workers 2 --batch-size 16
    python bench/benchmark_streaming.py --make-dataset --mode sarm --compare-naive --compare-lerobot

Every peer delivers float32 frames in [0, 1] (as lerobot's training code consumes them), or uint8
with ``--uint8``. For a local dataset the run also measures the machine's decode limit on the same
files (bench/decode_limit.py, Note [Decode limit]) and reports each peer's ``ratio_to_limit``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_limit import cores, dataset_video_files, limit_fields, sequential_rate
from stream_metrics import RunRecorder, TreeRssSampler, write_results
from stream_peers import PEERS, BenchConfig, lerobot_unavailable_reason

DEFAULT_SYNTH_ROOT = Path("data/bench-synth")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("dataset")
    src.add_argument(
        "--root",
        help="dataset root: a local path, an http(s):// URL or hf://datasets/org/name (remote sources are "
        "passed through to StreamingLeRobotDataset)",
    )
    src.add_argument("--repo-id", help="repo_id passed to the datasets (default: the root's last name)")
    src.add_argument(
        "--make-dataset",
        action="store_true",
        help=f"write a synthetic dataset with lerobot_stream.synth when --root is missing or absent "
        f"(default root {DEFAULT_SYNTH_ROOT})",
    )
    src.add_argument("--synth-episodes", type=int, default=24)
    src.add_argument("--synth-cameras", type=int, default=3)
    src.add_argument("--synth-height", type=int, default=240)
    src.add_argument("--synth-width", type=int, default=320)
    src.add_argument("--synth-fps", type=int, default=20)
    src.add_argument("--synth-codec", default="av1", choices=["av1", "h264", "hevc"])
    src.add_argument(
        "--prewarm", action="store_true", help="read every local file once first (warm page cache)"
    )

    load = p.add_argument_group("loading")
    load.add_argument("--mode", choices=["single", "sarm", "window"], default="single")
    load.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where batches are consumed")
    load.add_argument(
        "--video-decode-device",
        default="cpu",
        help="passed to StreamingLeRobotDataset; 'cuda' decodes in this process's decode stage (ours)",
    )
    load.add_argument(
        "--video-decode-stage",
        action="store_true",
        help="ours decodes in the training process's C++ decode stage (implied by a cuda decode device)",
    )
    load.add_argument("--num-workers", type=int, default=2)
    load.add_argument("--batch-size", type=int, default=16)
    load.add_argument("--episode-pool-size", type=int, default=16)
    load.add_argument("--decoder-cache-size", type=int, default=None)
    load.add_argument("--seed", type=int, default=0)
    load.add_argument(
        "--uint8",
        action="store_true",
        help="every peer delivers uint8 frames (return_uint8=True) instead of float32 in [0, 1]",
    )

    run = p.add_argument_group("run")
    run.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    run.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    run.add_argument(
        "--warmup-batches",
        type=int,
        default=0,
        help="batches after the first left out of the steady window; --seconds then counts from its start",
    )
    run.add_argument(
        "--consumer-ms", type=float, default=0.0, help="simulated training step per batch (default 0)"
    )
    run.add_argument(
        "--compare-batched",
        action="store_true",
        help="also run ours building whole batches in the workers (DataLoader(batch_size=None))",
    )
    run.add_argument(
        "--frame-stash-bytes",
        type=int,
        default=None,
        help="also run ours with a frame stash of this many bytes per consumer (peer ours-stash)",
    )
    run.add_argument("--compare-naive", action="store_true", help="also run naive per-sample PyAV decode")
    run.add_argument(
        "--compare-lerobot", action="store_true", help="also run lerobot 0.6's StreamingLeRobotDataset"
    )
    run.add_argument(
        "--no-limit", action="store_true", help="skip measuring the sequential decode limit (local datasets)"
    )
    run.add_argument("--out-dir", type=Path, default=Path("bench/results"))
    return p


def source_of(root: str) -> str:
    """``local``, ``http`` (http and https), ``hf`` or another URL scheme."""
    scheme = urlparse(root).scheme if "://" in root else ""
    if not scheme:
        return "local"
    return "http" if scheme in ("http", "https") else scheme


def resolve_dataset(args: argparse.Namespace) -> tuple[str, str | None]:
    """(repo_id, root) to pass to the datasets, writing a synthetic dataset when asked to."""
    root = args.root
    if root is None or (source_of(root) == "local" and not Path(root).exists()):
        if not args.make_dataset:
            raise SystemExit("error: give --root PATH|URL of a LeRobot v3 dataset, or --make-dataset")
        root = str(root or DEFAULT_SYNTH_ROOT)
        from lerobot_stream.synth import write_dataset

        print(f"[bench] writing a synthetic dataset to {root} ...", flush=True)
        write_dataset(
            root,
            num_episodes=args.synth_episodes,
            num_cameras=args.synth_cameras,
            height=args.synth_height,
            width=args.synth_width,
            codec=args.synth_codec,
            fps=args.synth_fps,
        )
    if root.startswith("hf://"):  # the Hub is addressed by repo_id (see lerobot_stream.remote.location)
        return args.repo_id or root, None
    return args.repo_id or Path(urlparse(root).path.rstrip("/")).name or "dataset", root


def prewarm(root: Path) -> tuple[int, float]:
    """Reads every file under ``root`` once (page cache); returns (bytes, seconds)."""
    start, total = time.perf_counter(), 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            while chunk := f.read(8 << 20):
                total += len(chunk)
    return total, time.perf_counter() - start


def measure_sequential(
    args: argparse.Namespace, source: str, root: str | None, camera_keys: list[str]
) -> dict[str, Any] | None:
    """One thread's sequential decode rate on the dataset's own files (Note [Decode limit]); local only."""
    if args.no_limit or source != "local" or root is None or not camera_keys:
        return None
    from lerobot_stream import VideoDecoder

    files = dataset_video_files(Path(root), camera_keys)
    if not files:
        return None
    codec = str(VideoDecoder(str(files[0])).info["codec"])
    measured = sequential_rate(files, codec)
    print(
        f"[bench] sequential decode ({measured['tool']}): {measured['frames_per_s']:.1f} frames/s, "
        f"{measured['frames_per_cpu_s']:.1f} frames per CPU s",
        flush=True,
    )
    return measured


def combine_sequential(runs: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The sequential measurements before and after the peers, pooled (the load may drift between)."""
    runs = [r for r in runs if r is not None]
    if not runs:
        return {}
    frames = sum(r["frames"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)
    cpu = sum(r["cpu_s"] for r in runs)
    return {
        "tool": runs[0]["tool"],
        "files": runs[0]["files"],
        "runs": len(runs),
        "frames": frames,
        "frames_per_s": frames / wall if wall else None,
        "frames_per_cpu_s": frames / cpu if cpu else None,
        "cores": cores(),
    }


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    if device == "cpu":
        return batch
    moved = {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }
    torch.cuda.synchronize()
    return moved


def run_peer(peer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Consumes ``peer``'s DataLoader until --max-batches / --seconds / the epoch ends."""
    loader = peer.loader()
    batches = 0
    cpu_at_end = None
    with TreeRssSampler() as rss:
        recorder = RunRecorder(
            peer.camera_keys, cpu_clock=rss.loader_cpu_seconds, warmup_batches=args.warmup_batches
        )
        recorder.start = time.perf_counter()
        it = iter(loader)
        while True:
            asked = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                break
            recorder.record(batch, time.perf_counter() - asked)
            _to_device(batch, args.device)
            batches += 1
            since = recorder.start if not args.warmup_batches else recorder.window_start
            elapsed = time.perf_counter() - since if since is not None else 0.0
            if (args.max_batches and batches >= args.max_batches) or (
                args.seconds and elapsed >= args.seconds
            ):
                break
            if args.consumer_ms:
                time.sleep(args.consumer_ms / 1e3)
        end = time.perf_counter()
        cpu_at_end = rss.loader_cpu_seconds()
        del it  # shuts the workers down before the next peer starts
    extra = {"decode_backend": peer.decode_backend} if hasattr(peer, "decode_backend") else {}
    if callable(getattr(loader, "stats", None)):  # ours' decode stage: frames per backend, waits
        extra["decode_stage"] = loader.stats()
    summary = recorder.summary(end, rss.peak_bytes, cpu_at_end, rss.peak_pss_bytes, rss.peak_node_bytes)
    if summary["dtype"] not in (None, peer.cfg.dtype):
        name = getattr(peer, "name", type(peer).__name__)
        print(f"[bench] warning: {name} delivered {summary['dtype']} frames, asked for {peer.cfg.dtype}")
    return {**summary, **extra, "timeline": recorder.timeline}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One line per peer, then ours' speed-up over each peer."""
    print(
        f"{'peer':12} {'dtype':>7} {'frames/s':>9} {'samples/s':>9} {'/limit':>7} {'/lim cpu':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'1st batch s':>11} {'hit rate':>8} {'rss GB':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:12} {_fmt(r['dtype']):>7} {_fmt(r['frames_per_s_node']):>9} "
            f"{_fmt(r['samples_per_s']):>9} "
            f"{_fmt(r.get('ratio_to_limit'), 2):>7} {_fmt(r.get('ratio_to_limit_cpu'), 2):>8} "
            f"{_fmt(r['p50_sample_latency_ms']):>8} {_fmt(r['p95_sample_latency_ms']):>8} "
            f"{_fmt(r['p99_sample_latency_ms']):>8} {_fmt(r['first_batch_latency_s'], 2):>11} "
            f"{_fmt(r['video_decoder_cache']['hit_rate'], 3):>8} {_fmt(r['peak_rss_gb'], 2):>7}"
        )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch.cuda.is_available() is False")
    started = time.perf_counter()
    repo_id, root = resolve_dataset(args)
    source = source_of(root or repo_id)
    if args.prewarm and source == "local":
        size, seconds = prewarm(Path(root))
        print(f"[bench] prewarmed {size / 2**20:.0f} MiB in {seconds:.1f} s")
    cfg = BenchConfig(
        repo_id=repo_id,
        root=root,
        mode=args.mode,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        episode_pool_size=args.episode_pool_size,
        device=args.device,
        video_decode_device=args.video_decode_device,
        video_decode_stage=True if args.video_decode_stage else None,
        seed=args.seed,
        decoder_cache_size=args.decoder_cache_size,
        dtype="uint8" if args.uint8 else "float32",
        frame_stash_bytes=args.frame_stash_bytes,
    )
    names = ["ours"] + ["ours-batched"] * args.compare_batched
    names += ["ours-stash"] * (args.frame_stash_bytes is not None) + ["naive"] * args.compare_naive
    if args.compare_lerobot:
        reason = lerobot_unavailable_reason()
        if reason is None:
            names += ["lerobot", "lerobot-buffer100"]
        else:
            print(f"[bench] --compare-lerobot: not run: {reason}")

    results: dict[str, dict[str, Any]] = {}
    ours = None
    sequential = []
    for name in names:
        print(f"[bench] {name}: mode={args.mode} bs={args.batch_size} workers={args.num_workers}", flush=True)
        peer = PEERS[name](cfg)
        if ours is None:
            ours = peer
            sequential.append(measure_sequential(args, source, root, peer.camera_keys))
        # The lerobot peers measure themselves in lerobot's own interpreter (stream_peers.LerobotPeer).
        results[name] = peer.run(args) if hasattr(peer, "run") else run_peer(peer, args)
    sequential.append(measure_sequential(args, source, root, ours.camera_keys))
    limit = combine_sequential(sequential)
    for r in results.values():
        r.update(limit_fields(r, limit, results["ours"].get("decoded_per_requested")))

    stem = f"{source}_{args.mode}_bs{args.batch_size}_w{args.num_workers}_{args.device}"
    main_result = {
        "repo_id": repo_id,
        "source": source,
        "mode": args.mode,
        "peer": "ours",
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "episode_pool_size": args.episode_pool_size,
        "num_cameras": len(ours.camera_keys),
        "fps": ours.fps,
        "device": args.device,
        "video_decode_device": args.video_decode_device,
        "video_decode_stage": bool(args.video_decode_stage or args.video_decode_device != "cpu"),
        "prefetch_factor": cfg.prefetch_factor,
        "cpu_count": cores(),
        "load_average": os.getloadavg(),
        "sequential_decode": limit,
        **results["ours"],
        "wallclock_s": time.perf_counter() - started,
        "peers": {n: r for n, r in results.items() if n != "ours"},
        "ratios_vs_ours": {
            n: results["ours"]["frames_per_s_node"] / r["frames_per_s_node"]
            for n, r in results.items()
            if n != "ours" and r["frames_per_s_node"]
        },
    }
    print_table(results)
    for name, ratio in main_result["ratios_vs_ours"].items():
        print(f"[bench] ours / {name}: {ratio:.2f}x frames/s")
    if results["ours"].get("decode_limit_frames_per_s"):
        print(
            f"[bench] decode limit: {results['ours']['decode_limit_frames_per_s']:.1f} frames/s "
            f"({cores()} cores x {limit['frames_per_s']:.1f} sequential / "
            f"{results['ours']['decoded_per_requested']:.3f} decoded per requested)"
        )
    for path in write_results(args.out_dir, stem, main_result):
        print(f"[bench] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
