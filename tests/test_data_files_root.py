"""``data_files_root``: metadata from ``root``, ``data/`` and ``videos/`` from another place (local or HTTP).

The reference design's bucket layout: ``meta/`` lives in one place (a local metadata copy, or the
Hub) while the parquet and video files live under another fsspec root. Contracts: the samples equal
those of the same dataset kept in one folder, sample for sample (with remote video prefetch and its
cache emptied at the end), nothing under ``data/`` or ``videos/`` is read from ``root``, and a
missing ``data_files_root`` or file raises an error naming it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lerobot_stream import StreamingLeRobotDataset
from servers import NginxServer, nginx_binary
from streaming_helpers import assert_batches_equal

COMMON = {"seed": 7, "episode_pool_size": 3, "delta_timestamps": {"observation.images.cam0": [-0.1, 0.0]}}


def split(root: Path, dest: Path) -> tuple[Path, Path]:
    """Copies ``root``'s ``meta/`` to ``dest/meta-only`` and its data and videos to ``dest/files``."""
    meta, files = dest / "meta-only", dest / "files"
    shutil.copytree(root / "meta", meta / "meta")
    for part in ("data", "videos"):
        shutil.copytree(root / part, files / part)
    return meta, files


@pytest.fixture(scope="module")
def split_dataset(make_dataset, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(whole dataset, metadata-only root, data+videos root)."""
    root = make_dataset()
    return (root, *split(root, tmp_path_factory.mktemp("split")))


def test_local_data_files_root_equals_the_whole_dataset(split_dataset) -> None:
    whole, meta, files = split_dataset
    expected = list(StreamingLeRobotDataset("synth/tiny", root=whole, **COMMON))
    ds = StreamingLeRobotDataset("synth/tiny", root=meta, data_files_root=files, **COMMON)
    assert ds.data_files_root == files and ds.root == meta
    actual = list(ds)
    assert len(actual) == ds.num_frames
    assert_batches_equal(actual, expected)


def test_without_data_files_root_the_metadata_copy_has_no_data(split_dataset) -> None:
    _, meta, _ = split_dataset
    with pytest.raises(FileNotFoundError, match=r"data/chunk-000/file-000\.parquet"):
        next(iter(StreamingLeRobotDataset("synth/tiny", root=meta, **COMMON)))


def test_missing_data_files_root_names_it(split_dataset, tmp_path: Path) -> None:
    _, meta, _ = split_dataset
    with pytest.raises(FileNotFoundError, match=r"data_files_root .*nowhere"):
        StreamingLeRobotDataset("synth/tiny", root=meta, data_files_root=tmp_path / "nowhere")


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@pytest.mark.parametrize("prefetch", [True, False])
def test_http_data_files_root_equals_the_whole_dataset(split_dataset, tmp_path: Path, prefetch: bool) -> None:
    whole, meta, files = split_dataset
    expected = list(StreamingLeRobotDataset("synth/tiny", root=whole, **COMMON))
    with NginxServer(files.parent) as server:
        ds = StreamingLeRobotDataset(
            "synth/tiny",
            root=meta,
            data_files_root=f"{server.url}/{files.name}",
            video_cache_dir=tmp_path / "cache",
            prefetch_videos=prefetch,
            **COMMON,
        )
        actual = list(ds)
        stats = ds.stats()
    assert_batches_equal(actual, expected)
    assert stats["prefetch"]["downloads"] > 0, "the videos did not come over HTTP"
    assert stats["tabular"]["episodes_read"] == ds.num_episodes
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_http_data_files_root_missing_file_names_the_url(split_dataset, tmp_path: Path) -> None:
    _, meta, files = split_dataset
    www = tmp_path / "www"
    shutil.copytree(files, www / "files")
    for mp4 in (www / "files" / "videos" / "observation.images.cam0").rglob("*.mp4"):
        mp4.unlink()
    with NginxServer(www) as server:
        ds = StreamingLeRobotDataset(
            "synth/tiny", root=meta, data_files_root=f"{server.url}/files", video_cache_dir=tmp_path / "c"
        )
        with pytest.raises(OSError, match=rf"{server.url}/files/videos/observation\.images\.cam0/.*404"):
            next(iter(ds))
