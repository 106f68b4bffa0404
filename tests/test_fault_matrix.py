"""Fault matrix (issue 14): a real training process meets a fault mid-epoch; once every process has
exited, the video cache directory holds nothing but its own record.

Each case runs a child Python process that streams a dataset served by nginx on 127.0.0.1 through a
DataLoader with 2 workers (0 or 2 for the full disk) into a shared ``video_cache_dir`` and prints
what happened. Faults: the server killed after the first batch, a DataLoader worker SIGKILLed after
the first batch, a full disk (a 64 KiB tmpfs as the cache, where mounting is allowed), and a
read-only cache directory.
The contract: a clear error in the child (its class and message printed), never a hang (every wait
is bounded), and no entry, temporary ``.part`` file or stale record left once the child exited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lerobot_stream.remote.cache_state import INTERNAL_FILES, read_records
from servers import NginxServer, nginx_binary

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
    pytest.mark.timeout(300),
]

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from torch.utils.data import DataLoader
    from lerobot_stream import RetryPolicy, StreamingLeRobotDataset
    url, cache, mode, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    policy = RetryPolicy(retries=2, backoff_s=0.05, max_backoff_s=0.1, timeout_s=3)

    def report(err):  # a worker killed mid-transfer can surface as a bare EOFError (no message)
        lines = str(err).strip().splitlines() or [""]
        print("ERROR", type(err).__name__, lines[-1][:600], flush=True)

    try:
        try:
            ds = StreamingLeRobotDataset("synth", root=url, video_cache_dir=cache, num_workers=workers,
                                         episode_pool_size=2, remote_retry=policy,
                                         video_cache_max_bytes=1 << 20)
            loader = DataLoader(ds, batch_size=2, num_workers=workers, timeout=60 if workers else 0)
            it = iter(loader)
            next(it)
            print("FIRST", flush=True)
            if mode == "kill-worker":
                os.kill(it._workers[0].pid, signal.SIGKILL)
            elif mode == "kill-server":
                sys.stdin.readline()  # the parent stopped the server
            n = sum(1 for _ in it)
            print("DONE", n, flush=True)
        except Exception as err:
            report(err)
    except Exception as err:  # torch's SIGCHLD handler may raise again while the first is reported
        report(err)
    """
)


@pytest.fixture
def www(make_dataset, tmp_path: Path) -> Path:
    # More episodes per worker than its pool, look-ahead and the DataLoader's prefetched batches
    # fetch before the first batch, so a fault after the first batch meets the rest of the epoch.
    root = tmp_path / "www"
    shutil.copytree(make_dataset(num_episodes=48, min_length=4, max_length=8), root / "tiny")
    return root


def run_child(
    url: str,
    cache: Path,
    mode: str,
    server: NginxServer | None = None,
    workers: int = 2,
) -> str:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(cache), mode, str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = ""
        if mode == "kill-server":
            out = child.stdout.readline()  # type: ignore[union-attr]
            assert server is not None
            server.__exit__(None, None, None)
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
        rest, err = child.communicate(timeout=240)
    finally:
        if child.poll() is None:
            child.kill()
    out += rest
    assert child.returncode == 0, f"child died ({child.returncode}): {err[-2000:]}"
    return out


def assert_clean(cache: Path) -> None:
    if not cache.exists():
        return
    left = sorted(p.name for p in cache.iterdir() if p.name not in INTERNAL_FILES)
    assert left == [], f"left in the cache: {left}"
    assert read_records(cache) == {}, "stale records"


def test_server_killed_mid_epoch(www: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    server = NginxServer(www).__enter__()
    out = run_child(f"{server.url}/tiny", cache, "kill-server", server=server)
    assert "FIRST" in out and ("ERROR ServerUnreachableError" in out or "ERROR RemoteFileError" in out), out
    assert "Could not reach the server" in out or "tiny/" in out, out
    assert_clean(cache)


def test_worker_killed_mid_epoch(www: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with NginxServer(www) as server:
        out = run_child(f"{server.url}/tiny", cache, "kill-worker")
    assert "FIRST" in out and "ERROR" in out, out  # torch reports the dead worker
    assert_clean(cache)


def mount_tmpfs(target: Path, options: str) -> bool:
    target.mkdir()
    if os.geteuid() != 0:
        return False
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_disk_full(www: Path, tmp_path: Path, workers: int) -> None:
    """A cache on a full disk: the cache's own error (``CacheWriteError`` with the errno's words and
    what to change), raised by the worker whose write failed, and nothing left behind."""
    cache = tmp_path / "cache"
    if not mount_tmpfs(cache, "size=64k"):
        # Not RLIMIT_FSIZE instead: torch's shared memory (the epoch counters, the batches of
        # DataLoader workers) is sized with ftruncate and would fail first, with torch's error.
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs privileges")
    try:
        with NginxServer(www) as server:
            out = run_child(f"{server.url}/tiny", cache, "full", workers=workers)
        assert "ERROR CacheWriteError" in out and "No space left on device" in out, out
        assert f"the video cache directory {cache}" in out and "video_cache_max_bytes" in out, out
        assert_clean(cache)
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_read_only_cache_dir(www: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    if not mount_tmpfs(cache, "ro,size=64k"):
        if os.geteuid() == 0:
            pytest.skip("root without mount privileges cannot make a read-only directory")
        cache.chmod(0o555)
    try:
        with NginxServer(www) as server:
            out = run_child(f"{server.url}/tiny", cache, "read-only")
        assert "ERROR ValueError video_cache_dir=" in out and "is not a writable directory" in out, out
        assert_clean(cache)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(cache)], check=False)
