"""Bad input gives a clear Python exception naming the file or argument at fault; deprecated
lerobot arguments are accepted with a warning."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_stream import FrameTimestampError, StreamingLeRobotDataset


@pytest.fixture
def copy_of(make_dataset, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(make_dataset(height=48, width=64), root)
    return root


def test_missing_root_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        StreamingLeRobotDataset("org/name", root=missing)


@pytest.mark.parametrize("relative", ["meta/info.json", "meta/tasks.parquet"])
def test_missing_meta_file_names_it(copy_of: Path, relative: str) -> None:
    (copy_of / relative).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(relative)):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_missing_episodes_metadata_names_the_folder(copy_of: Path) -> None:
    shutil.rmtree(copy_of / "meta" / "episodes")
    with pytest.raises(FileNotFoundError, match="meta/episodes"):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_corrupt_info_json_names_it(copy_of: Path) -> None:
    (copy_of / "meta" / "info.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"info\.json is not valid JSON"):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_wrong_codebase_version_is_rejected(copy_of: Path) -> None:
    path = copy_of / "meta" / "info.json"
    info = json.loads(path.read_text())
    info["codebase_version"] = "v2.1"
    path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"info\.json: codebase_version 'v2\.1' is not supported"):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_unknown_episode_is_rejected(make_dataset) -> None:
    with pytest.raises(ValueError, match="Episode 99 is not in dataset"):
        StreamingLeRobotDataset("synth", root=make_dataset(height=48, width=64), episodes=[0, 99])


def test_delta_timestamps_key_must_be_a_feature(make_dataset) -> None:
    with pytest.raises(ValueError, match="do not correspond to dataset features"):
        StreamingLeRobotDataset(
            "synth", root=make_dataset(height=48, width=64), delta_timestamps={"nope": [0.0]}
        )


def test_delta_timestamps_must_be_multiples_of_the_frame_period(make_dataset) -> None:
    with pytest.raises(ValueError, match="outside of tolerance"):
        StreamingLeRobotDataset(
            "synth", root=make_dataset(height=48, width=64), delta_timestamps={"action": [0.0, 0.01]}
        )


def test_missing_data_file_is_named_when_read(copy_of: Path) -> None:
    data_file = next((copy_of / "data").glob("*/*.parquet"))
    data_file.unlink()
    ds = StreamingLeRobotDataset("synth", root=copy_of)
    with pytest.raises(FileNotFoundError, match=re.escape(data_file.name)):
        next(iter(ds))


def test_missing_video_file_is_named_when_decoded(copy_of: Path) -> None:
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    first_video = copy_of / ds.meta.get_video_file_path(0, ds.meta.video_keys[0])
    first_video.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(first_video.name)):
        next(iter(ds))


def test_frame_outside_tolerance_raises_lerobots_error(copy_of: Path) -> None:
    # Shift episode 0's frames in its file by half a frame: no frame is within tolerance_s.
    path = next((copy_of / "meta" / "episodes").glob("*/*.parquet"))
    table = pq.read_table(path)
    key = "videos/observation.images.cam0/from_timestamp"
    shifted = [t + 0.5 / 30 for t in table.column(key).to_pylist()]
    table = table.set_column(table.column_names.index(key), key, pa.array(shifted, pa.float64()))
    pq.write_table(table, path)
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    with pytest.raises(FrameTimestampError, match=r"file-000\.mp4"):
        next(iter(ds))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"buffer_size": 1000}, "episode_pool_size"),
        ({"max_num_shards": 16}, "max_num_shards"),
        ({"rng": object()}, "seed"),
    ],
)
def test_deprecated_arguments_warn(make_dataset, kwargs: dict, message: str) -> None:
    with pytest.warns(UserWarning, match=message):
        StreamingLeRobotDataset("synth", root=make_dataset(height=48, width=64), **kwargs)
