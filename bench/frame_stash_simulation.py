#!/usr/bin/env python
"""What a frame stash budget buys, simulated (bench/README.md, "Frame stash").

One camera's pooled frames are requested once each in a uniform random order (a consumer's epoch over
its pool), at GOP ``--gop``. A request decodes from its keyframe (``--keyframe-ms`` for the keyframe,
``--other-ms`` for each frame after it) unless the stash holds it. The stash follows
Note [Frame stash] in ``cpp/av/frame_stash.h``: frames decoded on the way are kept (evicting the
oldest when the budget is full), the rest of a GOP is decoded ahead while the budget has room, and a
frame already requested is never kept. Prints the decode milliseconds per request against no stash,
and the stash's peak, for a few pool sizes and budgets (in frames of one camera).

    python bench/frame_stash_simulation.py [--pools 1800 3600 9600] [--budgets 128 256 512 1024 0]
"""

from __future__ import annotations

import argparse
import random
from collections import OrderedDict


def simulate(frames: int, budget: int | None, gop: int, keyframe_ms: float, other_ms: float, seed: int = 0):
    """(decode ms per request, peak frames held) for one pass; ``budget=None``: no stash."""
    order = list(range(frames))
    random.Random(seed).shuffle(order)
    cap = 0 if budget is None else budget
    served: set[int] = set()
    stash: OrderedDict[int, None] = OrderedDict()
    cost = 0.0
    peak = 0
    for frame in order:
        served.add(frame)
        if frame in stash:
            del stash[frame]
            continue
        key = frame - frame % gop
        cost += keyframe_ms + other_ms * (frame - key)
        on_the_way = [f for f in range(key, frame) if f not in served]
        for f in on_the_way:  # kept, the oldest evicted when full
            stash[f] = None
            while len(stash) > cap:
                stash.popitem(last=False)
        for f in range(frame + 1, min(key + gop, frames)):  # decode-ahead while there is room
            if len(stash) >= cap:
                break
            cost += other_ms
            if f not in served:
                stash[f] = None
        peak = max(peak, len(stash))
    return cost / frames, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pools", type=int, nargs="+", default=[1800, 3600, 9600], help="pooled frames")
    p.add_argument("--budgets", type=int, nargs="+", default=[128, 256, 512, 1024, 0], help="0: unbounded")
    p.add_argument("--gop", type=int, default=2)
    p.add_argument("--keyframe-ms", type=float, default=3.2, help="lrs_decode_bench, lerobot settings")
    p.add_argument("--other-ms", type=float, default=0.42)
    args = p.parse_args()
    costs = (args.gop, args.keyframe_ms, args.other_ms)
    print("| pooled frames | budget (frames) | fewer decode ms per request | peak held |")
    print("|---|---|---|---|")
    for frames in args.pools:
        plain, _ = simulate(frames, None, *costs)
        for budget in args.budgets:
            ms, peak = simulate(frames, budget or frames, *costs)
            print(f"| {frames} | {budget or 'unbounded'} | {plain / ms:.2f}x | {peak} |")


if __name__ == "__main__":
    main()
