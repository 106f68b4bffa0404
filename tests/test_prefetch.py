"""VideoPrefetcher against a real nginx on 127.0.0.1, through a fault-injecting proxy.

Contracts: whatever the network does, a complete-looking file in the cache is byte-identical to
the server's; transient faults are retried and permanent ones raise an error naming the URL;
references shared by several processes never delete a file someone holds and leave the cache
empty; the cache bound is never exceeded and a bound below the working set does not deadlock; the same
holds for byte-range entries kept in memory (``cache_dir=None``).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lerobot_stream.remote.cache_state import INTERNAL_FILES, file_key, read_records
from lerobot_stream.remote.prefetch import CacheItem, RemoteFileError, VideoPrefetcher
from servers import FaultProxy, NginxServer, nginx_binary

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

SIZES = {"a.mp4": 1_500_000, "b.mp4": 700_000, "c.mp4": 300_000, "d.mp4": 450_000}
FAST = {"retries": 8, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 1.5}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """(nginx, {name: bytes}) serving files of random bytes."""
    root = tmp_path_factory.mktemp("served")
    rng = random.Random(0)
    contents = {name: rng.randbytes(size) for name, size in SIZES.items()}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    with NginxServer(root) as server:
        yield server, contents


def run_threads(target: Callable[..., None], args: list[tuple[Any, ...]], timeout: float) -> bool:
    """Runs ``target(*a)`` for each ``a`` on its own thread; whether all finished within ``timeout``."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return not any(t.is_alive() for t in threads)


def data_files(cache: Path) -> list[Path]:
    """Files in the cache directory other than its lock and state."""
    return [p for p in cache.iterdir() if p.name not in INTERNAL_FILES]


def state_records(cache: Path) -> dict:
    return read_records(cache)


class CacheWatcher(threading.Thread):
    """Polls the cache: every complete-looking file must equal its source; tracks peak bytes."""

    def __init__(self, cache: Path, by_key: dict[str, bytes]) -> None:
        super().__init__(daemon=True)
        self.cache, self.by_key = cache, by_key
        self.peak_bytes = 0
        self.corrupt: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = 0
            for path in data_files(self.cache):
                try:
                    total += path.stat().st_size
                    if not path.name.startswith("."):
                        data = path.read_bytes()
                        if data != self.by_key[path.name]:
                            self.corrupt.append(path.name)
                except FileNotFoundError:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def test_downloads_through_faults_are_whole_and_retried(served, tmp_path):
    server, contents = served
    faults = ["503", "drop", "truncate", "500", "stall", "429", "drop", "truncate"]
    cache = tmp_path / "cache"
    with FaultProxy(server.port, faults, stall_s=4.0) as proxy:
        urls = {name: f"{proxy.url}/{name}" for name in contents}
        by_key = {file_key(url): contents[name] for name, url in urls.items()}
        watcher = CacheWatcher(cache, by_key)
        with VideoPrefetcher(cache, max_bytes=10 << 20, max_concurrency=2, **FAST) as prefetcher:
            watcher.start()
            for name, url in urls.items():
                prefetcher.acquire(url, expected_size=len(contents[name]))
            for name, url in urls.items():
                with prefetcher.lease(url, timeout=30) as path:
                    assert path.read_bytes() == contents[name]
            watcher.stop()
            assert proxy.faults_served == faults
            assert prefetcher.stats.retries >= len(faults)  # a slow machine may time out once more
            assert prefetcher.stats.downloads == len(contents)
            assert prefetcher.stats.bytes_downloaded >= sum(SIZES.values())
            for url in urls.values():
                prefetcher.release(url)
            assert data_files(cache) == []
            assert state_records(cache) == {}
    assert watcher.corrupt == []


def test_size_is_asked_when_not_given(served, tmp_path):
    server, contents = served
    with VideoPrefetcher(tmp_path, max_bytes=10 << 20, **FAST) as prefetcher:
        url = f"{server.url}/b.mp4"
        prefetcher.acquire(url).result(timeout=30)
        assert prefetcher.local_path(url).read_bytes() == contents["b.mp4"]


