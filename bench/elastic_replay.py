#!/usr/bin/env python
"""Cost of an elastic resume: replaying the interrupted layout's consumers (``_core.ElasticPass``).

A run with ``--world-size`` x ``--num-workers`` consumers stops after ``--consumed`` samples of an
epoch (rounded down to whole batches per rank); the replay derives the frames they left, tabular only
(episode lengths, no parquet, no video), and a consumer of the new layout builds its schedule. The
script prints the times and a JSON line. Example (the figure quoted in the README)::

    python bench/elastic_replay.py --episodes 4000 --length 300 --world-size 8 --num-workers 4 \\
        --new-world-size 3 --new-num-workers 2 --consumed 1000000

It also times draining the same number of samples from the regular schedules with ``skip`` (what
the replay does per consumer), so the two can be compared within one run on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from lerobot_stream import _core


def main(argv: list[str] | None = None) -> dict[str, float | int]:
    """Runs the measurement and returns its figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=4000)
    p.add_argument("--length", type=int, default=300, help="frames per episode")
    p.add_argument("--world-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--new-world-size", type=int, default=3)
    p.add_argument("--new-num-workers", type=int, default=2)
    p.add_argument("--consumed", type=int, default=1_000_000, help="samples consumed in the epoch, all ranks")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--pool", type=int, default=64, help="episode_pool_size")
    p.add_argument("--repeat", type=int, default=3, help="best of N")
    args = p.parse_args(argv)

    lengths = [args.length] * args.episodes
    total = sum(lengths)
    batches = args.consumed // (args.world_size * args.batch_size)  # per rank
    phase = (args.world_size, args.num_workers, args.batch_size, False, batches)
    consumed = total - _core.leftover_frames(total, [phase])

    replay_s = schedule_s = skip_s = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        elastic = _core.ElasticPass(lengths, 42, True, 0, [phase], args.pool)
        replay_s = min(replay_s, time.perf_counter() - start)
        start = time.perf_counter()
        schedule = elastic.schedule(0, args.new_world_size, 0, args.new_num_workers)
        schedule_s = min(schedule_s, time.perf_counter() - start)
        start = time.perf_counter()
        workers = max(args.num_workers, 1)
        n = total // (args.world_size * workers)
        for worker in range(workers):  # the regular schedules, skipped as far as the replay goes
            k = _core.consumed_samples(batches, args.batch_size, args.num_workers, worker, n, False)
            for rank in range(args.world_size):
                _core.ConsumerSchedule(
                    lengths, 42, True, 0, rank, args.world_size, worker, args.num_workers, args.pool
                ).skip(k)
        skip_s = min(skip_s, time.perf_counter() - start)
    result = {
        "frames": total,
        "consumed": consumed,
        "replay_s": round(replay_s, 4),
        "new_schedule_ms": round(schedule_s * 1e3, 3),
        "regular_skip_s": round(skip_s, 4),
        "replay_over_skip": round(replay_s / skip_s, 3),
        "leftover": elastic.leftover,
        "leftover_pieces": len(elastic.pieces()),
        "samples_per_new_consumer": schedule.total,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(
        f"{total} frames, {consumed} consumed by {args.world_size}x{args.num_workers} consumers "
        f"(pool {args.pool}): replay {replay_s:.3f} s ({consumed / replay_s / 1e6:.1f} M samples/s), "
        f"a new consumer's schedule {schedule_s * 1e3:.2f} ms; plain skip of the same samples "
        f"{skip_s:.3f} s (replay/skip {replay_s / skip_s:.2f}); load average {os.getloadavg()[0]:.1f}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
