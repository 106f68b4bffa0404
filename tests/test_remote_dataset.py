"""A dataset served by nginx on 127.0.0.1 streams exactly like its local copy.

Contracts: the same samples in the same order (bitwise), with DataLoader workers sharing one
download cache, also after a resume; the video cache is empty once the iterators end; a missing
remote file raises an error naming it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.cache_state import INTERNAL_FILES
from lerobot_stream.remote import DatasetLocation, resolve_location
from servers import NginxServer, nginx_binary
from streaming_helpers import assert_batches_equal, run_loader

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def served_dataset(make_dataset, tmp_path_factory):
    """(local root, URL of the same dataset served by nginx)."""
    root = make_dataset()
    www = tmp_path_factory.mktemp("www")
    shutil.copytree(root, www / "tiny")
    with NginxServer(www) as server:
        yield root, f"{server.url}/tiny"


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name not in INTERNAL_FILES)


@pytest.mark.parametrize("prefetch", [True, False])
def test_http_stream_equals_local_sample_for_sample(served_dataset, tmp_path, prefetch):
    root, url = served_dataset
    common = {"seed": 3, "episode_pool_size": 3, "delta_timestamps": {"observation.state": [-0.1, 0.0]}}
    local = list(StreamingLeRobotDataset("synth/tiny", root=root, **common))
    remote_ds = StreamingLeRobotDataset(
        "synth/tiny", root=url, video_cache_dir=tmp_path, prefetch_videos=prefetch, **common
    )
    remote = list(remote_ds)
    assert len(remote) == len(local) == remote_ds.num_frames
    assert_batches_equal(remote, local)
    stats = remote_ds.stats()["prefetch"]
    assert stats["downloads"] > 0 and stats["bytes_downloaded"] > 0
    assert cache_files(tmp_path) == []


def test_http_stream_with_workers_and_resume_equals_local(served_dataset, tmp_path):
    root, url = served_dataset
    common = {"seed": 5, "episode_pool_size": 2, "num_workers": 2}
    state = {"batches_consumed": 3, "batch_size": 4}
    expected = StreamingLeRobotDataset("synth/tiny", root=root, **common)
    expected.load_state_dict(state)
    actual = StreamingLeRobotDataset(
        "synth/tiny", root=url, video_cache_dir=tmp_path, video_cache_max_bytes=1 << 20, **common
    )
    actual.load_state_dict(state)
    assert_batches_equal(
        run_loader(actual, batch_size=4, num_workers=2), run_loader(expected, batch_size=4, num_workers=2)
    )
    assert cache_files(tmp_path) == []  # the workers' iterators released everything


def test_missing_remote_metadata_names_the_url(served_dataset):
    _, url = served_dataset
    with pytest.raises(FileNotFoundError, match=f"{url}-nope/meta/info.json"):
        StreamingLeRobotDataset("synth/tiny", root=f"{url}-nope")


def test_locations_resolve_urls_revisions_and_local_paths(tmp_path):
    assert resolve_location("x", tmp_path, None) == DatasetLocation(tmp_path)
    hf = resolve_location("hf://datasets/org/name", None, "v1.0")
    assert hf.join("meta/info.json") == "hf://datasets/org/name@v1.0/meta/info.json"
    assert (
        hf.download_url("videos/a.mp4")
        == "https://huggingface.co/datasets/org/name/resolve/v1.0/videos/a.mp4"
    )
    assert resolve_location("x", "s3://bucket/ds/", None).join("a") == "s3://bucket/ds/a"