@pytest.mark.parametrize(("path", "status"), [("missing.mp4", "404"), ("forbidden/a.mp4", "403")])
def test_permanent_error_names_the_url_and_is_not_retried(served, tmp_path, path, status):
    server, _ = served
    url = f"{server.url}/{path}"
    with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **FAST) as prefetcher:
        future = prefetcher.acquire(url, expected_size=10)
        with (
            pytest.raises(RemoteFileError, match=f"{url}: HTTP {status}") as err,
            prefetcher.lease(url, timeout=30),
        ):
            pass
        assert err.value.permanent
        assert isinstance(future.exception(timeout=30), RemoteFileError)
        assert prefetcher.stats.retries == 0
        prefetcher.release(url)
        assert data_files(tmp_path) == []


def test_transient_errors_give_up_after_retries_with_a_clear_error(served, tmp_path):
    server, _ = served
    with FaultProxy(server.port, ["503"] * 3) as proxy:
        url = f"{proxy.url}/c.mp4"
        opts = {**FAST, "retries": 2}
        with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **opts) as prefetcher:
            prefetcher.acquire(url, expected_size=SIZES["c.mp4"])
            with (
                pytest.raises(RemoteFileError, match=f"{url}: HTTP 503") as err,
                prefetcher.lease(url, timeout=30),
            ):
                pass
            assert not err.value.permanent
            assert proxy.faults_served == ["503"] * 3
            assert data_files(tmp_path) == []  # no temporary file left behind
            prefetcher.release(url)


def test_wrong_expected_size_never_enters_the_cache(served, tmp_path):
    server, _ = served
    url = f"{server.url}/c.mp4"
    with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **{**FAST, "retries": 1}) as prefetcher:
        prefetcher.acquire(url, expected_size=SIZES["c.mp4"] + 1)
        with (
            pytest.raises(RemoteFileError, match=f"{url}: the server has 300000 bytes, expected 300001"),
            prefetcher.lease(url, timeout=30),
        ):
            pass
        assert prefetcher.stats.retries == 0
        assert data_files(tmp_path) == []


# --- refcounts across processes ------------------------------------------------------------------
def _run_ops(cache: str, base_url: str, ops: list[tuple[str, str]], sources: dict, errors) -> None:
    """Child process: applies acquire/lease/release ops, checking every leased file's bytes."""
    try:
        prefetcher = VideoPrefetcher(cache, max_bytes=10 << 20, **FAST)
        for op, name in ops:
            url = f"{base_url}/{name}"
            if op == "acquire":
                prefetcher.acquire(url, expected_size=len(sources[name]))
            elif op == "lease":
                with prefetcher.lease(url, timeout=30) as path:
                    if path.read_bytes() != sources[name]:
                        errors.put(f"{name}: leased file differs from the source")
            else:
                prefetcher.release(url)
        prefetcher.close()
    except BaseException as err:
        errors.put(f"{type(err).__name__}: {err}")


