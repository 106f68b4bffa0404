"""Issue 14's hostile-user probes, one test (or a few) per item: each failed on the old main.

Contracts: a dataset whose metadata or rows were altered gives a clear error naming the file and the
field before any sample that differs from the intact dataset's (never a wrong sample); a small video
cache never hangs; a blip while reading a row group is retried; errors raised in DataLoader workers
reach the user with their own class; bad arguments fail at construction. (Item 2, the state's
``num_workers``, and the resume-state parsing of item 6 are covered in ``test_elastic_resume.py``;
item 5, leftovers after faults, in ``test_fault_matrix.py``.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_stream import FrameTimestampError, RemoteFileError, RetryPolicy, StreamingLeRobotDataset
from lerobot_stream.remote.cache_state import INTERNAL_FILES
from lerobot_stream.remote.retry import RemoteFileNotFoundError
from servers import FaultProxy, NginxServer, nginx_binary
from streaming_helpers import assert_batches_equal, assert_same_sample, run_loader

SMALL = {"height": 48, "width": 64}
CAM0 = "observation.images.cam0"
FAST = RetryPolicy(retries=2, backoff_s=0.01, max_backoff_s=0.02, timeout_s=2)
needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@pytest.fixture
def copy_of(make_dataset, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(make_dataset(**SMALL), root)
    return root


def samples_until_error(ds: StreamingLeRobotDataset, workers: int) -> tuple[list[dict], BaseException | None]:
    """Every sample a DataLoader (batch_size=None) yields before it raises, and what it raised."""
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=None, num_workers=workers, **({"timeout": 120} if workers else {}))
    out: list[dict] = []
    try:
        for sample in loader:
            out.append(sample)
    except Exception as err:
        return out, err
    return out, None


def assert_no_wrong_sample(samples: list[dict], intact: Path) -> None:
    """Each sample equals the intact dataset's sample of the same index."""
    if not samples:
        return
    reference = {int(s["index"]): s for s in StreamingLeRobotDataset("synth", root=intact, shuffle=False)}
    for sample in samples:
        assert_same_sample(reference[int(sample["index"])], sample, f"index {int(sample['index'])}")


def edit_column(path: Path, name: str, change) -> None:
    table = pq.read_table(path)
    values = change(table.column(name).to_numpy().copy(), table)
    pq.write_table(
        table.set_column(
            table.column_names.index(name), name, pa.array(values, table.schema.field(name).type)
        ),
        path,
    )


def data_file(root: Path) -> Path:
    return root / "data" / "chunk-000" / "file-000.parquet"


def episodes_file(root: Path) -> Path:
    return root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"


# --- item 1: silent wrong frames ------------------------------------------------------------------
def shift_timestamps(root: Path) -> None:  # one episode's rows half a second (15 frames) late
    edit_column(
        data_file(root),
        "timestamp",
        lambda ts, t: np.where(t.column("episode_index").to_numpy() == 3, ts + np.float32(0.5), ts),
    )


def shift_episode_in_its_file(root: Path) -> None:  # episode 0 of cam0 one frame later in its mp4
    for column in (f"videos/{CAM0}/from_timestamp", f"videos/{CAM0}/to_timestamp"):
        edit_column(
            episodes_file(root),
            column,
            lambda v, t: np.where(t.column("episode_index").to_numpy() == 0, v + 1 / 30, v),
        )


def move_start_only(root: Path) -> None:  # episode 1 starts 2 frames later but ends where it did
    column = f"videos/{CAM0}/from_timestamp"
    edit_column(
        episodes_file(root),
        column,
        lambda v, t: np.where(t.column("episode_index").to_numpy() == 1, v + 2 / 30, v),
    )


