"""Which frames StreamingLeRobotDataset emits: exactly once per epoch across (rank x worker)
consumers, equal counts per consumer, deterministic per seed, reshuffled per epoch, `episodes=`
and `shuffle=False` honoured."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

import lerobot_stream.dataset as dataset_module
from lerobot_stream import StreamingLeRobotDataset
from streaming_helpers import data_table, run_loader


def consumer_indices(
    monkeypatch: pytest.MonkeyPatch,
    ds: StreamingLeRobotDataset,
    worker: int,
    num_workers: int,
    passes: int = 1,
) -> list[list[int]]:
    """The `index` stream of one simulated DataLoader worker, one list per pass (epoch)."""
    monkeypatch.setattr(dataset_module, "current_worker", lambda: (worker, num_workers))
    monkeypatch.setattr(dataset_module, "in_worker_process", lambda: True)
    out = [[int(s["index"]) for s in ds] for _ in range(passes)]
    monkeypatch.undo()
    return out


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(num_cameras=1, height=48, width=64)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_exactly_once_equal_counts_all_consumers(
    monkeypatch: pytest.MonkeyPatch, root: Path, world_size: int, num_workers: int
) -> None:
    total = data_table(root).num_rows
    consumers = world_size * num_workers
    streams = []
    for rank in range(world_size):
        ds = StreamingLeRobotDataset(
            "synth", root=root, rank=rank, world_size=world_size, episode_pool_size=3
        )
        for worker in range(num_workers):
            streams.append(consumer_indices(monkeypatch, ds, worker, num_workers)[0])
    emitted = Counter(i for s in streams for i in s)
    assert max(emitted.values()) == 1, "a frame was emitted twice in one epoch"
    assert set(emitted) <= set(range(total))
    assert {len(s) for s in streams} == {total // consumers}, "consumers emit different counts"
    assert total - len(emitted) == total % consumers, "more frames dropped than the documented remainder"


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 0), (1, 2), (2, 2), (3, 0)])
def test_exactly_once_with_real_dataloader_workers(root: Path, world_size: int, num_workers: int) -> None:
    total = data_table(root).num_rows
    consumers = world_size * max(num_workers, 1)
    per_rank = []
    for rank in range(world_size):
        ds = StreamingLeRobotDataset(
            "synth", root=root, rank=rank, world_size=world_size, num_workers=max(num_workers, 1)
        )
        batches = run_loader(ds, batch_size=4, num_workers=num_workers)
        indices = torch.cat([b["index"] for b in batches]).tolist()
        assert len(ds) == len(indices), "len(ds) is not what the rank emits per epoch"
        per_rank.append(indices)
    emitted = Counter(i for r in per_rank for i in r)
    assert max(emitted.values()) == 1
    assert {len(r) for r in per_rank} == {(total // consumers) * max(num_workers, 1)}
    assert total - len(emitted) == total % consumers


def test_same_seed_same_order_other_seed_or_epoch_differs(
    monkeypatch: pytest.MonkeyPatch, root: Path
) -> None:
    def stream(seed: int) -> list[list[int]]:
        ds = StreamingLeRobotDataset("synth", root=root, seed=seed, episode_pool_size=2)
        return consumer_indices(monkeypatch, ds, 0, 1, passes=2)

    first = stream(7)
    assert stream(7) == first
    assert stream(8)[0] != first[0], "a different seed gave the same order"
    assert first[1] != first[0], "the second epoch repeated the first epoch's order"
    assert sorted(first[1]) == sorted(first[0])


def test_epochs_advance_with_non_persistent_workers(root: Path) -> None:
    ds = StreamingLeRobotDataset("synth", root=root, num_workers=2)
    two_passes = run_loader(ds, batch_size=5, num_workers=2, passes=2)
    per_pass = len(two_passes) // 2
    epoch0 = torch.cat([b["index"] for b in two_passes[:per_pass]])
    epoch1 = torch.cat([b["index"] for b in two_passes[per_pass:]])
    assert not torch.equal(epoch0, epoch1), "non-persistent workers restarted epoch 0"

    fresh = StreamingLeRobotDataset("synth", root=root, num_workers=2)
    fresh.set_epoch(1)
    expected1 = torch.cat([b["index"] for b in run_loader(fresh, batch_size=5, num_workers=2)])
    assert torch.equal(epoch1, expected1), "the second pass is not epoch 1"


def test_shuffle_false_is_sequential_and_episodes_honoured(root: Path) -> None:
    table = data_table(root)
    ds = StreamingLeRobotDataset("synth", root=root, shuffle=False)
    assert [int(s["index"]) for s in ds] == table.column("index").to_pylist()

    chosen = [6, 1, 3]
    ds = StreamingLeRobotDataset("synth", root=root, episodes=chosen, shuffle=False)
    got = [(int(s["episode_index"]), int(s["frame_index"])) for s in ds]
    rows = table.filter(pc.is_in(table.column("episode_index"), value_set=pa.array(chosen)))
    expected = list(
        zip(rows.column("episode_index").to_pylist(), rows.column("frame_index").to_pylist(), strict=True)
    )
    assert got == expected
    assert ds.num_episodes == 3 and ds.num_frames == len(expected)

    shuffled = StreamingLeRobotDataset("synth", root=root, episodes=chosen, episode_pool_size=2)
    assert sorted((int(s["episode_index"]), int(s["frame_index"])) for s in shuffled) == sorted(expected)


def test_warns_once_when_a_consumer_gets_no_work(root: Path) -> None:
    total = data_table(root).num_rows
    ds = StreamingLeRobotDataset("synth", root=root, rank=0, world_size=total + 1)
    with pytest.warns(UserWarning, match="gets no samples"):
        assert list(ds) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(ds) == []


def test_workers_forked_after_iterating_in_the_main_process(root: Path) -> None:
    ds = StreamingLeRobotDataset("synth", root=root, num_workers=2)
    next(iter(ds))  # opens decoders (and threads) in the main process before the fork
    indices = torch.cat([b["index"] for b in run_loader(ds, batch_size=4, num_workers=2, timeout=60)])
    assert len(set(indices.tolist())) == len(indices) == len(ds)