def _valid_ops(draw_ops: list[tuple[int, int]], names: list[str]) -> list[tuple[str, str]]:
    """Turns drawn (kind, file) pairs into a sequence where lease/release only touch held files."""
    held: dict[str, int] = {}
    ops: list[tuple[str, str]] = []
    for kind, index in draw_ops:
        name = names[index]
        if kind == 0 or not held.get(name):
            held[name] = held.get(name, 0) + 1
            ops.append(("acquire", name))
        elif kind == 1:
            ops.append(("lease", name))
        else:
            held[name] -= 1
            ops.append(("release", name))
    ops += [("release", name) for name, n in held.items() for _ in range(n)]
    return ops


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=12),
        min_size=3,
        max_size=3,
    )
)
def test_refcounts_shared_by_processes_never_delete_a_held_file(served, tmp_path_factory, drawn):
    server, contents = served
    names = ["b.mp4", "c.mp4", "d.mp4"]
    cache = tmp_path_factory.mktemp("shared")
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    procs = [
        ctx.Process(target=_run_ops, args=(str(cache), server.url, _valid_ops(d, names), contents, errors))
        for d in drawn
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert data_files(cache) == []
    assert state_records(cache) == {}


def _acquire_and_die(cache: str, url: str, size: int, ready) -> None:
    prefetcher = VideoPrefetcher(cache, max_bytes=10 << 20, **FAST)
    prefetcher.acquire(url, expected_size=size)
    prefetcher.local_path(url, timeout=30)
    ready.set()
    os._exit(0)  # no release: as if killed


def test_references_of_a_dead_process_are_pruned(served, tmp_path):
    server, _ = served
    url = f"{server.url}/b.mp4"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_acquire_and_die, args=(str(tmp_path), url, SIZES["b.mp4"], ready))
    child.start()
    child.join(timeout=60)
    assert ready.is_set()
    assert [p.name for p in data_files(tmp_path) if not p.name.startswith(".")] == [file_key(url)]
    with VideoPrefetcher(tmp_path, max_bytes=10 << 20, **FAST) as prefetcher:
        assert prefetcher.cached_bytes() == 0  # the dead owner's reference is gone
        assert data_files(tmp_path) == []


# --- the cache bound -----------------------------------------------------------------------------
def test_bound_below_working_set_waits_never_overflows_and_finishes(served, tmp_path):
    server, contents = served
    names = ["b.mp4", "c.mp4", "d.mp4"]  # 1.45 MB working set
    bound = 800_000  # fits one or two files, never all three
    by_key = {file_key(f"{server.url}/{n}"): contents[n] for n in names}
    watcher = CacheWatcher(tmp_path, by_key)
    watcher.start()
    done = threading.Event()
    failures: list[BaseException] = []

    def consumer(seed: int) -> None:
        try:
            rng = random.Random(seed)
            with VideoPrefetcher(tmp_path, max_bytes=bound, max_concurrency=2, **FAST) as prefetcher:
                for n in names:
                    prefetcher.acquire(f"{server.url}/{n}")
                for _ in range(12):
                    name = rng.choice(names)
                    with prefetcher.lease(f"{server.url}/{name}", timeout=30) as path:
                        assert path.read_bytes() == contents[name]
        except BaseException as err:
            failures.append(err)

    finished = run_threads(consumer, [(seed,) for seed in range(2)], timeout=60)
    done.set()
    watcher.stop()
    assert finished, "deadlock: consumers did not finish"
    assert failures == []
    assert watcher.corrupt == []
    assert 0 < watcher.peak_bytes <= bound
    assert data_files(tmp_path) == []


def test_prefetch_waits_for_room_instead_of_overflowing(served, tmp_path):
    server, _ = served
    with VideoPrefetcher(tmp_path, max_bytes=1_000_000, **FAST) as prefetcher:
        # 300k + 450k + 700k: any order of admission fits exactly two of them under 1 MB.
        urls = [f"{server.url}/{n}" for n in ("c.mp4", "d.mp4", "b.mp4")]
        futures = [prefetcher.acquire(u) for u in urls]
        deadline = time.monotonic() + 30
        while sum(f.done() for f in futures) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        done = [u for u, f in zip(urls, futures, strict=True) if f.done()]
        assert len(done) == 2
        assert prefetcher.cached_bytes() <= 1_000_000
        for url in done:
            prefetcher.release(url)
        waiting = next(f for f in futures if not f.done())
        assert waiting.result(timeout=30).exists()


def test_a_file_larger_than_the_bound_is_let_in_alone(served, tmp_path):
    server, contents = served
    url = f"{server.url}/a.mp4"
    with (
        VideoPrefetcher(tmp_path, max_bytes=100_000, **FAST) as prefetcher,
        pytest.warns(RuntimeWarning, match="exceed the prefetch cache bound"),  # from whichever thread
    ):
        prefetcher.acquire(url)
        with prefetcher.lease(url, timeout=30) as path:
            assert path.read_bytes() == contents["a.mp4"]


