"""Elastic resume with real DataLoaders: a run stopped under (world size W, num_workers w) resumes under
(W', w') from one ``state_dict()`` shared by every rank. The trainer's batches before the stop plus the
resumed first pass cover every frame of the interrupted epoch exactly once (but for fewer than
W' x max(w', 1) frames), every new rank emits the same count, and the next pass equals a fresh
(W', w') run's next epoch; stopped on an epoch boundary, the resumed passes equal the fresh run's.
Also: the state records the DataLoader's num_workers, chains of layout changes inside one epoch,
a same-layout resume inside an elastic pass continues it bitwise, and strict state parsing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lerobot_stream import StreamingLeRobotDataset
from streaming_helpers import run_loader

BATCH = 3
POOL = 2

Batches = list[list[int]]  # one pass of one rank: each batch's `index` values


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(num_cameras=1, height=48, width=64)


def make_ds(root: Path, rank: int, world: int, workers: int, **kwargs: Any) -> StreamingLeRobotDataset:
    return StreamingLeRobotDataset(
        "synth", root=root, rank=rank, world_size=world, num_workers=workers, episode_pool_size=POOL, **kwargs
    )


def passes(ds: StreamingLeRobotDataset, workers: int, count: int, drop_last: bool = False) -> list[Batches]:
    """``count`` passes (epochs) of a real DataLoader over ``ds``, as index lists per batch."""
    return [
        [
            b["index"].tolist()
            for b in run_loader(ds, batch_size=BATCH, num_workers=workers, drop_last=drop_last)
        ]
        for _ in range(count)
    ]


def fresh_epoch(root: Path, world: int, workers: int, epoch: int, drop_last: bool = False) -> list[Batches]:
    """Epoch ``epoch`` of every rank of a run that always had this layout."""
    out = []
    for rank in range(world):
        ds = make_ds(root, rank, world, workers)
        ds.set_epoch(epoch)
        out.append(passes(ds, workers, 1, drop_last)[0])
    return out


def flat(batches: Batches) -> list[int]:
    return [i for b in batches for i in b]


def run_and_stop(
    root: Path, world: int, workers: int, stop_at: Callable[[int], int], drop_last: bool = False
) -> tuple[list[Batches], int, dict[str, Any]]:
    """Every rank's epoch 0, the stop (``stop_at(batches per epoch)``) and the resume state there.

    The state is the same dict on every rank (asserted): one checkpoint serves all of them.
    """
    datasets = [make_ds(root, rank, world, workers) for rank in range(world)]
    epoch0 = [passes(ds, workers, 1, drop_last)[0] for ds in datasets]
    assert len({len(b) for b in epoch0}) == 1, "ranks ran different batch counts"
    stop = stop_at(len(epoch0[0]))
    states = [ds.state_dict(batches_consumed=stop, batch_size=BATCH, drop_last=drop_last) for ds in datasets]
    assert all(s == states[0] for s in states), "ranks would save different resume states"
    return epoch0, stop, states[0]


def resume(root: Path, world: int, workers: int, state: dict, count: int, drop_last: bool = False):
    """Every new rank's first ``count`` passes after loading ``state``, and rank 0's resume_epoch."""
    datasets = [make_ds(root, rank, world, workers) for rank in range(world)]
    for ds in datasets:
        ds.load_state_dict(state)
    return [passes(ds, workers, count, drop_last) for ds in datasets], datasets[0].resume_epoch


def assert_epoch_finished_once(before: list[int], after: list[Batches], total: int, consumers: int) -> None:
    """before + after emit no frame twice, every rank the same count, and leave out < consumers frames."""
    counts = Counter(before + [i for rank in after for i in flat(rank)])
    assert max(counts.values()) == 1, f"frames emitted twice: {[i for i, c in counts.items() if c > 1]}"
    assert set(counts) <= set(range(total))
    left = total - len(before)
    per_rank = {len(flat(rank)) for rank in after}
    assert per_rank == {(left // consumers) * (consumers // len(after))}, (
        f"unequal counts per rank {per_rank}"
    )
    assert total - len(counts) == left % consumers < consumers


LAYOUT_CHANGES = [
    ((2, 2), (3, 1)),
    ((1, 0), (4, 2)),
    ((4, 3), (2, 2)),
    ((1, 2), (1, 3)),  # workers only
    ((1, 2), (1, 0)),  # 2 workers -> the main process
    ((2, 0), (2, 2)),  # the main process -> 2 workers
]


@pytest.mark.parametrize(("old", "new"), LAYOUT_CHANGES, ids=lambda x: f"{x[0]}x{x[1]}")
def test_mid_epoch_layout_change_finishes_the_epoch_exactly_once(root: Path, old, new) -> None:
    (world, workers), (new_world, new_workers) = old, new
    # Mid-epoch, and mid round robin when workers > 1.
    epoch0, stop, state = run_and_stop(root, world, workers, lambda per_epoch: per_epoch // 2 + 1)
    assert (state["world_size"], state["num_workers"], state["epoch"]) == (world, workers, 0)
    before = [i for rank in epoch0 for i in flat(rank[:stop])]

    after, resume_epoch = resume(root, new_world, new_workers, state, count=2)
    assert resume_epoch == 0
    total = make_ds(root, 0, 1, 1).num_frames
    consumers = new_world * max(new_workers, 1)
    assert_epoch_finished_once(before, [rank[0] for rank in after], total, consumers)
    assert [rank[1] for rank in after] == fresh_epoch(root, new_world, new_workers, 1), (
        "the pass after the interrupted epoch is not the new layout's regular epoch 1"
    )


@pytest.mark.parametrize(("old", "new"), LAYOUT_CHANGES[:3], ids=lambda x: f"{x[0]}x{x[1]}")
def test_layout_change_on_an_epoch_boundary_is_a_fresh_run(root: Path, old, new) -> None:
    (world, workers), (new_world, new_workers) = old, new
    epoch0, _, state = run_and_stop(root, world, workers, lambda per_epoch: per_epoch)
    assert (state["epoch"], state["epoch_start"], state["phases"]) == (1, len(epoch0[0]), [])
    after, resume_epoch = resume(root, new_world, new_workers, state, count=2)
    assert resume_epoch == 1
    assert [rank[0] for rank in after] == fresh_epoch(root, new_world, new_workers, 1)
    assert [rank[1] for rank in after] == fresh_epoch(root, new_world, new_workers, 2)


def test_drop_last_layout_change_emits_no_frame_twice(root: Path) -> None:
    # One batch before the end: the finished workers' dropped partial batches are left over too.
    epoch0, stop, state = run_and_stop(root, 2, 2, lambda per_epoch: per_epoch - 1, drop_last=True)
    before = [i for rank in epoch0 for i in flat(rank[:stop])]
    after, _ = resume(root, 3, 1, state, count=1, drop_last=True)
    emitted = before + [i for rank in after for i in flat(rank[0])]
    assert len(emitted) == len(set(emitted)), "a frame was emitted twice"
    assert len({len(rank[0]) for rank in after}) == 1, "ranks ran different batch counts"
    left = make_ds(root, 0, 1, 1).num_frames - len(before)
    n_new = left // 3
    assert len(flat(after[0][0])) == n_new - n_new % BATCH, (
        "a new consumer dropped more than its partial batch"
    )


def test_two_layout_changes_inside_one_epoch(root: Path) -> None:
    epoch0, stop1, state1 = run_and_stop(root, 2, 2, lambda per_epoch: per_epoch // 3 + 1)
    before = [i for rank in epoch0 for i in flat(rank[:stop1])]
    middle, _ = resume(root, 3, 1, state1, count=1)
    stop2 = stop1 + len(middle[0][0]) // 2  # half of the first elastic pass
    before += [i for rank in middle for i in flat(rank[0][: stop2 - stop1])]

    ds = make_ds(root, 0, 3, 1)
    ds.load_state_dict(state1)
    passes(ds, 1, 1)  # rank 0 of the (3 x 1) run iterates, then checkpoints
    state2 = ds.state_dict(batches_consumed=stop2, batch_size=BATCH)
    assert [(p["world_size"], p["num_workers"], p["until"]) for p in state2["phases"]] == [(2, 2, stop1)]
    after, resume_epoch = resume(root, 1, 2, state2, count=2)
    assert resume_epoch == 0
    assert_epoch_finished_once(before, [rank[0] for rank in after], ds.num_frames, consumers=2)
    assert [rank[1] for rank in after] == fresh_epoch(root, 1, 2, 1)


def test_same_layout_resume_inside_an_elastic_pass_continues_it_bitwise(root: Path) -> None:
    _, stop1, state1 = run_and_stop(root, 2, 2, lambda per_epoch: per_epoch // 2)
    uninterrupted, _ = resume(root, 3, 2, state1, count=2)  # the (3 x 2) run never stopped again
    stop2 = stop1 + len(uninterrupted[0][0]) // 2 + 1

    ds = make_ds(root, 0, 3, 2)
    ds.load_state_dict(state1)
    passes(ds, 2, 1)
    state2 = ds.state_dict(batches_consumed=stop2, batch_size=BATCH)
    resumed, _ = resume(root, 3, 2, state2, count=2)
    for rank in range(3):
        expected = uninterrupted[rank][0][stop2 - stop1 :]
        assert resumed[rank][0] == expected, f"rank {rank}: the rest of the elastic pass differs"
        assert resumed[rank][1] == uninterrupted[rank][1], f"rank {rank}: the next epoch differs"


def test_full_state_same_layout_resume_equals_the_uninterrupted_run(root: Path) -> None:
    ds = make_ds(root, 1, 2, 2)
    uninterrupted = passes(ds, 2, 2)
    stop = len(uninterrupted[0]) + 3  # epoch 1, mid round robin
    state = ds.state_dict(batches_consumed=stop, batch_size=BATCH)
    assert (state["num_workers"], state["epoch"], state["epoch_start"]) == (2, 1, len(uninterrupted[0]))
    resumed = make_ds(root, 1, 2, 2)
    resumed.load_state_dict(state)
    assert passes(resumed, 2, 1)[0] == uninterrupted[1][3:]


def test_state_dict_records_the_dataloaders_num_workers(root: Path) -> None:
    # Issue 14: built with the default num_workers hint, iterated by 2 workers -> the state says 2.
    ds = StreamingLeRobotDataset("synth", root=root, episode_pool_size=POOL)
    passes(ds, 2, 1)
    assert ds.state_dict(batches_consumed=5, batch_size=BATCH)["num_workers"] == 2
    main = StreamingLeRobotDataset("synth", root=root, episode_pool_size=POOL, num_workers=2)
    passes(main, 0, 1)
    assert main.state_dict(batches_consumed=5, batch_size=BATCH)["num_workers"] == 0


def test_bare_dict_means_the_same_layout(root: Path) -> None:
    ds = make_ds(root, 0, 1, 2)
    uninterrupted = passes(ds, 2, 1)[0]
    resumed = make_ds(root, 0, 1, 2)
    resumed.load_state_dict({"batches_consumed": 3, "batch_size": BATCH})
    assert resumed.state_dict()["num_workers"] == 2  # the constructor's hint, nothing iterated yet
    assert passes(resumed, 2, 1)[0] == uninterrupted[3:]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batches_consumed", 3.7, "must be an integer"),
        ("batches_consumed", True, "must be an integer"),
        ("batch_size", "8", "must be an integer"),
        ("batch_size", "abc", "must be an integer"),
        ("batches_consumed", 2**63, "must be in"),
        ("batches_consumed", -1, "must be in"),
        ("batch_size", 0, "must be in"),
        ("drop_last", 1, "must be a bool"),
        ("shuffle", "yes", "must be a bool"),
        ("world_size", 0, "must be in"),
        ("num_workers", 2.0, "must be an integer"),
        ("seed", -1, "must be in"),
        ("episode_pool_size", None, None),  # None = not checked: loads
        ("dataset_fingerprint", 7, "must be a string"),
        ("epoch_start", 99, "must be in"),
        ("phases", "abc", "must be a list"),
        ("phases", [{"world_size": 2}], "phases[0]"),
        ("version", 3, "Unsupported resume state version"),
    ],
)
def test_malformed_state_fields_raise_naming_the_field(root: Path, field: str, value: Any, message) -> None:
    ds = make_ds(root, 0, 1, 1)
    state = {**ds.state_dict(batches_consumed=10, batch_size=BATCH), field: value}
    if message is None:
        ds.load_state_dict(state)
        return
    with pytest.raises(ValueError, match=re.escape(field)) as e:
        ds.load_state_dict(state)
    assert message in str(e.value)


def test_state_dict_counters_are_checked(root: Path) -> None:
    ds = make_ds(root, 0, 1, 1)
    with pytest.raises(ValueError, match="'batch_size'"):
        ds.state_dict(batches_consumed=3, batch_size=2.5)
    ds.load_state_dict(ds.state_dict(batches_consumed=10, batch_size=BATCH))
    with pytest.raises(ValueError, match="below"):
        ds.state_dict(batches_consumed=9, batch_size=BATCH)
    with pytest.raises(ValueError, match="batch_size/drop_last changed"):
        ds.state_dict(batches_consumed=12, batch_size=BATCH + 1)
