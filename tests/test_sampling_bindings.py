"""Contracts of the sampling bindings in ``lerobot_stream._core`` seen from Python.

Exactly-once coverage across (rank x worker) consumers, skip == draw-and-discard, resume points
equal a pure-Python simulation of the DataLoader's round robin, lerobot map-style windows, and
bad arguments raising ValueError / IndexError with a message.
"""

from __future__ import annotations

import gc
import random

import numpy as np
import pytest

from lerobot_stream import _core

LENGTHS = [13, 1, 40, 7, 22, 3, 3, 30, 9, 16, 2]


def drain(schedule: _core.ConsumerSchedule, batch: int = 5) -> list[tuple[int, int]]:
    """All remaining samples of a schedule as (episode_pos, frame) pairs, in order."""
    out: list[tuple[int, int]] = []
    while True:
        episode_pos, frame = schedule.next(batch)
        assert episode_pos.dtype == np.int64 and frame.dtype == np.int64
        if len(episode_pos) == 0:
            return out
        out.extend(zip(episode_pos.tolist(), frame.tolist(), strict=True))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 1, 2])
@pytest.mark.parametrize("shuffle", [True, False])
def test_consumers_read_every_frame_once(world_size: int, num_workers: int, shuffle: bool) -> None:
    consumers = world_size * max(num_workers, 1)
    plan = _core.EpochPlan(LENGTHS, seed=3, shuffle=shuffle, num_consumers=consumers)
    all_frames = {(pos, f) for pos, n in enumerate(LENGTHS) for f in range(n)}
    for epoch in (0, 1):
        seen: list[tuple[int, int]] = []
        for rank in range(world_size):
            for worker in range(max(num_workers, 1)):
                schedule = _core.ConsumerSchedule(
                    LENGTHS, 3, shuffle, epoch, rank, world_size, worker, num_workers, pool_size=3
                )
                samples = drain(schedule)
                assert len(samples) == schedule.total == plan.samples_per_consumer
                assert schedule.remaining == 0
                seen.extend(samples)
        assert len(seen) == len(set(seen)), "a frame was read twice"
        assert set(seen) <= all_frames
        missing = len(all_frames) - len(seen)
        assert missing == plan.dropped_per_epoch == sum(LENGTHS) % consumers
        assert missing < consumers


def test_shuffle_false_reads_the_dataset_in_order() -> None:
    schedule = _core.ConsumerSchedule(LENGTHS, 0, False, 0, 0, 1, 0, 0, pool_size=4)
    assert drain(schedule) == [(pos, f) for pos, n in enumerate(LENGTHS) for f in range(n)]


def test_skip_equals_draw_and_discard() -> None:
    total = _core.ConsumerSchedule(LENGTHS, 9, True, 2, 1, 2, 0, 2, pool_size=2).total
    for k in (0, 1, 17, total - 1, total):
        drawn = _core.ConsumerSchedule(LENGTHS, 9, True, 2, 1, 2, 0, 2, pool_size=2)
        skipped = _core.ConsumerSchedule(LENGTHS, 9, True, 2, 1, 2, 0, 2, pool_size=2)
        drawn.next(k)
        skipped.skip(k)
        assert skipped.emitted == k
        assert skipped.pool() == drawn.pool()
        assert skipped.take_admitted() == drawn.take_admitted()
        assert skipped.take_evicted() == drawn.take_evicted()
        assert drain(skipped) == drain(drawn)


def test_returned_arrays_outlive_the_schedule() -> None:
    schedule = _core.ConsumerSchedule(LENGTHS, 1, True, 0, 0, 1, 0, 0, pool_size=4)
    expected = drain(_core.ConsumerSchedule(LENGTHS, 1, True, 0, 0, 1, 0, 0, pool_size=4))[:50]
    episode_pos, frame = schedule.next(50)
    del schedule
    gc.collect()
    assert list(zip(episode_pos.tolist(), frame.tolist(), strict=True)) == expected


def simulate_dataloader(samples: int, batch_size: int, workers: int, drop_last: bool, epochs: int) -> list:
    """Batches as (worker, epoch, first_sample) in the order a torch DataLoader yields them."""
    out = []
    for epoch in range(epochs):
        starts = [s for s in range(0, samples, batch_size) if not (drop_last and s + batch_size > samples)]
        queues = [[(w, epoch, s) for s in starts] for w in range(workers)]
        turn = 0
        while any(queues):
            if queues[turn]:
                out.append(queues[turn].pop(0))
            turn = (turn + 1) % workers
    return out


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_resume_point_matches_dataloader_round_robin(num_workers: int, drop_last: bool) -> None:
    workers = max(num_workers, 1)
    for samples, batch_size in [(10, 4), (8, 4), (3, 4), (13, 1), (7, 3)]:
        run = simulate_dataloader(samples, batch_size, workers, drop_last, epochs=3)
        assert len(run) == 3 * workers * _core.batches_per_epoch(samples, batch_size, drop_last)
        for consumed in range(len(run)):
            for worker in range(workers):
                upcoming = [b for b in run[consumed:] if b[0] == worker]
                if not upcoming:
                    continue
                _, epoch, first = upcoming[0]
                got = _core.resume_point(consumed, batch_size, num_workers, worker, samples, drop_last)
                assert got == (epoch, first), (consumed, worker, samples, batch_size)


