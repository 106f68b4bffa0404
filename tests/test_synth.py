"""The synthetic v3 writer produces lerobot 0.6.x's layout, consistent metadata and frames that decode
(with PyAV, independently of our core) to the identity the metadata promises."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_stream.synth import read_full_identity, read_identity, write_dataset


def load_info(root: Path) -> dict[str, Any]:
    return json.loads((root / "meta/info.json").read_text())


def load_episodes(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    assert files, f"no episodes metadata under {root}"
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["episode_index"])


def video_keys(info: dict[str, Any]) -> list[str]:
    return [k for k, f in info["features"].items() if f["dtype"] == "video"]


def video_path(root: Path, info: dict[str, Any], key: str, ep: dict[str, Any]) -> Path:
    return root / info["video_path"].format(
        video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"], file_index=ep[f"videos/{key}/file_index"]
    )


def data_path(root: Path, info: dict[str, Any], ep: dict[str, Any]) -> Path:
    return root / info["data_path"].format(
        chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
    )


def episodes_by_video_file(root: Path) -> dict[tuple[str, Path], list[dict[str, Any]]]:
    info, groups = load_info(root), defaultdict(list)
    for ep in load_episodes(root):
        for key in video_keys(info):
            groups[key, video_path(root, info, key, ep)].append(ep)
    return groups


def assert_frames_carry_their_identity(root: Path) -> None:
    """Decode every mp4 with PyAV; each frame must show the episode/frame the metadata places at its pts."""
    info = load_info(root)
    fps = info["fps"]
    keys = video_keys(info)
    for (key, path), eps in episodes_by_video_file(root).items():
        seen: list[tuple[int, int]] = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                t = float(frame.pts * frame.time_base)
                ep = next(
                    e
                    for e in eps
                    if e[f"videos/{key}/from_timestamp"] - 1e-6 <= t < e[f"videos/{key}/to_timestamp"] - 1e-6
                )
                expected_frame = round((t - ep[f"videos/{key}/from_timestamp"]) * fps)
                got = read_full_identity(frame.to_ndarray(format="rgb24").transpose(2, 0, 1))
                assert got == (ep["episode_index"], expected_frame, keys.index(key)), f"{path} at t={t}"
                seen.append((got.episode_index, got.frame_index))
        expected = [(e["episode_index"], i) for e in eps for i in range(e["length"])]
        assert sorted(seen) == expected, f"{path}: frames missing or repeated"


def test_info_json_describes_the_dataset(tiny_dataset: Path) -> None:
    info = load_info(tiny_dataset)
    episodes = load_episodes(tiny_dataset)
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == len(episodes) == 8
    assert info["total_frames"] == sum(e["length"] for e in episodes)
    assert info["splits"] == {"train": "0:8"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["chunks_size"] == 1000
    features = info["features"]
    assert list(features)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert features["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    assert video_keys(info) == ["observation.images.cam0", "observation.images.cam1"]
    for key in video_keys(info):
        feature = features[key]
        assert feature["shape"] == [64, 96, 3] and feature["names"] == ["height", "width", "channels"]
        vinfo = feature["info"]
        assert (vinfo["video.codec"], vinfo["video.pix_fmt"], vinfo["video.g"], vinfo["video.crf"]) == (
            "av1",
            "yuv420p",
            2,
            30,
        )
        assert (vinfo["video.height"], vinfo["video.width"], vinfo["video.fps"]) == (64, 96, 30)
        assert vinfo["has_audio"] is False and vinfo["is_depth_map"] is False


def assert_index_ranges_match_data(root: Path) -> None:
    """Episodes' [from, to) ranges tile [0, total_frames) and each matches its rows in its data file."""
    info = load_info(root)
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pydict()
    task_index_of = dict(zip(tasks["task"], tasks["task_index"], strict=True))
    next_index = 0
    for ep in load_episodes(root):
        assert ep["dataset_from_index"] == next_index
        assert ep["dataset_to_index"] - ep["dataset_from_index"] == ep["length"]
        next_index = ep["dataset_to_index"]
        table = pq.read_table(data_path(root, info, ep)).to_pydict()
        rows = [i for i, e in enumerate(table["episode_index"]) if e == ep["episode_index"]]
        n = ep["length"]
        assert [table["index"][i] for i in rows] == list(
            range(ep["dataset_from_index"], ep["dataset_to_index"])
        )
        assert [table["frame_index"][i] for i in rows] == list(range(n))
        assert [table["timestamp"][i] for i in rows] == list(np.arange(n, dtype=np.float32) / np.float32(30))
        assert {table["task_index"][i] for i in rows} == {task_index_of[t] for t in ep["tasks"]}
    assert next_index == info["total_frames"]


