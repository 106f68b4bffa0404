"""Batches built by the dataset (``batch_size=B`` with ``DataLoader(batch_size=None)``) equal the
DataLoader's own batches of the same samples, in order, with exact resume; frames that workers hand
over in shared blocks (Note [Shared frame blocks]) equal lerobot's values, arrive as plain tensors,
keep their values while the consumer holds them, and their blocks are reused only once released."""

from __future__ import annotations

import itertools
import pickle
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from lerobot_stream import StreamingLeRobotDataset, _core
from lerobot_stream.decoding import decode_parallelism
from lerobot_stream.shared_frames import BlockPool, FrameSlots, SharedFrames, block_tensor
from reference_lerobot import ReferenceLeRobotDataset
from streaming_helpers import assert_batches_equal, assert_same_sample, run_loader

BATCH = 4
WINDOWS = {"action": [-1 / 30, 0.0, 2 / 30], "observation.images.cam0": [-2 / 30, 0.0]}


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(height=48, width=64)


def make_ds(root: Path, **kwargs: Any) -> StreamingLeRobotDataset:
    return StreamingLeRobotDataset(
        "synth", root=root, episode_pool_size=2, delta_timestamps=WINDOWS, **kwargs
    )


def batched_run(ds: StreamingLeRobotDataset, num_workers: int, passes: int = 1) -> list[dict[str, Any]]:
    kwargs = {"prefetch_factor": 2} if num_workers else {}
    loader = DataLoader(ds, batch_size=None, num_workers=num_workers, **kwargs)
    return [batch for _ in range(passes) for batch in loader]


@pytest.mark.parametrize("return_uint8", [False, True])
@pytest.mark.parametrize(("num_workers", "drop_last"), [(0, False), (2, False), (2, True)])
def test_dataset_batches_equal_the_dataloaders_batches(
    root: Path, return_uint8: bool, num_workers: int, drop_last: bool
) -> None:
    common = {"return_uint8": return_uint8, "num_workers": max(num_workers, 1)}
    expected = run_loader(
        make_ds(root, **common), batch_size=BATCH, num_workers=num_workers, drop_last=drop_last, passes=2
    )
    batched = make_ds(root, batch_size=BATCH, drop_last=drop_last, **common)
    actual = batched_run(batched, num_workers, passes=2)
    assert_batches_equal(actual, expected)
    assert len(actual) == 2 * len(batched)
    frames = actual[0]["observation.images.cam0"]
    assert type(frames) is torch.Tensor and frames.dtype == (torch.uint8 if return_uint8 else torch.float32)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataset_batch_size_one_gives_batches_of_one(root: Path, num_workers: int) -> None:
    """Batches of one sample (a leading axis of 1, lists of strings), as the DataLoader's, not samples."""
    expected = run_loader(
        make_ds(root, num_workers=max(num_workers, 1)), batch_size=1, num_workers=num_workers
    )
    actual = batched_run(make_ds(root, batch_size=1, num_workers=max(num_workers, 1)), num_workers)
    assert_batches_equal(actual, expected)
    assert actual[0]["action"].shape[0] == 1 and isinstance(actual[0]["task"], list)


def test_dataset_batches_resume_exactly(root: Path) -> None:
    full = batched_run(make_ds(root, batch_size=BATCH, num_workers=2), num_workers=2, passes=2)
    per_epoch = len(full) // 2
    for consumed in (3, per_epoch + 1):
        ds = make_ds(root, batch_size=BATCH, num_workers=2)
        ds.load_state_dict({"batches_consumed": consumed, "batch_size": BATCH})
        resumed = batched_run(ds, num_workers=2, passes=2)
        assert_batches_equal(resumed[: len(full) - consumed], full[consumed:])
    with pytest.raises(ValueError, match="batches of 8"):
        make_ds(root, batch_size=BATCH).load_state_dict({"batches_consumed": 1, "batch_size": 8})


@pytest.mark.parametrize("return_uint8", [False, True])
def test_worker_frames_equal_lerobots_arrive_as_plain_tensors_and_keep_their_values(
    root: Path, return_uint8: bool
) -> None:
    ref = ReferenceLeRobotDataset(root, delta_timestamps=WINDOWS, return_uint8=return_uint8)
    common = {"num_workers": 2, "return_uint8": return_uint8}
    loaders = [(make_ds(root, **common), BATCH), (make_ds(root, batch_size=3, **common), None)]
    for ds, batch_size in loaders:
        loader = DataLoader(ds, batch_size=batch_size, num_workers=2, prefetch_factor=2)
        held = list(loader)  # every batch kept alive until the end: no block may be reused under it
        assert sum(len(b["index"]) for b in held) == ds.num_frames - ds.num_frames % 2
        for batch in held:
            for key in ("observation.images.cam0", "observation.images.cam1"):
                assert type(batch[key]) is torch.Tensor, key
            for i, index in enumerate(batch["index"].tolist()):
                sample = {k: v[i] for k, v in batch.items()}
                assert_same_sample(ref[index], sample, f"index {index}")


