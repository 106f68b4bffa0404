"""Metadata as lerobot exposes it, and episode rows read row-group-aware (only the row groups that
overlap the episode) with values equal to the data files'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.metadata import load_metadata
from lerobot_stream.tabular import TabularReader
from streaming_helpers import column_array, data_table, episodes_table

ROW_GROUP = 7


@pytest.fixture(scope="module")
def root(make_dataset) -> Path:
    return make_dataset(height=48, width=64, num_tasks=2)


def test_metadata_matches_info_json_and_episodes(root: Path) -> None:
    info = json.loads((root / "meta" / "info.json").read_text())
    meta = load_metadata("synth", root)
    episodes = episodes_table(root)
    assert meta.fps == info["fps"]
    assert set(meta.features) == set(info["features"])
    assert meta.video_keys == [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    assert meta.camera_keys == meta.video_keys
    assert meta.total_episodes == episodes.num_rows
    assert meta.total_frames == data_table(root).num_rows
    assert meta.task_names == [f"synthetic task {i}" for i in range(2)]
    ds = StreamingLeRobotDataset("synth", root=root, episodes=[1, 2])
    assert ds.fps == meta.fps and ds.num_episodes == 2
    assert ds.num_frames == sum(episodes.column("length").to_pylist()[1:3])


def test_reads_only_overlapping_row_groups_and_exact_values(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    for path in (copy / "data").glob("*/*.parquet"):  # small row groups that straddle episodes
        pq.write_table(pq.read_table(path), path, row_group_size=ROW_GROUP)
    meta = load_metadata("synth", copy)
    table = data_table(copy)
    reader = TabularReader(meta)
    for episode in meta.episode_index.tolist()[::-1]:
        before = reader.stats.rows_read
        rows = reader.read_episode(episode)
        in_episode = np.array(table.column("episode_index").to_pylist()) == episode
        for name in ("index", "frame_index", "timestamp", "action", "observation.state"):
            expected = column_array(table, name)[in_episode]
            np.testing.assert_array_equal(
                rows.columns[name].numpy(), expected.astype(rows.columns[name].numpy().dtype)
            )
        # at most the partial row groups at both ends come in addition to the episode's own rows
        assert reader.stats.rows_read - before <= rows.length + 2 * (ROW_GROUP - 1)
    assert reader.stats.rows_needed == table.num_rows
    assert reader.stats.as_dict()["read_amplification"] < 1.5