# --- byte ranges, in memory ------------------------------------------------------------------------
def test_memory_mode_serves_exact_ranges_within_its_bound_without_deadlock(served):
    server, contents = served
    names = ["a.mp4", "b.mp4", "c.mp4"]
    rng = random.Random(3)
    ranges = []
    for name in names:
        for _ in range(3):
            start = rng.randrange(0, SIZES[name] - 200_000)
            ranges.append((name, start, start + rng.randrange(50_000, 200_000)))
    bound = 400_000  # below the working set (~1.1 MB): demands evict, never overflow
    failures: list[BaseException] = []
    faults = ["drop", "503", "truncate", "stall"]
    with FaultProxy(server.port, faults, stall_s=3.0) as proxy:
        items = [CacheItem.byte_range(f"{proxy.url}/{n}", a, b) for n, a, b in ranges]
        prefetcher = VideoPrefetcher(None, max_bytes=bound, max_concurrency=2, **FAST)
        assert prefetcher.in_memory

        def consumer(seed: int) -> None:
            try:
                order = random.Random(seed)
                for item in items:
                    prefetcher.acquire(item)
                for _ in range(15):
                    i = order.randrange(len(items))
                    with prefetcher.lease(items[i], timeout=60) as data:
                        name, start, end = ranges[i]
                        assert isinstance(data, bytes) and data == contents[name][start:end]
                        assert prefetcher.cached_bytes() <= bound
                for item in items:
                    prefetcher.release(item)
            except BaseException as err:
                failures.append(err)

        finished = run_threads(consumer, [(seed,) for seed in range(2)], timeout=120)
        assert finished, "deadlock: consumers did not finish"
        assert failures == []
        assert proxy.faults_served == faults
        assert prefetcher.stats.segment_bytes >= sum(b - a for _, a, b in ranges)
        prefetcher.close()  # waits for background downloads of released entries to stop
        assert prefetcher.cached_bytes() == 0


def test_settle_after_releasing_a_download_in_flight_leaves_nothing(served, tmp_path):
    """Note [Releases and downloads in flight]: ``release`` does not wait for the entry's download;
    once ``settle()`` returns, that download has stopped (it does not run to its end) and left no
    temporary file and no record."""
    server, _ = served
    with FaultProxy(server.port, bandwidth_bps=200_000) as proxy:  # a.mp4 would take 7.5 s
        url = f"{proxy.url}/a.mp4"
        with VideoPrefetcher(tmp_path, max_bytes=10 << 20, **FAST) as prefetcher:
            prefetcher.acquire(url, expected_size=SIZES["a.mp4"])
            deadline = time.monotonic() + 30
            while prefetcher.stats.bytes_downloaded == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert prefetcher.stats.bytes_downloaded > 0, "the download did not start"
            prefetcher.release(url)
            prefetcher.settle()
            assert data_files(tmp_path) == []
            assert state_records(tmp_path) == {}
            assert prefetcher.stats.bytes_downloaded < SIZES["a.mp4"]


def test_reacquiring_an_entry_whose_download_is_still_running_keeps_its_bytes_whole(served, tmp_path):
    """Note [Unreferenced downloads]: the download has all its bytes and is about to rename them into
    place when its entry is released, the record is pruned by a locked step, and the entry is
    acquired again: the entry a lease then reads is the server's file, whole."""
    server, contents = served
    url = f"{server.url}/b.mp4"
    with VideoPrefetcher(tmp_path, max_bytes=10 << 20, **FAST) as prefetcher:
        state = prefetcher._state
        finishing, go_on, second, settled = (threading.Event() for _ in range(4))
        finish, open_part, commit, discard = state.finish, state.open_part, state.commit, state.discard

        def held_finish(part: Any) -> int:  # the first download waits here, its bytes written
            if not finishing.is_set():
                finishing.set()
                assert go_on.wait(30)
            return finish(part)

        def watched_open(key: str, owner: str) -> Any:  # a second download of the entry (a bug)
            part = open_part(key, owner)
            if finishing.is_set():
                second.set()
                settled.wait(30)  # let the first one end while this one has truncated its file
            return part

        def then_settled(method: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any) -> Any:
                try:
                    return method(*args)
                finally:
                    settled.set()

            return call

        state.finish, state.open_part = held_finish, watched_open  # type: ignore[method-assign]
        state.commit, state.discard = then_settled(commit), then_settled(discard)  # type: ignore[method-assign]
        prefetcher.acquire(url, expected_size=SIZES["b.mp4"])
        assert finishing.wait(30), "the background download never finished"
        prefetcher.release(url)  # no reference left, the download still running
        prefetcher.cached_bytes()  # a locked step: it prunes the record
        prefetcher.acquire(url, expected_size=SIZES["b.mp4"])
        second.wait(0.5)  # a second download of the entry would start now
        go_on.set()
        with prefetcher.lease(url, timeout=30) as path:
            assert path.read_bytes() == contents["b.mp4"]
        prefetcher.release(url)
        prefetcher.settle()
    assert data_files(tmp_path) == []


