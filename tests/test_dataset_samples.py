"""What a StreamingLeRobotDataset sample holds: equal to lerobot's ``LeRobotDataset[i]`` (the
independent port in reference_lerobot.py) for every key, dtype and shape; camera frames of the
episode's own video file (2nd and 3rd file of every camera included); delta windows with padding
at episode edges, also 150 frames long; image_transforms applied as lerobot does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.synth import read_full_identity
from reference_lerobot import ReferenceLeRobotDataset
from streaming_helpers import episodes_table

FPS = 30
WINDOWS = {
    "action": [-3 / FPS, -1 / FPS, 0.0, 2 / FPS],
    "observation.state": [0.0],
    "observation.images.cam0": [-2 / FPS, 0.0, 3 / FPS],
}


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(height=48, width=64)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    return frames if frames.dtype == torch.uint8 else (frames * 255).round().to(torch.uint8)


def assert_identity(frames: torch.Tensor, episode: int, frames_expected: list[int], camera: int) -> None:
    frames = to_uint8(frames)
    frames = frames if frames.ndim == 4 else frames[None]
    got = [read_full_identity(f.numpy()) for f in frames]
    assert [(g.episode_index, g.frame_index, g.camera_index) for g in got] == [
        (episode, f, camera) for f in frames_expected
    ]


def assert_matches_reference(sample: dict[str, Any], ref: dict[str, Any]) -> None:
    """Same keys; tensors of the same dtype and shape, bitwise equal (pixels included); equal strings."""
    assert sample.keys() == ref.keys()
    for key, expected in ref.items():
        got = sample[key]
        if not isinstance(expected, torch.Tensor):
            assert got == expected, key
            continue
        assert isinstance(got, torch.Tensor) and got.dtype == expected.dtype, key
        assert got.shape == expected.shape, key
        assert torch.equal(got, expected), key


@pytest.mark.parametrize("return_uint8", [False, True])
def test_every_sample_equals_lerobot_getitem(root: Path, return_uint8: bool) -> None:
    ds = StreamingLeRobotDataset(
        "synth", root=root, delta_timestamps=WINDOWS, episode_pool_size=3, return_uint8=return_uint8
    )
    ref = ReferenceLeRobotDataset(root, delta_timestamps=WINDOWS, return_uint8=return_uint8)
    seen = 0
    for sample in ds:
        assert_matches_reference(sample, ref[int(sample["index"])])
        assert sample["timestamp"].dtype == torch.float32 and sample["timestamp"].ndim == 0
        seen += 1
    assert seen == ds.num_frames


def test_frames_come_from_the_episodes_own_video_file(root: Path) -> None:
    episodes = episodes_table(root)
    video_keys = StreamingLeRobotDataset("synth", root=root).meta.video_keys
    for key in video_keys:
        files = set(episodes.column(f"videos/{key}/file_index").to_pylist())
        assert {1, 2} <= files, f"the fixture must put episodes in the 2nd and 3rd file of {key}"
    ds = StreamingLeRobotDataset("synth", root=root, delta_timestamps=WINDOWS, episode_pool_size=2)
    lengths = dict(
        zip(episodes.column("episode_index").to_pylist(), episodes.column("length").to_pylist(), strict=True)
    )
    for sample in ds:
        episode, frame = int(sample["episode_index"]), int(sample["frame_index"])
        for camera, key in enumerate(video_keys):
            if key in WINDOWS:
                offsets = [round(d * FPS) for d in WINDOWS[key]]
                expected = [min(max(frame + o, 0), lengths[episode] - 1) for o in offsets]
                pads = [not 0 <= frame + o < lengths[episode] for o in offsets]
                assert sample[f"{key}_is_pad"].tolist() == pads
            else:
                expected = [frame]
            assert_identity(sample[key], episode, expected, camera)


def test_windows_longer_than_100_frames_pad_exactly(make_dataset) -> None:
    root = make_dataset(episode_lengths=[200, 60, 170], num_cameras=1, height=48, width=64)
    windows = {
        "action": [-k / FPS for k in range(149, -1, -1)],  # 150 frames of history
        "observation.state": [k / FPS for k in range(0, 120)],  # 120 frames of future
        "observation.images.cam0": [-149 / FPS, 0.0, 119 / FPS],
    }
    ds = StreamingLeRobotDataset("synth", root=root, delta_timestamps=windows, episode_pool_size=2)
    ref = ReferenceLeRobotDataset(root, delta_timestamps=windows)
    for i, sample in enumerate(ds):
        if i % 7:  # every 7th sample keeps the reference's PyAV decoding affordable
            continue
        assert_matches_reference(sample, ref[int(sample["index"])])
        frame = int(sample["frame_index"])
        assert sample["action_is_pad"].sum().item() == max(0, 149 - frame)


def test_image_transforms_apply_to_every_camera_like_lerobot(root: Path) -> None:
    def flip(frames: torch.Tensor) -> torch.Tensor:
        return frames.flip(-1)

    kwargs = {"root": root, "delta_timestamps": WINDOWS, "shuffle": False}
    plain = list(StreamingLeRobotDataset("synth", **kwargs))
    flipped = list(StreamingLeRobotDataset("synth", image_transforms=flip, **kwargs))
    assert len(plain) == len(flipped)
    keys = ["observation.images.cam0", "observation.images.cam1"]
    for a, b in zip(plain, flipped, strict=True):
        for key in keys:
            assert torch.equal(b[key], a[key].flip(-1)), key
        assert torch.equal(a["action"], b["action"])
