"""Remote streaming by episode byte ranges, over HTTP (nginx) and S3 (moto), against the local dataset.

Layout: ``RANGES_DATASET`` (conftest): 2 cameras x 10+ video files of 20+ episodes, later episodes
starting mid-GOP. Contracts: samples equal the local dataset's bitwise with 0 and 2 workers, after a
resume, in memory mode, through faults, over S3, with a frame stash; per epoch the server sends at
most 1.15x the video bytes on disk and 1.5x the data files (its own access log); the cache is empty
at the end and never holds a corrupt entry; files that cannot be read by ranges fall back to whole
files, loudly; ``hf://`` goes through the Hub's redirects with the token sent to the Hub only.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.remote.cache_state import INTERNAL_FILES
from lerobot_stream.remote.http_client import forget_redirects
from lerobot_stream.remote.retry import RetryPolicy
from lerobot_stream.remote.video_index import FileIndex
from servers import FaultProxy, MotoS3, NginxServer, Redirector, nginx_binary
from streaming_helpers import assert_batches_equal, run_loader

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

FAST = RetryPolicy(retries=8, backoff_s=0.01, max_backoff_s=0.05, timeout_s=2.0)
COMMON: dict[str, Any] = {"seed": 7, "episode_pool_size": 4, "delta_timestamps": {"action": [0.0, 1 / 30]}}


@pytest.fixture(scope="module")
def served(ranges_dataset, tmp_path_factory):
    """(local root, nginx serving it at /ds)."""
    www = tmp_path_factory.mktemp("www")
    shutil.copytree(ranges_dataset, www / "ds")
    with NginxServer(www) as server:
        yield ranges_dataset, server


def url_hash(url: str) -> str:
    """The URL part of a cache entry's name (lerobot_stream.remote.cache_state)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name not in INTERNAL_FILES)


def disk_bytes(root: Path, sub: str) -> int:
    return sum(p.stat().st_size for p in (root / sub).rglob("*") if p.is_file())


def sent_bytes(server: NginxServer, sub: str) -> int:
    return sum(n for path, n in server.bytes_sent().items() if path.startswith(f"/ds/{sub}/"))


def local_batches(root: Path, workers: int, state: dict | None = None, **kwargs: Any) -> list[dict]:
    ds = StreamingLeRobotDataset("synth/ranges", root=root, num_workers=workers, **COMMON, **kwargs)
    if state:
        ds.load_state_dict(state)
    return run_loader(ds, batch_size=8, num_workers=workers)


@pytest.mark.parametrize("workers", [0, 2])
def test_http_ranges_equal_local_and_bound_the_bytes_sent(served, tmp_path, workers):
    root, server = served
    expected = local_batches(root, workers)
    server.clear_log()
    ds = StreamingLeRobotDataset(
        "synth/ranges", root=f"{server.url}/ds", num_workers=workers, video_cache_dir=tmp_path, **COMMON
    )
    assert_batches_equal(run_loader(ds, batch_size=8, num_workers=workers), expected)
    video = sent_bytes(server, "videos") / disk_bytes(root, "videos")
    data = sent_bytes(server, "data") / disk_bytes(root, "data")
    assert video <= 1.15, f"video bytes sent / on disk = {video:.3f}"
    assert data <= 1.5, f"data bytes sent / on disk = {data:.3f}"
    assert cache_entries(tmp_path) == []
    if workers == 0:
        stats = ds.stats()["prefetch"]
        assert stats["mode"] == "ranges" and stats["whole_file_fallbacks"] == 0
        assert stats["segment_bytes"] > 0 and stats["file_bytes"] == 0


def test_http_ranges_resume_and_memory_mode_equal_local(served):
    root, server = served
    state = {"batches_consumed": 37, "batch_size": 8}
    expected = local_batches(root, 2, state)
    ds = StreamingLeRobotDataset(
        "synth/ranges", root=f"{server.url}/ds", num_workers=2, video_cache="memory", **COMMON
    )
    ds.load_state_dict(state)
    assert_batches_equal(run_loader(ds, batch_size=8, num_workers=2), expected)


