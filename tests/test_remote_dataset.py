"""A dataset served by nginx on 127.0.0.1 streams exactly like its local copy.

Contracts: the same samples in the same order (bitwise), with DataLoader workers sharing one
download cache, also after a resume, and through the decode stage (Note [Stage leases]); the video
cache is empty once the iterators end; a missing remote file raises an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lerobot_stream import DecodeStage, StreamingLeRobotDataset
from lerobot_stream.remote.cache_state import INTERNAL_FILES
from lerobot_stream.remote.location import DatasetLocation, resolve_location
from servers import nginx_binary
from streaming_helpers import assert_batches_equal, run_loader

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def served_dataset(served_tiny):
    """(local root, URL of the same dataset served by nginx)."""
    root, _, url = served_tiny
    return root, url


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


@pytest.mark.parametrize("video_cache", ["disk", "memory"])
def test_decode_stage_over_http_equals_local_worker_batches(served_dataset, tmp_path, video_cache):
    """The decode stage decodes a remote dataset's requests from the episodes' bytes in the video
    cache (the workers' prefetch warms the node's disk cache; in memory the stage fetches them), and
    yields the local worker-decoded batches; the cache is empty afterwards."""
    root, url = served_dataset
    common = {"seed": 4, "episode_pool_size": 2, "num_workers": 2}
    window = {"delta_timestamps": {"observation.images.cam0": [-1 / 30, 0.0]}}
    expected = run_loader(
        StreamingLeRobotDataset("synth/tiny", root=root, **common, **window), batch_size=4, num_workers=2
    )
    remote = StreamingLeRobotDataset(
        "synth/tiny",
        root=url,
        video_decode_stage=True,
        video_cache=video_cache,
        video_cache_dir=tmp_path,
        video_cache_max_bytes=1 << 20,
        **common,
        **window,
    )
    stage = remote.dataloader(batch_size=4, stage_threads=2)
    assert isinstance(stage, DecodeStage)
    assert_batches_equal(list(stage), expected)
    stats = stage.stats()
    assert stats["frames_by_backend"]["cpu"] == stats["frames"] > 0
    assert stats["prefetch"]["mode"] == "ranges"
    if video_cache == "memory":  # the workers fetched nothing: the stage downloaded every segment
        assert stats["prefetch"]["downloads"] > 0
    assert cache_files(tmp_path) == []


@pytest.mark.timeout(120)  # without the drain this lease waits for room forever
def test_stage_lease_waiting_for_room_drains_the_callers_older_batch(served_dataset, tmp_path):
    """Note [Stage leases]: with a cache bound that holds one episode's bytes but not two, the next
    batch's lease gets its bytes once the caller's older batch (whose leases pin the first episode)
    is drained, instead of waiting for room that only the caller could free."""
    from lerobot_stream.stage_videos import StageVideos

    _, url = served_dataset
    keys = ["observation.images.cam0", "observation.images.cam1"]

    def videos(cache: Path, max_bytes: int) -> StageVideos:
        ds = StreamingLeRobotDataset(
            "synth/tiny", root=url, video_cache_dir=cache, video_cache_max_bytes=max_bytes
        )
        return StageVideos(ds, keep_episodes=0)

    def no_batch_pending() -> bool:
        return False

    sizes = []  # bytes in the cache (headers + the episode's segments) holding one episode alone
    for episode in (0, 1):
        measure = videos(tmp_path / f"measure{episode}", 1 << 30)
        _, leases = measure.hold({key: [episode] for key in keys}, no_batch_pending)
        sizes.append(measure._videos.prefetcher.cached_bytes())
        leases.release()
        measure.close()
    stage_videos = videos(tmp_path / "bounded", max(sizes))
    _, older = stage_videos.hold({key: [0] for key in keys}, no_batch_pending)
    drained = []

    def drain() -> bool:
        if drained:
            return False
        older.release()
        drained.append(True)
        return True

    sources, newer = stage_videos.hold({key: [1] for key in keys}, drain)
    assert drained == [True]
    assert all(type(source[0]).__name__ == "ByteSource" for source in sources)
    newer.release()
    stage_videos.close()
    assert cache_files(tmp_path / "bounded") == []


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
