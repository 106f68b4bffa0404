"""Bad input gives a clear Python exception naming the file or argument at fault; deprecated
lerobot arguments are accepted with a warning."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
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


def _rewrite_parquet(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def _set_column(table: pa.Table, name: str, values: list) -> pa.Table:
    field = table.schema.field(name)
    return table.set_column(table.column_names.index(name), field, pa.array(values, field.type))


@pytest.mark.parametrize("task_index", [-1, 7])
def test_task_index_outside_the_tasks_names_the_data_file(copy_of: Path, task_index: int) -> None:
    """-1 would give the last task (Python indexing), 7 an IndexError naming nothing."""
    data_file = next((copy_of / "data").glob("*/*.parquet"))
    _rewrite_parquet(data_file, lambda t: _set_column(t, "task_index", [task_index] * t.num_rows))
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    with pytest.raises(
        ValueError, match=rf"{re.escape(data_file.name)}: episode 0 frame 0: task_index {task_index}"
    ):
        next(iter(ds))


def test_task_index_given_twice_in_tasks_parquet_is_rejected(copy_of: Path) -> None:
    tasks = copy_of / "meta" / "tasks.parquet"
    table = pq.read_table(tasks)
    doubled = pa.concat_tables([table, table])  # every task_index twice, under the same task
    pq.write_table(doubled, tasks)
    with pytest.raises(ValueError, match=r"tasks\.parquet: task_index 0 is given twice"):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_episode_without_rows_in_the_data_file_names_it(copy_of: Path) -> None:
    data_file = next((copy_of / "data").glob("*/*.parquet"))
    _rewrite_parquet(data_file, lambda t: t.filter(pc.not_equal(t.column("episode_index"), 1)))
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False, episodes=[1])
    with pytest.raises(
        ValueError, match=rf"{re.escape(data_file.name)}: episode 1 should have \d+ rows.*found 0"
    ):
        next(iter(ds))


def test_episode_missing_from_the_episodes_metadata_is_rejected(copy_of: Path) -> None:
    """Its rows in the data file would never be emitted."""
    path = next((copy_of / "meta" / "episodes").glob("*/*.parquet"))
    _rewrite_parquet(path, lambda t: t.filter(pc.not_equal(t.column("episode_index"), 1)))
    with pytest.raises(
        ValueError, match=r"episode 2 starts at dataset_from_index=\d+: rows \d+\.\.\d+ of the data"
    ):
        StreamingLeRobotDataset("synth", root=copy_of)


def test_a_fifo_in_place_of_a_video_is_an_error_not_a_hang(copy_of: Path) -> None:
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    video = copy_of / ds.meta.get_video_file_path(0, ds.meta.video_keys[0])
    video.unlink()
    os.mkfifo(video)
    with pytest.raises(ValueError, match=rf"{re.escape(video.name)}: is not a regular file"):
        next(iter(ds))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_delta_timestamps_must_be_finite(make_dataset, bad: float) -> None:
    with pytest.raises(ValueError, match=r"delta_timestamps\['action'\] must hold finite numbers"):
        StreamingLeRobotDataset(
            "synth", root=make_dataset(height=48, width=64), delta_timestamps={"action": [0.0, bad]}
        )


@pytest.mark.parametrize("tolerance_s", [-1.0, float("nan")])
def test_tolerance_s_is_checked_at_construction(make_dataset, tolerance_s: float) -> None:
    with pytest.raises(ValueError, match="tolerance_s must be a finite number of seconds >= 0"):
        StreamingLeRobotDataset("synth", root=make_dataset(height=48, width=64), tolerance_s=tolerance_s)


@pytest.mark.parametrize("cut", [10, 300])
def test_truncated_video_is_reported_before_any_of_its_frames(copy_of: Path, cut: int) -> None:
    """The file's last sample cut short: the first decode from the file names it as truncated
    (not a decode error at that frame, after the epoch emitted others)."""
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    video = copy_of / ds.meta.get_video_file_path(0, ds.meta.video_keys[0])
    data = video.read_bytes()
    video.write_bytes(data[:-cut])
    with pytest.raises(ValueError, match=rf"{re.escape(video.name)}: the file holds \d+ frames.*truncated"):
        next(iter(ds))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"episodes": "12"}, "episodes must be a list"),
        ({"episodes": [1.7]}, r"episodes\[\.\.\.\] must be an integer, got 1\.7"),
        ({"batch_size": 2.5}, "batch_size must be an integer"),
        ({"episode_pool_size": True}, "episode_pool_size must be an integer"),
        ({"world_size": 2.5, "rank": 0}, "world_size must be an integer"),
        ({"rank": 0.5, "world_size": 2}, "rank must be an integer"),
        ({"num_workers": 1.5}, "num_workers must be an integer"),
        ({"seed": -1}, r"seed must be in \[0, 18446744073709551615\]"),
        ({"seed": 2**70}, r"seed must be in \[0, "),
    ],
)
def test_whole_number_arguments_are_checked_at_construction(make_dataset, kwargs: dict, message: str) -> None:
    """Each was silently truncated (episodes "12" read as [1, 2]) or failed late with a binding error."""
    with pytest.raises(ValueError, match=message):
        StreamingLeRobotDataset("synth", root=make_dataset(height=48, width=64), **kwargs)


def test_epoch_out_of_range_is_a_value_error(make_dataset) -> None:
    ds = StreamingLeRobotDataset("synth", root=make_dataset(height=48, width=64))
    with pytest.raises(ValueError, match=r"epoch must be in \[0, "):
        ds.set_epoch(2**70)
