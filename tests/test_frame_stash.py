"""The frame stash (``frame_stash_bytes``, Note [Frame stash] in ``cpp/av/frame_stash.h``): a dataset
with one yields bitwise the batches of one without, in the same order, across epochs, with windows,
float32 or uint8, from workers or the main process, dataset-built batches, depth-map videos and after
a resume, while decoding fewer frames (each frame of an epoch about once, at lerobot's GOP 2); a tiny
budget still gives the same samples; bad budgets are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lerobot_stream import DecoderCache, StreamingLeRobotDataset, frame_stash_bytes_for
from streaming_helpers import assert_batches_equal, run_loader

BATCH = 4
WINDOW = {"action": [-2 / 30, 0.0, 1 / 30], "observation.images.cam0": [-1 / 30, 0.0, 2 / 30]}
STASH = 64 << 20


@pytest.fixture(scope="module")
def gop2_root(make_dataset) -> Path:
    """lerobot's video settings in small: AV1 at GOP 2, where a keyframe is decoded per request."""
    return make_dataset(height=48, width=64, gop=2, num_episodes=6, min_length=20, max_length=40)


def make_ds(root: Path, **kwargs: Any) -> StreamingLeRobotDataset:
    return StreamingLeRobotDataset("synth", root=root, episode_pool_size=3, **kwargs)


@pytest.mark.parametrize(
    ("num_workers", "extra"),
    [
        (0, {}),
        (2, {}),
        (2, {"return_uint8": True}),
        (2, {"delta_timestamps": WINDOW}),
        (0, {"delta_timestamps": WINDOW}),
    ],
    ids=["main", "2-workers", "uint8", "window-2-workers", "window-main"],
)
def test_stash_batches_equal_batches_without_it(gop2_root: Path, num_workers: int, extra: dict) -> None:
    expected = run_loader(make_ds(gop2_root, **extra), batch_size=BATCH, num_workers=num_workers, passes=2)
    stashed = make_ds(gop2_root, frame_stash_bytes=STASH, **extra)
    actual = run_loader(stashed, batch_size=BATCH, num_workers=num_workers, passes=2)
    assert_batches_equal(actual, expected)


@pytest.mark.parametrize("budget", [1, 20_000], ids=["one-byte", "few-frames"])
def test_small_budgets_give_the_same_batches(gop2_root: Path, budget: int) -> None:
    expected = run_loader(make_ds(gop2_root), batch_size=BATCH, num_workers=0)
    actual = run_loader(make_ds(gop2_root, frame_stash_bytes=budget), batch_size=BATCH, num_workers=0)
    assert_batches_equal(actual, expected)


def test_depth_video_cameras_with_stash_equal_plain(make_dataset) -> None:
    """Depth-map videos (12-bit HEVC, read as gray12 codes through the same decoders) and an RGB camera."""
    root = make_dataset(num_cameras=1, depth_cameras=1, height=48, width=64, gop=2, num_episodes=4)
    expected = run_loader(make_ds(root), batch_size=BATCH, num_workers=0)
    actual = run_loader(make_ds(root, frame_stash_bytes=STASH), batch_size=BATCH, num_workers=0)
    assert_batches_equal(actual, expected)


def test_dataset_built_batches_with_stash_equal_plain_batches(gop2_root: Path) -> None:
    expected = run_loader(make_ds(gop2_root), batch_size=BATCH, num_workers=2)
    ds = make_ds(gop2_root, frame_stash_bytes=STASH, batch_size=BATCH)
    assert_batches_equal(run_loader(ds, batch_size=None, num_workers=2), expected)


@pytest.mark.parametrize("consumed", [3, 11])
def test_resume_with_stash_is_exact(gop2_root: Path, consumed: int) -> None:
    reference = run_loader(make_ds(gop2_root), batch_size=BATCH, num_workers=2, passes=2)
    ds = make_ds(gop2_root, frame_stash_bytes=STASH)
    ds.load_state_dict({"batches_consumed": consumed, "batch_size": BATCH})
    assert_batches_equal(run_loader(ds, batch_size=BATCH, num_workers=2, passes=2), reference[consumed:])


def _decoder_stats(ds: StreamingLeRobotDataset, epochs: int) -> dict[str, Any]:
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for _ in ds:
            pass
    return ds.stats()["decoder_cache"]