def reorder_rows(root: Path) -> None:  # two rows of episode 2 swapped (frame_index and all)
    table = pq.read_table(data_file(root))
    rows = np.arange(table.num_rows)
    first = int(np.argmax(table.column("episode_index").to_numpy() == 2))
    rows[first], rows[first + 1] = rows[first + 1], rows[first]
    pq.write_table(table.take(pa.array(rows)), data_file(root))


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (shift_timestamps, r"file-000\.parquet: episode 3 frame 0: timestamp 0\.5 is not frame_index / fps"),
        (shift_episode_in_its_file, r"episodes 0 \[.*\) and 1 \[.*\) s overlap"),
        (move_start_only, r"episode 1: its last frame at from_timestamp \+ timestamp = .* lies outside"),
        (reorder_rows, r"episode 2: the index column should run"),
    ],
    ids=["timestamp+0.5s", "episode-moved-1-frame", "from_timestamp-only", "rows-reordered"],
)
def test_misplaced_frames_raise_before_any_wrong_sample(
    make_dataset, copy_of, alter, message, workers
) -> None:
    alter(copy_of)
    try:
        ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False, num_workers=workers)
    except ValueError as err:  # found at construction (the episodes metadata): fine, and earlier
        assert re.search(message, str(err)), err
        return
    samples, error = samples_until_error(ds, workers)
    assert isinstance(error, ValueError) and re.search(message, str(error)), error
    assert_no_wrong_sample(samples, make_dataset(**SMALL))


# --- item 3: no hang when the video cache is smaller than a sample's cameras ------------------------
@pytest.fixture(scope="module")
def served(served_tiny):
    """(local root, nginx, its URL of the same dataset)."""
    return served_tiny


def cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name not in INTERNAL_FILES)


@needs_nginx
@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("ignore:.*exceed the prefetch cache bound")
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("bound", ["1 byte", "one segment", "one whole file"])
def test_a_cache_smaller_than_a_samples_cameras_never_hangs(served, tmp_path, bound, workers) -> None:
    root, _, url = served
    files = sorted((root / "videos" / CAM0).glob("*/*.mp4"))
    # "one segment": between one camera's episode segment plus header (2.4-3.6 KB here) and two.
    max_bytes, fetch = {
        "1 byte": (1, "ranges"),
        "one segment": (3000, "ranges"),
        "one whole file": (max(f.stat().st_size for f in files) + 1, "whole_files"),
    }[bound]
    common = {"seed": 1, "episode_pool_size": 2, "num_workers": workers}
    remote = StreamingLeRobotDataset(
        "synth",
        root=url,
        video_cache_dir=tmp_path,
        video_cache_max_bytes=max_bytes,
        video_fetch=fetch,
        **common,
    )
    local = StreamingLeRobotDataset("synth", root=root, **common)
    got = run_loader(remote, batch_size=4, num_workers=workers, timeout=120)  # a hang fails here
    assert_batches_equal(got, run_loader(local, batch_size=4, num_workers=workers))
    assert cache_entries(tmp_path) == []


# --- item 4: row-group reads retry; what gives up keeps its class -------------------------------------
@needs_nginx
def test_a_blip_during_a_row_group_read_is_retried(served, tmp_path) -> None:
    root, server, _ = served
    with FaultProxy(server.port, only_paths="/data/", stall_s=3.0) as proxy:
        ds = StreamingLeRobotDataset(
            "synth", root=f"{proxy.url}/tiny", video_cache_dir=tmp_path, remote_retry=FAST, shuffle=False
        )
        proxy.set_faults(["drop", "503", "stall"])
        got = list(ds)
        assert proxy.faults_served == ["drop", "503", "stall"]
    assert_batches_equal(got, list(StreamingLeRobotDataset("synth", root=root, shuffle=False)))


@needs_nginx
@pytest.mark.parametrize("workers", [0, 2])
def test_a_row_group_read_that_keeps_failing_names_the_file(served, tmp_path, workers) -> None:
    _, server, _ = served
    with FaultProxy(server.port, only_paths="/data/") as proxy:
        ds = StreamingLeRobotDataset(
            "synth", root=f"{proxy.url}/tiny", video_cache_dir=tmp_path, remote_retry=FAST
        )
        proxy.set_faults(["503"] * 100)
        _, error = samples_until_error(ds, workers)
    assert isinstance(error, RemoteFileError), repr(error)
    assert "data/chunk-000/file-000.parquet" in str(error) and "HTTP 503" in str(error)