def test_a_temporary_file_that_cannot_be_deleted_still_ends_the_lease_with_the_error(
    served, tmp_path, monkeypatch
):
    """A cache directory made read-only mid-run (as root its permission bits do not apply, so the
    refusal is injected at the unlink): the failed download's error reaches the lease; before, the
    record stayed "downloading" and the lease waited forever."""
    from lerobot_stream.remote import cache_state

    real_unlink = Path.unlink

    def refuse_parts(path: Path, missing_ok: bool = False) -> None:
        if ".part-" in path.name:
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, missing_ok=missing_ok)

    server, _ = served
    with FaultProxy(server.port, ["503"] * 3) as proxy:
        url = f"{proxy.url}/c.mp4"
        with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **{**FAST, "retries": 2}) as prefetcher:
            monkeypatch.setattr(cache_state.Path, "unlink", refuse_parts)
            prefetcher.acquire(url, expected_size=SIZES["c.mp4"])
            start = time.monotonic()
            with pytest.raises(RemoteFileError, match=f"{url}: HTTP 503"), prefetcher.lease(url, timeout=60):
                pass
            assert time.monotonic() - start < 30
            monkeypatch.undo()
            prefetcher.release(url)


def test_an_encoded_body_is_a_permanent_error_naming_the_url(served, tmp_path):
    """Content-Encoding: gzip (asked for identity): byte ranges would address the encoded bytes;
    before, the body was cached as the video and the decoder blamed the local cache file."""
    server, _ = served
    with FaultProxy(server.port, ["gzip"] * 5) as proxy:
        url = f"{proxy.url}/c.mp4"
        with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **FAST) as prefetcher:
            prefetcher.acquire(url, expected_size=SIZES["c.mp4"])
            with (
                pytest.raises(
                    RemoteFileError, match=f"{url}: the server sent the body with Content-Encoding: gzip"
                ) as err,
                prefetcher.lease(url, timeout=30),
            ):
                pass
            assert err.value.permanent and proxy.faults_served == ["gzip"]
            assert b"Accept-Encoding: identity" in proxy.request_heads[0]
            prefetcher.release(url)


def test_a_trickling_server_is_given_up_as_too_slow_not_waited_for(served, tmp_path):
    """600 B/s in 1 KiB pieces: never silent for the 3 s stall timeout, so only the rate floor
    (``min_bytes_per_s``) ends it; before, the 300 kB download ran for minutes."""
    server, _ = served
    with FaultProxy(server.port, bandwidth_bps=600) as proxy:
        url = f"{proxy.url}/c.mp4"
        opts = {**FAST, "retries": 0, "timeout_s": 3.0, "min_bytes_per_s": 1024.0}
        with VideoPrefetcher(tmp_path, max_bytes=1 << 20, **opts) as prefetcher:
            prefetcher.acquire(url, expected_size=SIZES["c.mp4"])
            start = time.monotonic()
            with (
                pytest.raises(RemoteFileError, match=f"{url}: too slow: "),
                prefetcher.lease(url, timeout=60),
            ):
                pass
            assert time.monotonic() - start < 20
            prefetcher.release(url)