def test_each_frame_of_an_epoch_is_decoded_about_once(gop2_root: Path) -> None:
    """Without a stash, uniform random access at GOP 2 decodes ~1.5 frames per request (a keyframe for
    every request); with room for what the pool needs, every frame once per epoch, in every epoch."""
    plain = _decoder_stats(make_ds(gop2_root, num_workers=0), epochs=2)["decoder"]
    stats = _decoder_stats(make_ds(gop2_root, num_workers=0, frame_stash_bytes=STASH), epochs=2)
    stashed = stats["decoder"]
    assert stashed["frames_requested"] == plain["frames_requested"]
    assert plain["frames_decoded"] / plain["frames_requested"] > 1.3
    assert stashed["frames_decoded"] == stashed["frames_requested"]  # once each, both epochs
    assert stashed["keyframes_decoded"] < 0.6 * plain["keyframes_decoded"]
    assert stashed["frames_from_stash"] > 0.3 * stashed["frames_requested"]
    assert 0 < stats["stash"]["peak_bytes"] <= STASH
    assert stats["stash"]["used_bytes"] == 0  # nothing kept that the epoch did not ask for


def test_decoder_cache_stash_is_bitwise_and_bounded(gop2_root: Path) -> None:
    video = sorted((gop2_root / "videos").rglob("*.mp4"))[0]
    plain = DecoderCache(4)
    budget = 3 * 48 * 64 * 3 // 2 + 1  # three 48x64 yuv420p frames
    stashed = DecoderCache(4, stash_bytes=budget)
    times = _frame_times(video)
    order = torch.randperm(len(times), generator=torch.Generator().manual_seed(0)).tolist()
    for i in order:
        want = plain.get_frames_at(video, [times[i]], dtype=torch.float32)
        assert torch.equal(stashed.get_frames_at(video, [times[i]], dtype=torch.float32), want)
    stats = stashed.stats()
    assert stats["decoder"]["frames_from_stash"] > 0
    assert stats["stash"]["peak_bytes"] <= budget
    assert stats["decoder"]["frames_decoded"] < plain.stats()["decoder"]["frames_decoded"]


def _frame_times(video: Path) -> list[float]:
    from lerobot_stream import VideoDecoder

    return list(VideoDecoder(str(video)).frame_times)


def test_auto_budget_gives_most_of_the_gain(gop2_root: Path) -> None:
    """``"auto"`` sizes the budget for the pool: frames are decoded about once (without a stash about 1.5
    times), the budget is used and never exceeded; it scales with the consumers' share of the frames."""
    ds = make_ds(gop2_root, num_workers=0, frame_stash_bytes="auto")
    stats = _decoder_stats(ds, epochs=1)
    assert stats["decoder"]["frames_decoded"] <= 1.1 * stats["decoder"]["frames_requested"]
    assert 0.5 * ds.frame_stash_bytes < stats["stash"]["peak_bytes"] <= ds.frame_stash_bytes
    whole = {"episode_pool_size": 6, "frame_stash_bytes": "auto"}  # every episode in one pool
    alone = StreamingLeRobotDataset("synth", root=gop2_root, num_workers=0, **whole)
    two_workers = StreamingLeRobotDataset("synth", root=gop2_root, num_workers=2, **whole)
    assert two_workers.frame_stash_bytes == pytest.approx(alone.frame_stash_bytes / 2, rel=0.01)


def test_budget_for_a_pool_prices_each_camera_format() -> None:
    cam = {"video.height": 480, "video.width": 640, "video.pix_fmt": "yuv420p"}
    deep = {**cam, "video.pix_fmt": "yuv420p10le"}
    one = frame_stash_bytes_for(1800, [cam])
    assert one == pytest.approx(1800 / 3 * 480 * 640 * 1.5, rel=1e-6)
    assert frame_stash_bytes_for(1800, [cam, cam]) == pytest.approx(2 * one, rel=1e-6)
    assert frame_stash_bytes_for(1800, [deep]) == pytest.approx(2 * one, rel=1e-6)
    assert frame_stash_bytes_for(3600, [cam]) == pytest.approx(2 * one, rel=1e-6)


def test_bad_budgets_are_refused(gop2_root: Path) -> None:
    with pytest.raises(ValueError, match="frame_stash_bytes"):
        make_ds(gop2_root, frame_stash_bytes=0)
    with pytest.raises(ValueError, match="frame_stash_bytes"):
        make_ds(gop2_root, frame_stash_bytes=1.5)
    with pytest.raises(ValueError, match="frame_stash_bytes"):
        make_ds(gop2_root, frame_stash_bytes="big")
    with pytest.raises(ValueError, match="frame_stash_bytes is for decoding in DataLoader workers"):
        make_ds(gop2_root, frame_stash_bytes=STASH, video_decode_stage=True)
    with pytest.raises(ValueError, match="frame stash budget must be >= 1 byte"):
        DecoderCache(4, stash_bytes=0)
