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
Cell = tuple[str, dict[str, Any], dict[str, Any] | None]  # mode, our peers' results, the baseline's
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


def harness(root: Path, samples: int, *extra: str) -> dict[str, Any]:
    command = [str(HARNESS), "--mode", "both", "--threads", "1", "--workers", "1", "--samples", str(samples)]
    return json.loads(run([*command, *extra, str(root / "videos")]))


def harness_runs(root: Path, samples: int, stash_bytes: int) -> dict[str, dict[str, Any]]:
    """The harness's uniform random pass, and with a stash budget an epoch pass (every frame once,
    shuffled) without and with a frame stash of that budget."""
    runs = {"uniform": harness(root, samples)}
    if stash_bytes:
        everything = 1 << 40  # an epoch pass ends when every frame was requested
        runs["epoch"] = harness(root, everything, "--order", "epoch")
        stash = ["--stash-bytes", str(stash_bytes)]
        runs["epoch, stash"] = harness(root, everything, "--order", "epoch", *stash)
    return runs


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


def run_round(args: argparse.Namespace, out_dir: Path) -> tuple[dict[str, Any], list[Cell]]:
    """One round: the harness, then every cell (ours, and the baseline when asked), in a fixed order."""
    h = harness_runs(args.root, args.harness_samples, args.frame_stash_bytes)
    cells: list[Cell] = []
    for mode in ("single", "sarm"):
        for uint8 in (False, True):
            cell = f"{mode}-{'uint8' if uint8 else 'float32'}"
            common = (args.root, mode, uint8, args.seconds, args.warmup_batches)
            peers = ["--compare-batched"]
            if args.frame_stash_bytes:
                peers += ["--frame-stash-bytes", str(args.frame_stash_bytes)]
            results = streaming(sys.executable, *common, out_dir / cell, peers)
            base = None
            if args.baseline_python:
                base = streaming(args.baseline_python, *common, out_dir / f"{cell}-baseline", [])["ours"]
            cells.append((mode, results, base))
    return h, cells


def harness_summary(h: dict[str, Any]) -> str:
    """Two lines on one harness run: the rates, and random access against both limits."""
    seq, rnd, lim = h["sequential"], h["random"], h["limit"]
    stash = f", from the stash {rnd['frames_from_stash']}, peak {rnd['stash_peak_bytes'] / 2**20:.0f} MiB"
    order = f"{h.get('order', 'uniform')} order{stash if h.get('stash_bytes') else ''}"
    return (
        f"{order}: sequential {seq['frames_per_s']:.1f} frames/s ({seq['frames_per_cpu_s']:.1f} per CPU s); "
        f"random {rnd['frames_per_s']:.1f} ({rnd['frames_per_cpu_s']:.1f} per CPU s), decoded per "
        f"requested {rnd['decoded_per_requested']:.3f}, keyframes per requested "
        f"{rnd['keyframes_per_requested']:.3f}\n"
        f"random / (sequential / decoded per requested): {lim['ratio_to_limit']:.2f} wall, "
        f"{lim['ratio_to_limit_cpu']:.2f} CPU; random / frame-mix limit: {lim['frame_mix']['ratio']:.2f}; "
        f"keyframe {seq['keyframe_decode_ms']:.2f} ms, other frame {seq['other_frame_decode_ms']:.2f} ms"
    )


