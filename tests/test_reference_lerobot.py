"""The reference port (reference_lerobot.py) returns what the real lerobot 0.6.1 returns, frame by frame.

Skips, with the reason, where lerobot 0.6.1 cannot be imported (see scripts/install_lerobot_oracle.sh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import oracle
from reference_lerobot import FrameTimestampError, ReferenceLeRobotDataset

# Past and future windows that cross episode starts and ends (is_pad both ways), per-camera windows
# that differ, and a key with a single delta.
DELTAS: dict[str, list[float]] = {
    "action": [-0.1, 0.0, 1 / 30, 0.2, 0.5],
    "observation.state": [-1 / 30, 0.0],
    "observation.images.cam0": [-0.2, -1 / 30, 0.0],
    "observation.images.cam1": [0.1],
}


@pytest.fixture(scope="module")
def dataset_root(make_dataset: Any) -> Path:
    oracle.require_lerobot()
    return make_dataset()


def assert_same_sample(expected: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    assert list(actual) == list(expected), f"{where}: keys differ"
    for key, want in expected.items():
        got = actual[key]
        if isinstance(want, torch.Tensor):
            assert isinstance(got, torch.Tensor), f"{where} {key}: not a tensor"
            assert (got.dtype, tuple(got.shape)) == (want.dtype, tuple(want.shape)), f"{where} {key}"
            assert torch.equal(got, want), f"{where} {key}: values differ"
        else:
            assert got == want, f"{where} {key}"


def sample_indices(n: int) -> list[int]:
    return sorted({0, 1, n // 3, n // 2, n - 2, n - 1, *range(0, n, 7)})


@pytest.mark.parametrize("return_uint8", [False, True])
def test_single_frame_matches_lerobot(dataset_root: Path, return_uint8: bool) -> None:
    ref = ReferenceLeRobotDataset(dataset_root, return_uint8=return_uint8)
    real = oracle.lerobot_dataset(str(dataset_root), return_uint8=return_uint8)
    assert len(ref) == len(real)
    for i in range(len(ref)):
        assert_same_sample(real[i], ref[i], f"frame {i}")


def test_delta_windows_match_lerobot(dataset_root: Path) -> None:
    ref = ReferenceLeRobotDataset(dataset_root, delta_timestamps=DELTAS)
    n = len(ref)
    padded = 0
    for i in sample_indices(n):
        want = oracle.lerobot_item(dataset_root, i, delta_timestamps=DELTAS)
        assert_same_sample(want, ref[i], f"frame {i}")
        padded += int(want["action_is_pad"].any())
    assert padded > 0, "the windows never crossed an episode boundary: the test lost its point"


def test_misaligned_delta_rejected_like_lerobot(dataset_root: Path) -> None:
    bad = {"action": [0.0, 0.011]}
    with pytest.raises(ValueError):
        oracle.lerobot_item(dataset_root, 0, delta_timestamps=bad)
    with pytest.raises(ValueError):
        ReferenceLeRobotDataset(dataset_root, delta_timestamps=bad)


def test_tolerance_violation_raises_like_lerobot(dataset_root: Path) -> None:
    # Shift every video timestamp by half a frame: both must refuse rather than pick a neighbour.
    ref = ReferenceLeRobotDataset(dataset_root)
    real = oracle.lerobot_dataset.__wrapped__(str(dataset_root))  # a private, uncached instance
    half = 0.5 / ref.fps
    column = "videos/observation.images.cam0/from_timestamp"
    for ep in ref.episodes:
        ep[column] += half
    real.meta.episodes = real.meta.episodes.map(
        lambda row: {
            "videos/observation.images.cam0/from_timestamp": row[
                "videos/observation.images.cam0/from_timestamp"
            ]
            + half
        }
    )
    with pytest.raises(FrameTimestampError, match="tolerance"):
        ref[3]
    with pytest.raises(ValueError, match="tolerance"):
        real[3]