def test_episode_index_ranges_are_contiguous_and_match_the_data_files(tiny_dataset: Path) -> None:
    assert_index_ranges_match_data(tiny_dataset)


def test_data_parquet_schema_is_lerobots(tiny_dataset: Path) -> None:
    info = load_info(tiny_dataset)
    schema = pq.read_schema(data_path(tiny_dataset, info, load_episodes(tiny_dataset)[0]))
    assert schema.names == [
        "action",
        "observation.state",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 6)
    assert schema.field("action").type == pa.list_(pa.float32(), 6)
    assert schema.field("timestamp").type == pa.float32()
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(name).type == pa.int64()
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.state"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 6,
        "_type": "List",
    }
    assert hf["index"] == {"dtype": "int64", "_type": "Value"}


def test_tasks_parquet_is_indexed_by_task(tiny_dataset: Path) -> None:
    table = pq.read_table(tiny_dataset / "meta/tasks.parquet")
    assert table.column("task_index").to_pylist() == [0]
    assert json.loads(table.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(tiny_dataset / "meta/tasks.parquet")
    assert frame.index.name == "task" and int(frame.loc["synthetic task 0"].task_index) == 0


def test_video_timestamps_match_the_mp4_files(tiny_dataset: Path) -> None:
    fps = load_info(tiny_dataset)["fps"]
    for (key, path), eps in episodes_by_video_file(tiny_dataset).items():
        eps = sorted(eps, key=lambda e: e[f"videos/{key}/from_timestamp"])
        assert eps[0][f"videos/{key}/from_timestamp"] == 0.0
        for prev, cur in itertools.pairwise(eps):
            assert cur[f"videos/{key}/from_timestamp"] == prev[f"videos/{key}/to_timestamp"]
        for ep in eps:
            span = ep[f"videos/{key}/to_timestamp"] - ep[f"videos/{key}/from_timestamp"]
            assert span == pytest.approx(ep["length"] / fps, abs=1e-9)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # lerobot takes the next episode's from_timestamp from this very duration
            assert float(stream.duration * stream.time_base) == pytest.approx(
                eps[-1][f"videos/{key}/to_timestamp"]
            )
            pts = [f.pts for f in container.decode(stream)]
            time_base = stream.time_base
        assert len(pts) == sum(e["length"] for e in eps)
        assert [Fraction(p) * time_base for p in pts] == [Fraction(i, fps) for i in range(len(pts))]


def test_each_episode_starts_on_a_keyframe(tiny_dataset: Path) -> None:
    fps = load_info(tiny_dataset)["fps"]
    for (key, path), eps in episodes_by_video_file(tiny_dataset).items():
        with av.open(str(path)) as container:
            keyframes = {
                round(float(p.pts * p.time_base) * fps) for p in container.demux(video=0) if p.is_keyframe
            }
        starts = {round(e[f"videos/{key}/from_timestamp"] * fps) for e in eps}
        assert starts <= keyframes, f"{path}: episodes starting off a keyframe"


def test_several_files_per_camera_and_several_episodes_per_file(tiny_dataset: Path) -> None:
    groups = episodes_by_video_file(tiny_dataset)
    info = load_info(tiny_dataset)
    for key in video_keys(info):
        files = [path for (k, path) in groups if k == key]
        assert len(files) >= 3, f"{key}: only {len(files)} files"
        assert max(len(groups[key, p]) for p in files) >= 2
        on_disk = sorted((tiny_dataset / "videos" / key).glob("chunk-*/file-*.mp4"))
        assert sorted(files) == on_disk


def test_every_frame_decodes_to_its_identity(tiny_dataset: Path) -> None:
    assert_frames_carry_their_identity(tiny_dataset)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_other_codecs_write_readable_frames(make_dataset: Any, codec: str) -> None:
    root = make_dataset(codec=codec, num_episodes=6, max_length=20, video_files_size_in_mb=0.006)
    info = load_info(root)
    assert {info["features"][k]["info"]["video.codec"] for k in video_keys(info)} == {codec}
    assert len(episodes_by_video_file(root)) >= 4  # at least two files per camera
    assert_frames_carry_their_identity(root)


def test_data_and_video_files_roll_over_into_new_chunks(make_dataset: Any) -> None:
    root = make_dataset(
        data_files_size_in_mb=0.002, video_files_size_in_mb=0.002, chunks_size=2, num_episodes=5
    )
    info = load_info(root)
    episodes = load_episodes(root)
    data_files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    assert len(data_files) >= 3 and (root / "data/chunk-001/file-000.parquet") in data_files
    assert sorted({data_path(root, info, e) for e in episodes}) == data_files
    for key in video_keys(info):
        assert (root / "videos" / key / "chunk-001/file-000.mp4").exists()
    total = sum(pq.read_metadata(f).num_rows for f in data_files)
    assert total == info["total_frames"]
    assert_index_ranges_match_data(root)
    assert_frames_carry_their_identity(root)


def test_stats_cover_every_feature_and_agree_with_the_data(tiny_dataset: Path) -> None:
    info = load_info(tiny_dataset)
    stats = json.loads((tiny_dataset / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    stat_names = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert all(set(s) == stat_names for s in stats.values())
    data = pa.concat_tables(pq.read_table(f) for f in sorted((tiny_dataset / "data").glob("*/*.parquet")))
    state = np.array(data.column("observation.state").to_pylist(), dtype=np.float64)
    np.testing.assert_allclose(stats["observation.state"]["min"], state.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["max"], state.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(axis=0), rtol=1e-4)
    assert stats["index"]["count"] == [info["total_frames"]]
    assert stats["index"]["min"] == [0] and stats["index"]["max"] == [info["total_frames"] - 1]
    image = np.array(stats["observation.images.cam0"]["mean"])
    assert image.shape == (3, 1, 1) and ((image > 0) & (image < 1)).all()
    episodes = load_episodes(tiny_dataset)
    assert sum(e["stats/observation.state/count"][0] for e in episodes) == info["total_frames"]
    assert np.array(episodes[0]["stats/observation.images.cam1/max"]).shape == (3, 1, 1)


def test_same_seed_same_dataset_other_seed_other_content(
    make_dataset: Any, tiny_dataset_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    first = make_dataset()
    again = write_dataset(tmp_path / "again", **tiny_dataset_kwargs)
    for rel in ("data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet"):
        assert pq.read_table(first / rel).equals(pq.read_table(again / rel)), rel
    assert load_info(first) == load_info(again)
    other = make_dataset(seed=1)
    assert [e["length"] for e in load_episodes(other)] != [e["length"] for e in load_episodes(first)]


def test_cli_writes_a_dataset_and_rejects_bad_arguments(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    base = [sys.executable, "-m", "lerobot_stream.synth"]
    small = [
        "--episodes",
        "2",
        "--cameras",
        "1",
        "--height",
        "64",
        "--width",
        "96",
        "--min-length",
        "3",
        "--max-length",
        "5",
    ]
    done = subprocess.run(
        [*base, str(out), *small, "--codec", "h264", "--fps", "15"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    info = load_info(out)
    assert info["fps"] == 15 and info["total_episodes"] == 2
    assert info["features"]["observation.images.cam0"]["info"]["video.codec"] == "h264"
    assert_frames_carry_their_identity(out)

    def fails(args: list[str], message: str) -> None:
        bad = subprocess.run([*base, *args], capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr

    fails([str(tmp_path / "a"), *small, "--codec", "vp9"], "invalid choice: 'vp9'")
    fails([str(tmp_path / "b"), *small, "--height", "63"], "even")
    fails([str(tmp_path / "c"), *small, "--episodes", "0"], "num_episodes")
    fails([str(out), *small], "already exists")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 65}, "even"),
        ({"height": 16, "width": 16}, "too small"),
        ({"num_cameras": 0}, "num_cameras"),
        ({"codec": "vp9"}, "codec must be one of"),
        ({"episode_lengths": [3, 4]}, "episode_lengths has 2 entries"),
        ({"episode_lengths": [3, 0, 4]}, "episode lengths must be"),
        ({"min_length": 5, "max_length": 4}, "min_length <= max_length"),
        ({"video_files_size_in_mb": 0}, "video_files_size_in_mb must be positive"),
        ({"fps": 0}, "fps must be a positive integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args = {"num_episodes": 3, "num_cameras": 1, "height": 64, "width": 96, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_dataset(tmp_path / "bad", **args)
    assert not (tmp_path / "bad" / "meta").exists()


def test_read_identity_rejects_images_without_one() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no valid synthetic identity"):
        read_identity(rng.integers(0, 256, size=(3, 64, 96), dtype=np.uint8))
    with pytest.raises(ValueError, match="expected a"):
        read_identity(np.zeros((64, 96, 3), dtype=np.uint8))