def median_row(label: str, runs: list[dict[str, Any]], pooled: dict[str, Any], per_request: list) -> str:
    """A table row of the median over rounds (memory: the largest; frames/s with its range)."""

    def f(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    def med(values: list[Any]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    def most(key: str) -> float | None:
        return max((r[key] for r in runs if r.get(key) is not None), default=None)

    limits = [limit_fields(r, pooled, n) for r, n in zip(runs, per_request, strict=True)]
    fps = [r["frames_per_s_node"] for r in runs]
    spread = f" ({min(fps):.0f}-{max(fps):.0f})" if len(runs) > 1 else ""
    return (
        f"| {label} | {runs[0].get('dtype')} | {f(med(fps))}{spread} | "
        f"{f(med([x['ratio_to_limit'] for x in limits]), 2)} | "
        f"{f(med([x['ratio_to_limit_cpu'] for x in limits]), 2)} | "
        f"{f(med([x['ratio_to_sequential'] for x in limits]), 2)} | "
        f"{f(med([r['p50_sample_latency_ms'] for r in runs]))} / "
        f"{f(med([r['p99_sample_latency_ms'] for r in runs]))} | "
        f"{f(most('peak_rss_gb'), 2)} | {f(most('peak_pss_gb'), 2)} | {f(most('peak_node_memory_gb'), 2)} |"
    )


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
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of the whole matrix, one after the other; the table gives medians (Note [Rounds])",
    )
    p.add_argument(
        "--frame-stash-bytes",
        type=int,
        default=1 << 30,
        help="also run ours with a frame stash of this many bytes per consumer, and the harness's epoch "
        "passes without and with one (0: neither)",
    )
    p.add_argument("--out-dir", type=Path, default=REPO / "bench/results/cpu_throughput")
    args = p.parse_args(argv)
    ensure_dataset(args.root, sys.executable)
    ensure_harness()
    load_before = os.getloadavg()
    # Note [Rounds]
    # ~~~~~~~~~~~~~
    # On a shared VM one run of a cell moved by a fifth between invocations (the same code and
    # files: single float32 with the plain DataLoader at 351 and 434 frames/s), more than the
    # differences the table is read for. With ``--repeats N`` the whole matrix runs N times, round
    # after round, so each cell's runs are spread over the invocation as the others' are; a row
    # gives the median over rounds (frames/s with its range; memory: the largest), and the
    # float32 / uint8 ratio is taken within each round, from runs a minute apart, before its median.
    rounds = [
        run_round(args, args.out_dir / (f"round-{k}" if args.repeats > 1 else ""))
        for k in range(args.repeats)
    ]
    # Note [Pooled limit]
    # ~~~~~~~~~~~~~~~~~~~
    # Every cell measures ffmpeg's sequential rate before and after its peers (Note [Decode limit]),
    # a few seconds each. On a shared VM one such measurement moved by a third from cell to cell
    # (lowest in a float32 SARM cell; other tenants of the host change it too), and a cell's ratio
    # moves with it. The table divides by the median of all the invocation's measurements instead,
    # on the same files; each cell's own figures stay in its JSON.
    everything = [r["ours"] for _, cells in rounds for _, r, _ in cells]
    everything += [b for _, cells in rounds for _, _, b in cells if b]
    pooled = pooled_sequential(everything)
    lines = [
        "| peer | dtype | frames/s | / limit | / limit (CPU s) | / sequential | p50 / p99 ms | peak RSS GB "
        "| peak PSS GB | node memory GB |",
        "|---" * 10 + "|",
    ]
    ratios = []
    for i, (mode, first, base) in enumerate(rounds[0][1]):
        cell = [cells[i] for _, cells in rounds]
        # baselines do not count what they decode: every row divides by our count
        per_request = [r["ours"].get("decoded_per_requested") for _, r, _ in cell]
        dtype = first["ours"].get("dtype")
        if base is not None:
            bases = [b for _, _, b in cell]
            lines.append(median_row(f"{mode} baseline (plain DataLoader)", bases, pooled, per_request))
        plain = [r["ours"] for _, r, _ in cell]
        lines.append(median_row(f"{mode} ours (plain DataLoader)", plain, pooled, per_request))
        batched = [r["ours-batched"] for _, r, _ in cell]
        lines.append(median_row(f"{mode} ours (batch_size=16 in the dataset)", batched, pooled, per_request))
        limit = limit_fields(batched[0], pooled, per_request[0])["decode_limit_frames_per_s"]
        lines[-1] += f" limit {limit:.1f} frames/s" if limit else ""
        if args.frame_stash_bytes:
            stashed = [r["ours-stash"] for _, r, _ in cell]
            budget = f"{args.frame_stash_bytes / 2**20:.0f} MiB"
            label = f"{mode} ours (plain DataLoader, stash {budget})"
            lines.append(median_row(label, stashed, pooled, per_request))
        if dtype == "uint8":  # this cell's float32 twin ran just before it in every round
            for peer in ("ours", "ours-batched"):
                pairs = [
                    cells[i - 1][1][peer]["frames_per_s_node"] / cells[i][1][peer]["frames_per_s_node"]
                    for _, cells in rounds
                ]
                ratios.append((mode, peer, pairs))
    load_after = os.getloadavg()
    print(f"\n## lrs_decode_bench (1 thread, random vs sequential on the same files; {len(rounds)} round(s))")
    for hs, _ in rounds:
        for h in hs.values():
            print(harness_summary(h))
    if len(rounds) > 1:
        for kind in rounds[0][0]:
            limits = [hs[kind]["limit"] for hs, _ in rounds]
            formula = statistics.median(x["ratio_to_limit"] for x in limits)
            mix = statistics.median(x["frame_mix"]["ratio"] for x in limits)
            rate = statistics.median(hs[kind]["random"]["frames_per_s"] for hs, _ in rounds)
            print(
                f"{kind}, median of {len(rounds)} rounds: random {rate:.0f} frames/s, / formula "
                f"{formula:.2f} wall; / frame-mix limit {mix:.2f}"
            )
    print(
        f"\n## streaming, 2 workers, batch 16, {args.seconds:.0f} s measured after "
        f"{args.warmup_batches} warm-up batches, median of {len(rounds)} round(s) "
        f"(load average {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    if pooled:
        low, high = pooled["frames_per_s_range"]
        print(
            f"limit: {pooled['cores']} cores x median sequential {pooled['frames_per_s']:.1f} frames/s "
            f"({pooled['frames_per_cpu_s']:.1f} per CPU s) of {pooled['measurements']} measurements "
            f"(range {low:.1f}-{high:.1f}) / decoded per requested (Note [Pooled limit])"
        )
    print("\n".join(lines))
    print("\nfloat32 / uint8 frames/s, within each round (Note [Rounds]):")
    for mode, peer, pairs in ratios:
        each = ", ".join(f"{x:.2f}" for x in pairs)
        print(f"- {mode} {peer}: median {statistics.median(pairs):.2f} ({each})")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "pooled_limit.json").write_text(json.dumps(pooled, indent=2))
    (args.out_dir / "harness.json").write_text(json.dumps([hs for hs, _ in rounds], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