def collate_through_pickle(samples: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """What a DataLoader worker does with a batch: default_collate, then pickled to the main process."""
    return pickle.loads(bytes(ForkingPickler.dumps(default_collate(samples))))


def test_shared_blocks_are_reused_only_after_the_receiver_frees_them() -> None:
    pool = BlockPool(max_free=4)
    slots = FrameSlots(pool)
    shape, dtype = (2, 3, 4, 5), torch.float32

    def samples(first: int) -> list[dict[str, torch.Tensor]]:
        out = []
        for i in range(first, first + BATCH):
            slots.begin_sample()
            frames = slots.frames("cam", shape, dtype).fill_(i)
            out.append({"cam": frames.squeeze(0) if shape[0] == 1 else frames, "index": torch.tensor(i)})
        return out

    first = samples(0)
    collated = default_collate(first)  # the batch size is not known yet: stacked as usual
    assert type(collated["cam"]) is torch.Tensor and slots.batch_size == BATCH
    del first, collated

    batch = default_collate(samples(BATCH))  # now each sample's frames are a slot of one block
    assert type(batch["cam"]) is SharedFrames
    assert type(batch["cam"] * 2) is torch.Tensor  # anything computed from it is an ordinary tensor
    received = pickle.loads(bytes(ForkingPickler.dumps(batch)))
    del batch
    assert type(received["cam"]) is torch.Tensor
    assert (
        received["cam"].tolist()
        == default_collate([{"cam": torch.full(shape, float(i))} for i in range(BATCH, 2 * BATCH)])[
            "cam"
        ].tolist()
    )
    assert pool.stats()["created"] == 1

    other = collate_through_pickle(samples(2 * BATCH))  # the first block is still held by `received`
    assert pool.stats() == {"created": 2, "reused": 0, "held": 2}
    assert received["cam"][0, 0, 0, 0, 0].item() == BATCH  # untouched
    view = received["cam"][1]
    del received
    collate_through_pickle(samples(3 * BATCH))  # the first block: a view of it is still alive
    assert pool.stats()["reused"] == 0
    del view, other
    collate_through_pickle(samples(4 * BATCH))
    assert pool.stats()["reused"] == 1


def test_a_batch_without_a_block_for_a_camera_never_writes_into_another_batchs_block() -> None:
    pool = BlockPool(max_free=4)
    slots = FrameSlots(pool)
    slots.batch_size = BATCH
    shape = (3, 4, 5)
    first = []
    for i in range(BATCH):
        slots.begin_sample()
        first.append({"cam": slots.frames("cam", shape, torch.uint8).fill_(i)})
    held = collate_through_pickle(first)["cam"]
    del first
    # The next batch's first sample meets a new video (its frames come from the decoder, not a slot):
    slots.begin_sample()
    second = [{"cam": torch.full(shape, 100, dtype=torch.uint8)}]
    for _ in range(1, BATCH):
        slots.begin_sample()
        second.append({"cam": slots.frames("cam", shape, torch.uint8).fill_(200)})
    assert all(s["cam"].untyped_storage().data_ptr() != held.data_ptr() - 64 for s in second)
    assert collate_through_pickle(second)["cam"][:, 0, 0, 0].tolist() == [100, 200, 200, 200]
    assert held[:, 0, 0, 0].tolist() == list(range(BATCH))


def test_a_short_first_batch_does_not_fix_the_batch_size() -> None:
    slots = FrameSlots(BlockPool(max_free=4))
    shape = (3, 4, 5)

    def batch(values: range) -> list[int]:
        samples = []
        for v in values:
            slots.begin_sample()
            samples.append({"cam": slots.frames("cam", shape, torch.uint8).fill_(v)})
        return collate_through_pickle(samples)["cam"][:, 0, 0, 0].tolist()

    assert batch(range(2)) == [0, 1]  # a worker whose pass starts with its last, short batch
    slots.restart()  # the next pass: full batches of 4
    for first in range(0, 16, BATCH):
        assert batch(range(first, first + BATCH)) == list(range(first, first + BATCH))
    assert slots.batch_size == BATCH


def test_frames_that_leave_without_the_shared_collate_are_copied_and_their_block_dropped() -> None:
    pool = BlockPool(max_free=4)
    slots = FrameSlots(pool)
    slots.batch_size = BATCH
    for _ in range(3):
        stacked = []
        for i in range(BATCH):
            slots.begin_sample()
            stacked.append(slots.frames("cam", (3, 4, 5), torch.uint8).fill_(i))
        batch = torch.stack(stacked)  # a custom collate: an ordinary copy
        assert type(batch) is torch.Tensor and batch[:, 0, 0, 0].tolist() == list(range(BATCH))
        del stacked
    assert pool.stats()["held"] == 1  # the blocks nobody will release are not kept


def test_a_pipeline_that_deepens_again_reuses_its_blocks_and_a_shallow_one_lets_the_surplus_go() -> None:
    pool = BlockPool(max_free=1)

    def cycle(depth: int) -> None:
        """``depth`` batches in flight at once (filled, sent), then all released by the consumer."""
        filling = []
        for _ in range(depth):
            block = pool.acquire(256)
            filling.append((block.data_ptr(), block_tensor(block, (256,), torch.uint8)))  # its frames
        for pointer, _ in filling:
            _core.set_shared_block_state(pointer, 2)  # sent: only the receiver holds it now
        pointers = [pointer for pointer, _ in filling]
        del filling, block
        for pointer in pointers:
            _core.set_shared_block_state(pointer, 0)  # the receiver freed it

    cycle(3)
    assert pool.stats()["created"] == 3
    for _ in range(5):  # the consumer's pace changes: one batch in flight, then three again
        cycle(1)
        cycle(3)
    assert pool.stats()["created"] == 3  # no block made again, no page faulted in again
    for _ in range(20):
        cycle(1)
    assert pool.stats()["held"] <= 2  # a pipeline that stays shallow keeps what it uses
    cycle(3)
    assert pool.stats()["held"] == 3


def test_decode_parallelism_never_exceeds_the_cores_of_a_consumer() -> None:
    cores = len(__import__("os").sched_getaffinity(0))
    assert decode_parallelism(4, consumers=cores) == 1
    assert decode_parallelism(4, consumers=cores * 3) == 1
    assert decode_parallelism(1, consumers=1) == 1
    assert decode_parallelism(64, consumers=1) == cores
    assert all(1 <= decode_parallelism(n, c) <= n for n, c in itertools.product(range(1, 5), range(1, 5)))
