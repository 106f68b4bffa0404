"""The prefetch cache's shared record (``lerobot_stream.remote.cache_state``): every process sees the
others' changes although each keeps the record it last read, a writer killed mid-write leaves the
previous version readable (Note [State slots]), and a directory removed in use is a cache error."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
from pathlib import Path

import pytest

from lerobot_stream.remote.cache_state import CacheState, CacheWriteError, new_record, owner_id, read_records


def _bump(cache: Path, key: str, times: int) -> None:
    """Adds 1 to the size of ``key``'s record ``times`` times, one locked update each."""
    state = CacheState(cache)
    for _ in range(times):
        with state.locked() as files:
            files[key]["size"] += 1


def test_states_of_one_directory_see_each_others_changes(tmp_path):
    owner = owner_id()
    states = [CacheState(tmp_path) for _ in range(3)]  # own descriptors each: like processes
    expected: dict[str, int] = {}
    rng = random.Random(0)
    for step in range(300):
        state = rng.choice(states)
        with state.locked() as files:
            assert {k: r["size"] for k, r in files.items()} == expected, f"stale record at step {step}"
            key = f"k{rng.randrange(8)}"
            if key in files and rng.random() < 0.3:
                del files[key]
                del expected[key]
            elif rng.random() < 0.8:  # some steps change nothing
                record = files.setdefault(key, new_record(f"http://h/{key}", 0))
                record["refs"][owner] = 1
                record["size"] += 1
                expected[key] = record["size"]
    assert {k: r["size"] for k, r in read_records(tmp_path).items()} == expected


def test_updates_from_other_processes_are_never_lost(tmp_path):
    # a record lives while an owner referencing it lives: this process, the children's parent
    with CacheState(tmp_path).locked() as files:
        for key in ("a", "b"):
            files[key] = new_record(f"http://h/{key}", 0)
            files[key]["refs"][owner_id()] = 1
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(tmp_path, key, 150)) for key in ("a", "b", "a")]
    for proc in procs:
        proc.start()
    _bump(tmp_path, "b", 150)
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    records = read_records(tmp_path)
    assert records["a"]["size"] == 300 and records["b"]["size"] == 300


def test_a_torn_write_leaves_the_previous_version(tmp_path):
    owner = owner_id()
    state, other = CacheState(tmp_path), CacheState(tmp_path)
    for size in (1, 2):
        with state.locked() as files:
            files["k"] = new_record("http://h/k", size)
            files["k"]["refs"][owner] = 1
    slots = [tmp_path / ".state.0", tmp_path / ".state.1"]
    newest, older = sorted(slots, key=lambda p: -int(p.read_bytes().split(b" ", 1)[0]))
    generation = int(newest.read_bytes().split(b" ", 1)[0])
    # a writer killed while writing generation + 1 into the other slot: head written, body cut
    torn = newest.read_bytes()[:40].replace(str(generation).encode(), str(generation + 1).encode(), 1)
    fd = os.open(older, os.O_WRONLY)
    try:
        os.pwrite(fd, torn, 0)
    finally:
        os.close(fd)
    for reader in (state, other):  # one knew the record already, one reads it fresh
        with reader.locked() as files:
            assert files["k"]["size"] == 2
    with other.locked() as files:
        files["k"]["size"] = 3
    with state.locked() as files:
        assert files["k"]["size"] == 3
    assert read_records(tmp_path)["k"]["size"] == 3


def test_a_cache_directory_removed_in_use_is_a_cache_error_naming_it(tmp_path):
    """A /tmp cleaner removing the cache directory mid-run: the cache's own error, naming the directory,
    not a bare FileNotFoundError on its lock file."""
    cache = tmp_path / "videos"
    state = CacheState(cache)
    with state.locked() as files:
        files["k"] = new_record("http://h/k", 1)
    shutil.rmtree(cache)
    with pytest.raises(CacheWriteError, match=f"video cache directory {cache} is gone"), state.locked():
        pass
    cache.mkdir()  # made again (by hand, or another run): the state opens the new files and goes on
    with state.locked() as files:
        assert files == {}
