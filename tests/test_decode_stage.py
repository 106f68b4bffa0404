"""The decode stage on the CPU (Note [Decode stage requests]): ``ds.dataloader()`` with
``video_decode_stage=True`` yields bitwise the batches of a worker-decoding ``DataLoader(ds)``, in the
same order, across epochs, with windows, uint8 or float, image transforms, and after a resume; its
stats count every frame under the backend that decoded it; errors name the file. This is where the
GPU decode stage's plumbing (requests, collation, batch assembly, resume) is proven without a GPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from lerobot_stream import DecodeStage, StreamingLeRobotDataset
from lerobot_stream.decode_stage import VIDEO_REQUESTS_KEY
from streaming_helpers import assert_batches_equal, run_loader

BATCH = 4
WINDOW = {"action": [-2 / 30, 0.0, 1 / 30], "observation.images.cam0": [-1 / 30, 0.0, 2 / 30]}


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(height=48, width=64)


def make_ds(root: Path, **kwargs: Any) -> StreamingLeRobotDataset:
    kwargs.setdefault("delta_timestamps", WINDOW)
    return StreamingLeRobotDataset("synth", root=root, episode_pool_size=2, **kwargs)


def stage_batches(ds: StreamingLeRobotDataset, passes: int = 1, **loader: Any) -> list[dict[str, Any]]:
    stage = ds.dataloader(batch_size=BATCH, **loader)
    assert isinstance(stage, DecodeStage)
    return [batch for _ in range(passes) for batch in stage]


@pytest.mark.parametrize(
    ("num_workers", "return_uint8"), [(0, False), (2, False), (2, True)], ids=["main", "2-workers", "uint8"]
)
def test_cpu_stage_batches_equal_worker_decoded_batches(
    root: Path, num_workers: int, return_uint8: bool
) -> None:
    expected = run_loader(
        make_ds(root, return_uint8=return_uint8), batch_size=BATCH, num_workers=num_workers, passes=2
    )
    ds = make_ds(root, return_uint8=return_uint8, video_decode_stage=True)
    actual = stage_batches(ds, passes=2, num_workers=num_workers, stage_threads=3, batches_ahead=2)
    assert_batches_equal(actual, expected)
    window = actual[0]["observation.images.cam0"]
    assert window.shape == (BATCH, 3, 3, 48, 64)  # [B, T, 3, H, W] for a window
    assert actual[0]["observation.images.cam1"].shape == (BATCH, 3, 48, 64)  # one frame per sample
    assert window.dtype == (torch.uint8 if return_uint8 else torch.float32)


def test_cpu_stage_over_dataset_built_batches_equals_worker_decoded_batches(root: Path) -> None:
    """StreamingLeRobotDataset(batch_size=B) collates its requests in the workers; the stage then
    decodes the same batches a plain DataLoader(batch_size=B) over a worker-decoding dataset yields."""
    expected = run_loader(make_ds(root), batch_size=BATCH, num_workers=2)
    ds = make_ds(root, video_decode_stage=True, batch_size=BATCH)
    stage = ds.dataloader(num_workers=2)
    assert isinstance(stage, DecodeStage)
    assert_batches_equal(list(stage), expected)
    with pytest.raises(ValueError, match="yields batches of 4"):
        ds.dataloader(batch_size=BATCH + 1)


def test_cpu_stage_applies_image_transforms_per_sample_like_workers(root: Path) -> None:
    def transform(image: torch.Tensor) -> torch.Tensor:
        return image.flip(-1)[..., :40] * 0.5 + image.mean()

    expected = run_loader(make_ds(root, image_transforms=transform), batch_size=BATCH, num_workers=0)
    ds = make_ds(root, image_transforms=transform, video_decode_stage=True)
    assert_batches_equal(stage_batches(ds, num_workers=0), expected)


@pytest.mark.parametrize("consumed", [3, 7])
def test_cpu_stage_resumes_exactly(root: Path, consumed: int) -> None:
    reference = run_loader(make_ds(root), batch_size=BATCH, num_workers=2, passes=2)
    assert consumed < len(reference) // 2  # mid first epoch
    ds = make_ds(root, video_decode_stage=True)
    ds.load_state_dict({"batches_consumed": consumed, "batch_size": BATCH})
    # The resumed run finishes epoch 0, then runs epoch 1: the reference's batches from `consumed` on.
    assert_batches_equal(stage_batches(ds, passes=2, num_workers=2), reference[consumed:])


def test_cpu_stage_stats_count_every_frame_under_its_backend(root: Path) -> None:
    ds = make_ds(root, video_decode_stage=True)
    stage = ds.dataloader(batch_size=BATCH, num_workers=0)
    batches = list(stage)
    frames = sum(
        b["observation.images.cam0"].shape[0] * 3 + b["observation.images.cam1"].shape[0] for b in batches
    )
    stats = stage.stats()
    assert stats["device"] == "cpu"
    assert stats["frames"] == frames
    assert stats["frames_by_backend"] == {"cpu": frames}
    assert stats["batches_taken"] == len(batches)
    assert set(stats["decoder_cache"]["opened_by_backend"]) == {"cpu"}
    assert stats["decoder_cache"]["backend_notes"] == []


def test_stage_stops_early_without_leaking_batches_decoded_ahead(root: Path) -> None:
    stage = make_ds(root, video_decode_stage=True).dataloader(
        batch_size=BATCH, num_workers=0, batches_ahead=3
    )
    iterator = iter(stage)
    first = next(iterator)
    iterator.close()  # the consumer stops mid-epoch: the batches decoded ahead are taken and dropped
    assert stage.stats()["batches_taken"] == stage.stats()["batches_submitted"]
    again = next(iter(stage))  # the next pass starts the next epoch normally
    assert again.keys() == first.keys()


def test_plain_dataloader_over_a_stage_dataset_yields_frame_requests(root: Path) -> None:
    """Workers emit each camera's VideoRequest (episode, timestamps on the file's clock), collated."""
    ds = make_ds(root, video_decode_stage=True)
    batch = next(iter(DataLoader(ds, batch_size=BATCH)))
    assert "observation.images.cam0" not in batch
    key = "observation.images.cam0"
    requests = batch[VIDEO_REQUESTS_KEY][key]
    assert torch.equal(requests["episode"], batch["episode_index"])
    assert requests["timestamps"].dtype == torch.float64 and requests["timestamps"].shape == (BATCH, 3)
    offsets = [
        ds.meta.videos[key].from_timestamp[ds.meta.episode_row(int(e))] for e in batch["episode_index"]
    ]
    # the window's offset-0 frame is the sample's own: from_timestamp + timestamp (Note [Video frame
    # timestamps]); padded positions would repeat an edge frame, so only the middle one is fixed here
    expected = torch.tensor(offsets, dtype=torch.float64) + batch["timestamp"].to(torch.float64)
    assert torch.allclose(requests["timestamps"][:, 1], expected, atol=1e-6)


def test_decode_stage_refuses_a_dataset_that_decodes_in_workers(root: Path) -> None:
    ds = make_ds(root)
    assert not isinstance(ds.dataloader(batch_size=BATCH), DecodeStage)  # plain DataLoader, as before
    with pytest.raises(ValueError, match="frame requests"):
        DecodeStage(DataLoader(ds, batch_size=BATCH), ds)


def test_stage_error_names_the_damaged_file(root: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(root, damaged)
    video = sorted((damaged / "videos" / "observation.images.cam1").rglob("*.mp4"))[0]
    video.write_bytes(b"not a video at all")
    stage = make_ds(damaged, video_decode_stage=True, shuffle=False).dataloader(
        batch_size=BATCH, num_workers=0
    )
    with pytest.raises(ValueError, match=video.name):
        list(stage)


def test_pinned_cpu_stage_needs_the_driver(root: Path) -> None:
    from lerobot_stream import cuda_info

    if cuda_info()["available"]:
        pytest.skip("a GPU is usable here; pinned batches are checked in test_cuda.py")
    stage = make_ds(root, video_decode_stage=True).dataloader(
        batch_size=BATCH, num_workers=0, pin_memory=True
    )
    with pytest.raises(RuntimeError, match="unavailable"):
        next(iter(stage))
