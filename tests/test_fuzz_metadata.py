"""Property-based fuzz of a dataset's metadata and rows (issue 14): never a wrong sample.

Each example applies one to three random edits to a copy of a small dataset written by the synth
writer (lerobot 0.6.1's layout): ``info.json`` (fps, feature shapes/dtypes/names, path templates,
codebase_version, total counts), the episodes parquet (lengths, dataset_from/to_index, video from/to
timestamps, chunk/file indices, a dropped episode) and the data rows (timestamp, frame_index,
episode_index, index, task_index, dropped and duplicated rows). The contract: constructing and
iterating the dataset (0 workers, in order) either raises an ordinary exception, or yields exactly
the unaltered dataset's samples. Never a hang (pytest-timeout), never a crash (a segfault fails the
run), never a sample that differs.

The run is derandomized (the same examples every time, so CI is reproducible) and bounded by
``LRS_FUZZ_EXAMPLES`` (default 60, about a minute on two cores); a larger run for a report:
``LRS_FUZZ_EXAMPLES=1000 pytest tests/test_fuzz_metadata.py -s`` prints what the edits found.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lerobot_stream import StreamingLeRobotDataset
from streaming_helpers import assert_same_sample

EXAMPLES = int(os.environ.get("LRS_FUZZ_EXAMPLES", "60"))
FPS = 30
CAM = "observation.images.cam0"
OUTCOMES: Counter[str] = Counter()

# (file, field, kind of change): each draws its own values
INFO_EDITS = [
    "fps",
    "shape",
    "dtype",
    "names",
    "data_path",
    "video_path",
    "codebase_version",
    "total_frames",
    "total_episodes",
]
EPISODE_COLUMNS = [
    "length",
    "dataset_from_index",
    "dataset_to_index",
    f"videos/{CAM}/from_timestamp",
    f"videos/{CAM}/to_timestamp",
    f"videos/{CAM}/chunk_index",
    f"videos/{CAM}/file_index",
    "data/chunk_index",
    "data/file_index",
    "drop_episode",
]
ROW_EDITS = ["timestamp", "frame_index", "episode_index", "index", "task_index", "drop_row", "duplicate_row"]


@pytest.fixture(scope="module")
def intact(make_dataset) -> tuple[Path, dict[int, dict]]:
    """(root, samples by index) of a 5-episode, 2-camera dataset with several video files."""
    root = make_dataset(num_episodes=5, height=48, width=64, min_length=6, max_length=12)
    samples = {int(s["index"]): s for s in StreamingLeRobotDataset("synth", root=root, shuffle=False)}
    return root, samples


edits = st.lists(
    st.one_of(
        st.tuples(st.just("info"), st.sampled_from(INFO_EDITS), st.integers(0, 2**16)),
        st.tuples(st.just("episodes"), st.sampled_from(EPISODE_COLUMNS), st.integers(0, 2**16)),
        st.tuples(st.just("rows"), st.sampled_from(ROW_EDITS), st.integers(0, 2**16)),
    ),
    min_size=1,
    max_size=3,
)


def shifted(rng: np.random.Generator, value: float, period: float) -> float:
    """A whole number of periods away (the dangerous kind), sometimes a fraction of one."""
    step = int(rng.choice([-3, -2, -1, 1, 2, 15]))
    return value + step * period if rng.random() < 0.8 else value + rng.uniform(-0.5, 0.5) * period


def edit_info(root: Path, field: str, rng: np.random.Generator) -> None:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    feature = info["features"][str(rng.choice(list(info["features"])))]
    if field == "fps":
        info["fps"] = [15, 60, 29.97, 0, -30, "30", None][int(rng.integers(7))]
    elif field == "shape":
        shapes: list[Any] = [[1], [480, 640, 3], [7], [], [0, 3], [-1], "abc"]
        feature["shape"] = shapes[int(rng.integers(len(shapes)))]
    elif field == "dtype":
        feature["dtype"] = str(rng.choice(["video", "image", "float32", "int64", "string", "bool"]))
    elif field == "names":
        feature["names"] = [["width", "height", "channels"], None, ["a"], 5][int(rng.integers(4))]
    elif field in ("data_path", "video_path"):
        info[field] = [
            "data/file-{file_index:03d}.parquet",
            "videos/{video_key}/chunk-{chunk_index:03d}/file-000.mp4",
            "videos/{video_key}/chunk-{file_index:03d}/file-{chunk_index:03d}.mp4",
            "{nope}",
            "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            5,
        ][int(rng.integers(6))]
    elif field == "codebase_version":
        info[field] = str(rng.choice(["v2.1", "v3.1", "3.0", ""]))
    else:
        info[field] = int(rng.integers(0, 1000))
    path.write_text(json.dumps(info))


def edit_episodes(root: Path, column: str, rng: np.random.Generator) -> None:
    path = next((root / "meta" / "episodes").glob("*/*.parquet"))
    table = pq.read_table(path)
    if column == "drop_episode":  # its rows in the data file would belong to no episode
        pq.write_table(
            table.take(pa.array(np.delete(np.arange(table.num_rows), rng.integers(table.num_rows)))), path
        )
        return
    values = table.column(column).to_numpy().copy()
    row = int(rng.integers(len(values)))
    if values.dtype.kind == "f":
        values[row] = shifted(rng, float(values[row]), 1 / FPS) if rng.random() < 0.9 else np.nan
    else:
        values[row] = values[row] + int(rng.choice([-2, -1, 1, 2, 5]))
    field = table.schema.field(column)
    table = table.set_column(table.column_names.index(column), field, pa.array(values, field.type))
    pq.write_table(table, path)


def edit_rows(root: Path, kind: str, rng: np.random.Generator) -> None:
    path = next((root / "data").glob("*/*.parquet"))
    table = pq.read_table(path)
    row = int(rng.integers(table.num_rows))
    if kind == "drop_row":
        keep = np.delete(np.arange(table.num_rows), row)
        table = table.take(pa.array(keep))
    elif kind == "duplicate_row":
        other = int(rng.integers(table.num_rows))
        rows = np.arange(table.num_rows)
        rows[other] = row  # one row replaced by a copy of another
        table = table.take(pa.array(rows))
    else:
        values = table.column(kind).to_numpy().copy()
        if kind == "timestamp":
            values[row] = shifted(rng, float(values[row]), 1 / FPS)
            if rng.random() < 0.5:  # the whole episode's column, as in issue 14 item 1
                episode = (
                    table.column("episode_index").to_numpy() == table.column("episode_index")[row].as_py()
                )
                values[episode] = values[episode] + values[row] - table.column(kind)[row].as_py()
        else:
            values[row] = values[row] + int(rng.choice([-1, 1, 3]))
        field = table.schema.field(kind)
        table = table.set_column(table.column_names.index(kind), field, pa.array(values, field.type))
    pq.write_table(table, path, row_group_size=int(rng.choice([7, 64, 1024])))


@pytest.mark.timeout(max(600, EXAMPLES * 10))
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=edits)
def test_altered_datasets_raise_or_give_the_intact_samples(
    intact, changes: list[tuple[str, str, int]]
) -> None:
    root, reference = intact
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ds"
        shutil.copytree(root, copy)
        for where, field, seed in changes:
            rng = np.random.default_rng(seed)
            {"info": edit_info, "episodes": edit_episodes, "rows": edit_rows}[where](copy, field, rng)
        try:
            samples = list(StreamingLeRobotDataset("synth", root=copy, shuffle=False))
        except Exception as err:
            assert str(err), f"{type(err).__name__} without a message"
            OUTCOMES[f"raised {type(err).__name__}"] += 1
            return
    assert len(samples) == len(reference), f"{len(samples)} samples instead of {len(reference)}: {changes}"
    for sample in samples:
        index = int(sample["index"])
        assert index in reference, f"index {index} is not the intact dataset's: {changes}"
        assert_same_sample(reference[index], sample, f"{changes}: index {index}")
    OUTCOMES["same samples"] += 1


def teardown_module(module: Any) -> None:
    print(f"\nfuzz outcomes over {sum(OUTCOMES.values())} examples: {dict(OUTCOMES)}")