@pytest.mark.parametrize("shuffle", [True, False])
def test_elastic_pass_hands_the_leftover_to_the_new_consumers_once(shuffle: bool) -> None:
    # 2 ranks x 2 workers stopped after 5 batches of 3 per rank; 3 ranks x 1 worker take over.
    old = [
        drain(_core.ConsumerSchedule(LENGTHS, 3, shuffle, 1, rank, 2, worker, 2, 3))[
            : _core.consumed_samples(5, 3, 2, worker, sum(LENGTHS) // 4, False)
        ]
        for rank in range(2)
        for worker in range(2)
    ]
    delivered = {f for consumer in old for f in consumer}
    elastic = _core.ElasticPass(LENGTHS, 3, shuffle, 1, [(2, 2, 3, False, 5)], 3)
    assert elastic.leftover == _core.leftover_frames(sum(LENGTHS), [(2, 2, 3, False, 5)])
    assert elastic.leftover == sum(LENGTHS) - len(delivered)
    new = [drain(elastic.schedule(rank, 3, 0, 0)) for rank in range(3)]
    assert {len(samples) for samples in new} == {elastic.samples_per_consumer(3)}
    after = [f for samples in new for f in samples]
    assert len(set(after)) == len(after) and not set(after) & delivered
    assert sum(LENGTHS) - len(delivered) - len(after) == elastic.leftover % 3


def test_window_indices_match_map_style_clamp_and_pad() -> None:
    rng = random.Random(0)
    for _ in range(200):
        length = rng.randint(1, 300)
        frame = rng.randrange(length)
        offsets = np.array(sorted(rng.sample(range(-160, 161), 20)), dtype=np.int64)
        indices, is_pad = _core.window_indices(length, frame, offsets)
        assert indices.dtype == np.int64 and is_pad.dtype == np.bool_
        target = frame + offsets
        np.testing.assert_array_equal(indices, np.clip(target, 0, length - 1))
        np.testing.assert_array_equal(is_pad, (target < 0) | (target >= length))
    # A 150-frame history is not capped at 100 frames.
    indices, is_pad = _core.window_indices(300, 160, np.arange(-149, 1, dtype=np.int64))
    assert not is_pad.any()
    np.testing.assert_array_equal(indices, np.arange(11, 161))


@pytest.mark.parametrize(
    ("call", "error", "needle"),
    [
        (lambda: _core.ConsumerSchedule([5, 0], 1, True, 0, 0, 1, 0, 0, 4), ValueError, "episode_lengths[1]"),
        (lambda: _core.ConsumerSchedule([5], 1, True, 0, 0, 1, 0, 0, 0), ValueError, "pool_size"),
        (lambda: _core.ConsumerSchedule([5], 1, True, 0, 2, 2, 0, 0, 4), ValueError, "rank"),
        (lambda: _core.ConsumerSchedule([5], 1, True, 0, 0, 1, 3, 2, 4), ValueError, "worker"),
        (lambda: _core.ConsumerSchedule([5], 1, True, -1, 0, 1, 0, 0, 4), ValueError, "epoch"),
        (lambda: _core.ConsumerSchedule([5], 1, True, 0, 0, 1, 0, 0, 4).next(-1), ValueError, "max_samples"),
        (lambda: _core.ConsumerSchedule([5], 1, True, 0, 0, 1, 0, 0, 4).skip(6), IndexError, "skip"),
        (lambda: _core.EpochPlan([3], 0, True, 0), ValueError, "num_consumers"),
        (lambda: _core.EpochPlan([3], 0, True, 2).segments(0, 2), ValueError, "consumer"),
        (lambda: _core.consumer_id(0, 0, 0, 0), ValueError, "world_size"),
        (lambda: _core.resume_point(0, 0, 2, 0, 10, False), ValueError, "batch_size"),
        (lambda: _core.resume_point(1, 4, 2, 0, 3, True), ValueError, "no batch"),
        (lambda: _core.window_indices(5, 5, np.zeros(2, dtype=np.int64)), ValueError, "frame"),
        (lambda: _core.ElasticPass([5], 0, True, 0, [(0, 1, 4, False, 0)], 2), ValueError, "phase 0"),
        (lambda: _core.ElasticPass([5], 0, True, 0, [], 0), ValueError, "pool_size"),
        (lambda: _core.leftover_frames(10, [(1, 0, 1, False, 11)]), ValueError, "batches must be in [0, 10]"),
        (lambda: _core.ElasticPass([5, 3], 0, True, 0, [], 2).schedule(1, 1, 0, 0), ValueError, "rank"),
    ],
)
def test_bad_arguments_raise_with_a_message(call, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)
