"""The reference port (reference_lerobot.py) returns what the real lerobot 0.6.1 returns, frame by frame.

lerobot runs in its own interpreter (tests/oracle.py); skips, with the reason, where it is not
installed (see scripts/install_lerobot_oracle.sh).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import oracle
from reference_lerobot import FrameTimestampError, ReferenceLeRobotDataset
from streaming_helpers import assert_same_sample

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


def sample_indices(n: int) -> list[int]:
    return sorted({0, 1, n // 3, n // 2, n - 2, n - 1, *range(0, n, 7)})


@pytest.mark.parametrize("return_uint8", [False, True])
def test_single_frame_matches_lerobot(dataset_root: Path, return_uint8: bool) -> None:
    ref = ReferenceLeRobotDataset(dataset_root, return_uint8=return_uint8)
    real = oracle.lerobot_items(dataset_root, range(len(ref)), return_uint8=return_uint8)
    assert len(ref) == len(real)
    for i, want in enumerate(real):
        assert_same_sample(want, ref[i], f"frame {i}")
    assert isinstance(oracle.lerobot_items(dataset_root, [len(ref)])[0], oracle.LerobotError)


def test_delta_windows_match_lerobot(dataset_root: Path) -> None:
    ref = ReferenceLeRobotDataset(dataset_root, delta_timestamps=DELTAS)
    indices = sample_indices(len(ref))
    padded = 0
    for i, want in zip(
        indices, oracle.lerobot_items(dataset_root, indices, delta_timestamps=DELTAS), strict=True
    ):
        assert_same_sample(want, ref[i], f"frame {i}")
        padded += int(want["action_is_pad"].any())
    assert padded > 0, "the windows never crossed an episode boundary: the test lost its point"


def test_misaligned_delta_rejected_like_lerobot(dataset_root: Path) -> None:
    bad = {"action": [0.0, 0.011]}
    with pytest.raises(oracle.LerobotError, match=r"^ValueError"):
        oracle.lerobot_items(dataset_root, [0], delta_timestamps=bad)
    with pytest.raises(ValueError):
        ReferenceLeRobotDataset(dataset_root, delta_timestamps=bad)


def test_tolerance_violation_raises_like_lerobot(dataset_root: Path, tmp_path: Path) -> None:
    # Shift every cam0 video timestamp by half a frame: both must refuse rather than pick a neighbour.
    shifted = tmp_path / "shifted"
    shutil.copytree(dataset_root, shifted)
    column = "videos/observation.images.cam0/from_timestamp"
    for path in (shifted / "meta" / "episodes").glob("*/*.parquet"):
        table = pq.read_table(path)
        moved = pc.add(table.column(column), pa.scalar(0.5 / 30, pa.float64()))
        pq.write_table(table.set_column(table.schema.get_field_index(column), column, moved), path)
    with pytest.raises(FrameTimestampError, match="tolerance"):
        ReferenceLeRobotDataset(shifted)[3]
    (real,) = oracle.lerobot_items(shifted, [3])
    assert isinstance(real, oracle.LerobotError) and real.type_name == "FrameTimestampError"
    assert "tolerance" in real.message