# --- item 6: unchecked metadata, lost error classes, late argument errors ----------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_a_feature_shape_unlike_the_video_raises(copy_of, workers) -> None:
    path = copy_of / "meta" / "info.json"
    info = json.loads(path.read_text())
    info["features"][CAM0]["shape"] = [480, 640, 3]
    path.write_text(json.dumps(info))
    ds = StreamingLeRobotDataset("synth", root=copy_of, num_workers=workers)
    samples, error = samples_until_error(ds, workers)
    assert samples == []
    assert isinstance(error, ValueError)
    wanted = (
        r"file-00\d\.mp4: frames are 48x64 .* gives feature 'observation\.images\.cam0' the shape \[480, 640"
    )
    assert re.search(wanted, str(error)), error


def test_episodes_reaching_past_their_video_file_raise_before_decoding_it(copy_of) -> None:
    table = pq.read_table(episodes_file(copy_of))
    files = table.column(f"videos/{CAM0}/file_index").to_numpy()
    last = int(np.flatnonzero(files == 0)[-1])  # the last episode of cam0's first file
    edit_column(
        episodes_file(copy_of),
        f"videos/{CAM0}/to_timestamp",
        lambda v, t: np.where(np.arange(len(v)) == last, v + 1.0, v),
    )
    ds = StreamingLeRobotDataset("synth", root=copy_of, shuffle=False)
    with pytest.raises(
        ValueError, match=r"file-000\.mp4: the file holds \d+ frames .* truncated file or wrong to_timestamp"
    ):
        list(ds)


def test_a_truncated_video_says_so(copy_of) -> None:
    video = copy_of / "videos" / CAM0 / "chunk-000" / "file-000.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match=r"file-000\.mp4: .*truncated"):
        list(StreamingLeRobotDataset("synth", root=copy_of, shuffle=False))


def half_frame_late(root: Path) -> None:  # no frame within tolerance_s: lerobot's FrameTimestampError
    edit_column(episodes_file(root), f"videos/{CAM0}/from_timestamp", lambda v, t: v + 0.5 / 30)


@needs_nginx
@pytest.mark.parametrize("error_class", [RemoteFileNotFoundError, FrameTimestampError])
def test_worker_errors_reach_the_user_with_their_class(make_dataset, tmp_path, error_class) -> None:
    www = tmp_path / "www"
    shutil.copytree(make_dataset(**SMALL), www / "ds")
    if error_class is FrameTimestampError:
        half_frame_late(www / "ds")
    else:
        (www / "ds" / "videos" / CAM0 / "chunk-000" / "file-001.mp4").unlink()
    with NginxServer(www) as server:
        ds = StreamingLeRobotDataset(
            "synth", root=f"{server.url}/ds", video_cache_dir=tmp_path / "cache", remote_retry=FAST
        )
        _, error = samples_until_error(ds, workers=2)
    assert type(error) is error_class, repr(error)
    assert "DataLoader worker process" in str(error) and "file-00" in str(error)


def test_an_empty_episode_selection_is_rejected(make_dataset) -> None:
    with pytest.raises(ValueError, match=r"episodes=\[\] selects no episode"):
        StreamingLeRobotDataset("synth", root=make_dataset(**SMALL), episodes=[])


def read_only_dir(tmp_path: Path) -> Path:
    """A directory nobody can write to: a read-only tmpfs (root), else a mode-555 one (not root)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        return target
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"root without mount privileges cannot make a read-only directory: {done.stderr.decode().strip()}"
        )
    return target


@needs_nginx
def test_an_unwritable_video_cache_dir_fails_at_construction_naming_the_option(served, tmp_path) -> None:
    _, _, url = served
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(
        ValueError, match=rf"video_cache_dir='{re.escape(str(a_file))}' is not a writable directory"
    ):
        StreamingLeRobotDataset("synth", root=url, video_cache_dir=a_file)
    ro = read_only_dir(tmp_path)
    try:
        with pytest.raises(
            ValueError, match=rf"video_cache_dir='{re.escape(str(ro))}' is not a writable directory"
        ):
            StreamingLeRobotDataset("synth", root=url, video_cache_dir=ro)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=False)
