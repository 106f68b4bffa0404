"""Resume equivalence: a run stopped after k batches and resumed with
``load_state_dict({"batches_consumed": k, "batch_size": b})`` continues with bitwise the same
batches, in order, as the uninterrupted run — mid-epoch, on and across epoch boundaries, twice,
with and without workers — and the fast-forward decodes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lerobot_stream import StreamingLeRobotDataset
from streaming_helpers import assert_batches_equal, run_loader

BATCH = 4
PASSES = 3  # epochs of the uninterrupted reference run


def make_ds(root: Path, **kwargs: Any) -> StreamingLeRobotDataset:
    return StreamingLeRobotDataset(
        "synth",
        root=root,
        episode_pool_size=2,
        delta_timestamps={"action": [-2 / 30, 0.0, 1 / 30], "observation.images.cam0": [-1 / 30, 0.0]},
        **kwargs,
    )


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(height=48, width=64)


LOADERS = {
    "main-process": {"num_workers": 0},
    "2-workers": {"num_workers": 2, "prefetch_factor": 4},
    "2-persistent-workers-prefetch-1": {"num_workers": 2, "persistent_workers": True, "prefetch_factor": 1},
    "2-workers-drop-last": {"num_workers": 2, "drop_last": True},
}


@pytest.fixture(scope="module", params=list(LOADERS))
def loader_and_reference(request: pytest.FixtureRequest, root: Path) -> tuple[dict[str, Any], list, int]:
    """(loader kwargs, uninterrupted batches over PASSES epochs, batches per epoch)."""
    loader = LOADERS[request.param]
    reference = run_loader(make_ds(root), batch_size=BATCH, passes=PASSES, **loader)
    assert len(reference) % PASSES == 0
    return loader, reference, len(reference) // PASSES


def resume_and_run(root: Path, loader: dict[str, Any], consumed: int, passes: int, stop_after=None) -> list:
    ds = make_ds(root)
    ds.load_state_dict(
        {"batches_consumed": consumed, "batch_size": BATCH, "drop_last": loader.get("drop_last", False)}
    )
    return run_loader(ds, batch_size=BATCH, passes=passes, stop_after=stop_after, **loader)


def resume_points(per_epoch: int) -> list[int]:
    """k at 0, mid-epoch (odd and even), on an epoch boundary, just after it, and just before one."""
    return [0, per_epoch // 2 + 1, per_epoch // 2, per_epoch, per_epoch + 1, 2 * per_epoch - 1]


def test_resume_continues_with_the_same_batches(root: Path, loader_and_reference) -> None:
    loader, reference, per_epoch = loader_and_reference
    for k in resume_points(per_epoch):
        epoch = k // per_epoch
        # The resumed loader's first pass finishes epoch `epoch`; its second pass is epoch + 1.
        resumed = resume_and_run(root, loader, k, passes=2)
        expected = reference[k : (epoch + 2) * per_epoch]
        assert_batches_equal(resumed, expected)


def test_resume_twice(root: Path, loader_and_reference) -> None:
    loader, reference, per_epoch = loader_and_reference
    first_stop = per_epoch // 2 + 1
    second_stop = per_epoch + 3
    part1 = resume_and_run(root, loader, first_stop, passes=2, stop_after=second_stop - first_stop)
    part2 = resume_and_run(root, loader, second_stop, passes=1)
    assert_batches_equal(part1 + part2, reference[first_stop : 2 * per_epoch])


def test_fast_forward_decodes_nothing_and_reads_only_its_pool(make_dataset) -> None:
    root = make_dataset(height=48, width=64)
    pool = 2
    ds = StreamingLeRobotDataset("synth", root=root, episode_pool_size=pool)
    total = ds.num_frames
    consumed = total - 8  # deep into the epoch: a replay would have read most episodes
    ds.load_state_dict({"batches_consumed": consumed, "batch_size": 1})
    first = next(iter(ds))
    stats = ds.stats()
    cameras = len(ds.meta.video_keys)
    assert stats["frames_requested"] == cameras, "the fast-forward decoded frames"
    cache = stats["decoder_cache"]
    # The decoders saw only the emitted sample's frames (opening a file also checks it once:
    # Note [What is checked, and when] in lerobot_stream.validation).
    assert cache["decoder"]["frames_requested"] == cameras
    assert stats["tabular"]["episodes_read"] <= pool + 1, (
        "the fast-forward read episodes outside its final pool"
    )
    uninterrupted = StreamingLeRobotDataset("synth", root=root, episode_pool_size=pool)
    expected = [int(s["index"]) for s in uninterrupted][consumed]
    assert int(first["index"]) == expected


def test_resume_with_changed_order_is_rejected(root: Path) -> None:
    # World size and num_workers may change (tests/test_elastic_resume.py); what the order depends on
    # may not: each change raises ValueError naming the field.
    state = make_ds(root, seed=1).state_dict(batches_consumed=3, batch_size=BATCH)
    assert state["batches_consumed"] == 3 and state["batch_size"] == BATCH and state["version"] == 2
    with pytest.raises(ValueError, match="seed"):
        make_ds(root, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="shuffle"):
        make_ds(root, seed=1, shuffle=False).load_state_dict(state)
    with pytest.raises(ValueError, match="episode_pool_size"):
        StreamingLeRobotDataset("synth", root=root, seed=1, episode_pool_size=5).load_state_dict(state)
    with pytest.raises(ValueError, match="dataset_fingerprint"):
        make_ds(root, seed=1, episodes=[0, 1, 2]).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        make_ds(root, seed=1).load_state_dict({"batches_consumed": 3})