def test_frame_stash_over_ranges_and_mid_gop_episodes_equals_local(served):
    """Note [Frame stash] over episode segments (a decoder per fetched range) and over local files
    whose episodes start mid-GOP: the same batches as the local dataset without a stash."""
    root, server = served
    expected = local_batches(root, 2)
    assert_batches_equal(local_batches(root, 2, frame_stash_bytes=8 << 20), expected)
    ds = StreamingLeRobotDataset(
        "synth/ranges",
        root=f"{server.url}/ds",
        num_workers=2,
        video_cache="memory",
        frame_stash_bytes=8 << 20,
        **COMMON,
    )
    assert_batches_equal(run_loader(ds, batch_size=8, num_workers=2), expected)


class SegmentWatcher(threading.Thread):
    """Polls a cache directory: every complete entry must equal the server's bytes it claims to hold."""

    def __init__(self, cache: Path, files: dict[str, bytes]) -> None:
        super().__init__(daemon=True)
        self.cache, self.files = cache, files  # url hash -> file bytes
        self.checked = 0
        self.corrupt: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for path in self.cache.iterdir():
                if path.name.startswith("."):
                    continue
                try:
                    self.check(path.name, path.read_bytes())
                except FileNotFoundError:
                    continue
            time.sleep(0.005)

    def check(self, name: str, data: bytes) -> None:
        digest, _, rest = name.partition(".")
        source = self.files[digest]
        if rest.endswith(".seg"):
            start, end = (int(x) for x in rest[: -len(".seg")].split("-"))
            ok = data == source[start:end]
        elif rest != "hdr":
            ok = data == source
        else:
            index = FileIndex.from_bytes(data, name)
            at, ok = 0, True
            for offset, length in index.pieces:
                ok &= index.blob[at : at + length] == source[offset : offset + length]
                at += length
        self.checked += 1
        if not ok:
            self.corrupt.append(name)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def test_faults_leave_no_corrupt_segment(served, tmp_path):
    root, server = served
    episodes = list(range(0, 260, 6))
    expected = local_batches(root, 0, episodes=episodes)
    faults = ["drop", "truncate", "503", "stall", "500", "drop", "429", "truncate", "stall", "drop"]
    with FaultProxy(server.port, [], stall_s=3.0, partial_bytes=700) as proxy:
        base = f"{proxy.url}/ds"
        files = {
            url_hash(f"{base}/{p.relative_to(root).as_posix()}"): p.read_bytes()
            for p in root.glob("videos/*/*/*.mp4")
        }
        cache = tmp_path / "cache"
        cache.mkdir()
        ds = StreamingLeRobotDataset(
            "synth/ranges", root=base, episodes=episodes, num_workers=0, video_cache_dir=cache,
            remote_retry=FAST, **COMMON,
        )  # fmt: skip
        watcher = SegmentWatcher(cache, files)
        watcher.start()
        proxy.set_faults(faults)  # after start-up: the faults hit headers, segments and parquet
        try:
            actual = run_loader(ds, batch_size=8, num_workers=0)
        finally:
            watcher.stop()
        assert proxy.faults_served == faults
    assert_batches_equal(actual, expected)
    assert watcher.corrupt == [] and watcher.checked > 0
    assert cache_entries(cache) == []


def test_servers_ignoring_range_fall_back_to_whole_files_loudly(served, tmp_path):
    root, server = served
    episodes = list(range(0, 260, 12))
    expected = local_batches(root, 0, episodes=episodes)
    with pytest.warns(RuntimeWarning) as warned:
        ds = StreamingLeRobotDataset(
            "synth/ranges", root=f"{server.url}/norange/ds", episodes=episodes, num_workers=0,
            video_cache_dir=tmp_path, **COMMON,
        )  # fmt: skip
        actual = run_loader(ds, batch_size=8, num_workers=0)
    messages = [str(w.message) for w in warned]
    assert any(re.search(r"whole instead of by episode byte ranges.*ignores HTTP Range", m) for m in messages)
    assert any(m.startswith("Reading parquet files whole") for m in messages)
    assert_batches_equal(actual, expected)
    stats = ds.stats()["prefetch"]
    assert stats["whole_file_fallbacks"] > 0 and stats["file_bytes"] > 0 and stats["segment_bytes"] == 0
    assert cache_entries(tmp_path) == []


