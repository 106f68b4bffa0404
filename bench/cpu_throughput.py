#!/usr/bin/env python
"""CPU throughput against the decode limit, in one invocation (issue 13's before/after table).

Writes (if missing) a dataset with lerobot's settings (2 cameras 480x640 AV1, GOP 2, preset 12),
runs the C++ harness (sequential and random passes, one thread) and the streaming benchmark for
``single`` and ``sarm`` with float32 and uint8 frames (ours with the plain DataLoader and with
dataset-built batches), optionally the same with a baseline install (``--baseline-python``), and
prints one table. Every figure of a row comes from one run, so ratios hold on a busy machine; the
load average is printed with them. Each run measures ``--seconds`` after ``--warmup-batches`` batches
(default 16, 8 per worker: the DataLoader's pipeline fills and our shared frame blocks are made in
them; a training run lasts hours, so the rate after them is the one that matters; bench/README.md).

    python bench/cpu_throughput.py --root data/w13 --seconds 30
    python bench/cpu_throughput.py --root data/w13 --baseline-python /path/to/main/.venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_limit import limit_fields

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "build/cpp-release/bench/cpp/lrs_decode_bench"
DATASET_ARGS = "--episodes 12 --cameras 2 --height 480 --width 640 --codec av1 --preset 12"
DATASET_ARGS += " --min-length 280 --max-length 320"


def run(command: list[str], **kwargs: Any) -> str:
    print("[cpu] $", " ".join(command), flush=True)
    return subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE, **kwargs).stdout


def ensure_dataset(root: Path, python: str) -> None:
    if not root.exists():
        run([python, "-m", "lerobot_stream.synth", str(root), *DATASET_ARGS.split()])


def ensure_harness() -> None:
    if HARNESS.exists():
        return
    build = str(HARNESS.parents[2])
    run(
        [
            "cmake",
            "-S",
            str(REPO),
            "-B",
            build,
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLRS_BUILD_PYTHON=OFF",
            "-DLRS_BUILD_BENCH=ON",
            "-DLRS_CUDA=OFF",
        ]
    )
    run(["cmake", "--build", build, "--target", "lrs_decode_bench"])


def harness(root: Path, samples: int) -> dict[str, Any]:
    out = run(
        [
            str(HARNESS),
            "--mode",
            "both",
            "--threads",
            "1",
            "--workers",
            "1",
            "--samples",
            str(samples),
            str(root / "videos"),
        ]
    )
    return json.loads(out)


def streaming(
    python: str,
    root: Path,
    mode: str,
    uint8: bool,
    seconds: float,
    warmup_batches: int,
    out_dir: Path,
    peers: list[str],
):
    args = [python, str(REPO / "bench/benchmark_streaming.py"), "--root", str(root), "--mode", mode]
    args += [
        "--num-workers",
        "2",
        "--batch-size",
        "16",
        "--episode-pool-size",
        "16",
        "--seconds",
        str(seconds),
        "--warmup-batches",
        str(warmup_batches),
    ]
    args += ["--out-dir", str(out_dir), *peers, *(["--uint8"] if uint8 else [])]
    run(args, cwd=REPO)
    result = json.loads((out_dir / f"local_{mode}_bs16_w2_cpu.json").read_text())
    return {"ours": result, **result["peers"]}


def row(label: str, r: dict[str, Any], pooled: dict[str, Any], per_request: float | None) -> str:
    """A table row of result ``r`` against the pooled limit (``limit_fields``, Note [Decode limit])."""

    def f(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    limit = limit_fields(r, pooled, per_request)
    return (
        f"| {label} | {r.get('dtype')} | {f(r['frames_per_s_node'])} | {f(limit['ratio_to_limit'], 2)} | "
        f"{f(limit['ratio_to_limit_cpu'], 2)} | {f(r['p50_sample_latency_ms'])} / "
        f"{f(r['p99_sample_latency_ms'])} | {f(r['peak_rss_gb'], 2)} | {f(r.get('peak_pss_gb'), 2)} | "
        f"{f(r.get('peak_node_memory_gb'), 2)} |"
    )


def pooled_sequential(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of the invocation's sequential measurements (Note [Pooled limit])."""
    fps = sorted(r["sequential_decode"]["frames_per_s"] for r in runs if r.get("sequential_decode"))
    fpc = sorted(r["sequential_decode"]["frames_per_cpu_s"] for r in runs if r.get("sequential_decode"))
    if not fps:
        return {}
    return {
        "measurements": len(fps),
        "frames_per_s": statistics.median(fps),
        "frames_per_cpu_s": statistics.median(fpc),
        "frames_per_s_range": [fps[0], fps[-1]],
        "cores": runs[0]["sequential_decode"].get("cores"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=REPO / "data/w13")
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per peer and cell")
    p.add_argument(
        "--warmup-batches",
        type=int,
        default=16,
        help="batches before the measured window (the pipelines fill and shared blocks are made in them)",
    )
    p.add_argument("--harness-samples", type=int, default=1500)
    p.add_argument("--baseline-python", help="a python whose lerobot_stream is the baseline (ours only)")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench/results/cpu_throughput")
    args = p.parse_args(argv)
    python = sys.executable
    ensure_dataset(args.root, python)
    ensure_harness()
    load_before = os.getloadavg()
    h = harness(args.root, args.harness_samples)
    cells: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for mode in ("single", "sarm"):
        for uint8 in (False, True):
            cell = f"{mode}-{'uint8' if uint8 else 'float32'}"
            results = streaming(
                python,
                args.root,
                mode,
                uint8,
                args.seconds,
                args.warmup_batches,
                args.out_dir / cell,
                ["--compare-batched"],
            )
            base = None
            if args.baseline_python:
                base = streaming(
                    args.baseline_python,
                    args.root,
                    mode,
                    uint8,
                    args.seconds,
                    args.warmup_batches,
                    args.out_dir / f"{cell}-baseline",
                    [],
                )["ours"]
            cells.append((mode, results, base))
    # Note [Pooled limit]
    # ~~~~~~~~~~~~~~~~~~~
    # Every cell measures ffmpeg's sequential rate before and after its peers (Note [Decode limit]),
    # a few seconds each. On a shared VM one such measurement moved by a third from cell to cell
    # (lowest in a float32 SARM cell; other tenants of the host change it too), and a cell's ratio
    # moves with it. The table divides by the median of all the invocation's measurements instead,
    # on the same files; each cell's own figures stay in its JSON.
    pooled = pooled_sequential([r["ours"] for _, r, _ in cells] + [b for _, _, b in cells if b])
    lines = [
        "| peer | dtype | frames/s | / limit | / limit (CPU s) | p50 / p99 ms | peak RSS GB | peak PSS GB "
        "| node memory GB |",
        "|---" * 9 + "|",
    ]
    for mode, results, base in cells:
        per_request = results["ours"].get("decoded_per_requested")  # the baseline does not count it
        if base is not None:
            lines.append(row(f"{mode} baseline (plain DataLoader)", base, pooled, per_request))
        lines.append(row(f"{mode} ours (plain DataLoader)", results["ours"], pooled, per_request))
        batched = results["ours-batched"]
        lines.append(row(f"{mode} ours (batch_size=16 in the dataset)", batched, pooled, per_request))
        limit = limit_fields(batched, pooled, per_request)["decode_limit_frames_per_s"]
        lines[-1] += f" limit {limit:.1f} frames/s" if limit else ""
    load_after = os.getloadavg()
    print("\n## lrs_decode_bench (1 thread, random vs sequential on the same files)")
    seq, rnd, lim = h["sequential"], h["random"], h["limit"]
    print(
        f"sequential {seq['frames_per_s']:.1f} frames/s ({seq['frames_per_cpu_s']:.1f} per CPU s); random "
        f"{rnd['frames_per_s']:.1f} ({rnd['frames_per_cpu_s']:.1f} per CPU s), decoded per requested "
        f"{rnd['decoded_per_requested']:.3f}, keyframes per requested {rnd['keyframes_per_requested']:.3f}"
    )
    print(
        f"random / (sequential / decoded per requested): {lim['ratio_to_limit']:.2f} wall, "
        f"{lim['ratio_to_limit_cpu']:.2f} CPU; random / frame-mix limit: {lim['frame_mix']['ratio']:.2f}; "
        f"keyframe {seq['keyframe_decode_ms']:.2f} ms, other frame {seq['other_frame_decode_ms']:.2f} ms"
    )
    print(
        f"\n## streaming, 2 workers, batch 16, {args.seconds:.0f} s measured after "
        f"{args.warmup_batches} warm-up batches (load average {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    if pooled:
        low, high = pooled["frames_per_s_range"]
        print(
            f"limit: {pooled['cores']} cores x median sequential {pooled['frames_per_s']:.1f} frames/s "
            f"({pooled['frames_per_cpu_s']:.1f} per CPU s) of {pooled['measurements']} measurements "
            f"(range {low:.1f}-{high:.1f}) / decoded per requested (Note [Pooled limit])"
        )
    print("\n".join(lines))
    (args.out_dir / "pooled_limit.json").write_text(json.dumps(pooled, indent=2))
    (args.out_dir / "harness.json").write_text(json.dumps(h, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