def test_whole_files_mode_is_explicit_and_equal(served, tmp_path):
    root, server = served
    episodes = list(range(3, 260, 20))
    expected = local_batches(root, 0, episodes=episodes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # chosen, not a fallback: no warning
        ds = StreamingLeRobotDataset(
            "synth/ranges", root=f"{server.url}/ds", episodes=episodes, num_workers=0,
            video_cache_dir=tmp_path, video_fetch="whole_files", **COMMON,
        )  # fmt: skip
        assert_batches_equal(run_loader(ds, batch_size=8, num_workers=0), expected)
    stats = ds.stats()["prefetch"]
    assert stats["mode"] == "whole_files" and stats["segment_bytes"] == 0 and stats["file_bytes"] > 0


def test_hub_urls_stream_through_redirects_and_keep_the_token_home(served, tmp_path, monkeypatch):
    """hf:// through a stand-in Hub (302 to a "CDN" proxy): equal samples, token only to the Hub."""
    root, server = served
    episodes = list(range(2, 260, 9))
    expected = local_batches(root, 0, episodes=episodes)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    forget_redirects()
    with (
        FaultProxy(server.port) as cdn,
        Redirector(f"{cdn.url}/ds", strip_prefix="/datasets/org/name/resolve/main") as hub,
    ):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        ds = StreamingLeRobotDataset(
            "hf://datasets/org/name", episodes=episodes, num_workers=0, video_cache_dir=tmp_path,
            remote_retry=FAST, **COMMON,
        )  # fmt: skip
        cdn.set_faults(["403"])  # the first signed URL used in the run has expired
        assert_batches_equal(run_loader(ds, batch_size=8, num_workers=0), expected)
        assert cdn.faults_served == ["403"]
        assert hub.request_heads and all(b"bearer hf_secret" in h.lower() for h in hub.request_heads)
        assert not any(b"authorization" in h.lower() for h in cdn.request_heads)
    forget_redirects()
    assert cache_entries(tmp_path) == []


@pytest.fixture(scope="module")
def s3_dataset(ranges_dataset):
    """(local root, s3:// URL of the same dataset in moto's S3 on 127.0.0.1)."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed")
    with MotoS3() as moto, pytest.MonkeyPatch.context() as mp:
        for name, value in moto.env().items():
            mp.setenv(name, value)  # DataLoader workers inherit the environment
        s3fs.S3FileSystem.clear_instance_cache()
        import boto3

        boto3.client("s3").create_bucket(Bucket="lrs-test")
        fs = s3fs.S3FileSystem()
        fs.put(str(ranges_dataset), "lrs-test/ds", recursive=True)
        yield ranges_dataset, "s3://lrs-test/ds"
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("workers", [0, 2])
def test_s3_ranges_equal_local(s3_dataset, tmp_path, workers):
    root, url = s3_dataset
    episodes = None if workers else list(range(1, 260, 5))
    state = {"batches_consumed": 11, "batch_size": 8} if workers else None
    expected = local_batches(root, workers, state, episodes=episodes)
    ds = StreamingLeRobotDataset(
        "synth/ranges", root=url, episodes=episodes, num_workers=workers, video_cache_dir=tmp_path, **COMMON
    )
    if state:
        ds.load_state_dict(state)
    assert_batches_equal(run_loader(ds, batch_size=8, num_workers=workers), expected)
    assert cache_entries(tmp_path) == []


def test_a_first_episode_sharing_its_dts_with_the_next_decodes_by_ranges(tmp_path):
    """Note [Shared first dts] over episode ranges: a 1-frame H.264 episode first in its file, then
    B-frame episodes whose first keyframe has the same dts; each episode's segment decodes as locally."""
    from lerobot_stream.synth import write_dataset

    www = tmp_path / "www"
    root = write_dataset(www / "ds", episode_lengths=[1, 3, 4], num_episodes=3, num_cameras=1, codec="h264")
    local = StreamingLeRobotDataset("synth/dts", root=root, seed=3)
    expected = run_loader(local, batch_size=2, num_workers=0)
    with NginxServer(www) as server:
        ds = StreamingLeRobotDataset("synth/dts", root=f"{server.url}/ds", seed=3, video_cache="memory")
        assert_batches_equal(run_loader(ds, batch_size=2, num_workers=0), expected)
        assert ds.stats()["prefetch"]["whole_file_fallbacks"] == 0
