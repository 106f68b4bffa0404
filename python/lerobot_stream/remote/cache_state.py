"""The record of one prefetch cache: who references, pins and downloads what, and where bytes live.

``CacheState(cache_dir)`` is the node-wide cache on disk: every process on a node that uses the
same cache directory (DataLoader workers, several ranks) shares one small record, read and
rewritten under an exclusive ``fcntl.flock`` on ``.lock`` (Note [State slots]). Entries (whole
files, episode segments, video headers) are files named by key; a download writes
``.<key>.part-<owner>`` and ``commit`` renames it once whole.

``MemoryCacheState()`` is the same record and the same entry operations in this process's memory
(the prefetcher's memory-only mode, for machines without a local disk): no sharing between
processes, entries are ``bytes``. The prefetcher (``lerobot_stream.remote.prefetch``) decides what to
create and delete; these classes only store.

Note [Owners and crashed processes]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
References, pins and download claims are recorded per owner, ``"<pid>:<start time>:<instance>"``
(the start time from ``/proc/<pid>/stat`` makes a recycled pid a different owner; the instance tag
tells apart two prefetchers of one process). Every locked section first
prunes owners that are no longer alive: their references and pins vanish, their downloads go back
to "queued" and their temporary files are deleted, and a file left with no references is deleted.
So a crashed (or SIGKILLed) process never leaks references or bytes beyond the next operation of
any other process. The cache directory must be local to one node (one pid namespace).

Note [Unreferenced downloads]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A record whose references all went while its owner still downloads it stays until that download
ends (``release`` keeps it, and so does pruning): the downloader checks the record when it stops or
finishes and then drops it. Pruning used to drop it at once; the same process could then acquire the
entry again, claim a fresh download of it, and open the same temporary file (``.<key>.part-<owner>``)
with truncation while the first download was about to rename it into place: the entry became an
empty file that a lease then read (a random three-process test caught it in about 1 run of 12).

Note [State slots]
~~~~~~~~~~~~~~~~~~
The record is written to two slot files in turn, ``.state.0`` and ``.state.1``, each holding
``"<generation> <length> <crc32>\n"`` and the record in ``marshal`` format; a reader takes the valid
slot with the highest generation. ``marshal`` (loading runs no code, unlike pickle; the slot's CRC
guards against torn writes) reads and writes a record of 100 entries in 0.15 ms where JSON took 0.4
ms, and the record is read and written several times per episode segment. A process keeps the record
it last read or wrote with its generation and reads only the slots' first lines while nobody else
wrote (Note [Cache record descriptors]). A write goes in place (``pwrite``, no rename: a rename
costs about a millisecond here and the cache changes several times per episode), into the slot that
does not hold the current version, so a writer killed mid-write leaves a torn slot (bad checksum)
next to the intact previous version, which is exactly the state before the dead writer's own change.

Note [Writes on a full disk]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A full disk (ENOSPC, EDQUOT) or a file-size limit (EFBIG) must end in a clear error, never in a
hang or in entries left behind (issue 14). Two rules. Every failed write in the cache directory is
raised as ``CacheWriteError`` (an ``OSError`` keeping the errno) naming the file, the directory and
what to change. And the slots never shrink: a slot grows (``posix_fallocate``, both slots to the
same capacity, in 4 KiB steps with slack) only when a record larger than any before must be
written, and is then overwritten in place within blocks it already owns. So a change that does not
grow the record (releasing references, pruning the dead, a failed download going back to
"queued") is written without asking the disk for a block, and can always undo what the process
holds even when the disk is full; only growth (a new entry, a download claimed) can fail.

Record of one entry (key = hash of its URL, plus the byte range or ``.hdr`` for parts of files)::

    {"url": str, "size": int | None, "status": "queued" | "downloading" | "ready",
     "downloader": owner | None, "refs": {owner: int}, "pins": {owner: int}, "last_used": float,
     "kind": "file" | "range" | "header"}

Thread-safety: ``locked()`` of ``CacheState`` takes a thread lock, then the flock (Note [Cache record
descriptors]), so threads of one process exclude each other like processes do; ``MemoryCacheState``
uses a thread lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import io
import marshal
import os
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

STATE_VERSION = 3  # 3: marshal (2: JSON)
# marshal format 2: equal records give equal bytes (formats 3 and later write back-references that
# depend on objects' reference counts), which is how ``locked`` sees that nothing changed
_MARSHAL_FORMAT = 2
_SLOTS = (".state.0", ".state.1")
_LOCK = ".lock"
_ROOM = ".room-wanted"  # touched by a lease waiting for room (Note [Lingering pins] in remote/cache_room.py)
_ROOM_FRESH_S = 1.0
INTERNAL_FILES = (*_SLOTS, _LOCK, _ROOM)  # the cache directory's own files (not entries)


_SLOT_STEP = 4096
_SLOT_SLACK = 1024  # a slot grows this much beyond the record that made it grow


class CacheWriteError(OSError):
    """A file in the video cache directory could not be written (full disk, quota, file-size limit);
    ``errno`` is the system's (``ENOSPC``, ``EDQUOT``, ``EFBIG``, ...). Can also be built from its
    message alone (torch re-raises a DataLoader worker's error as ``type(err)(message)``)."""


def cache_write_error(
    err: OSError, path: Path, cache_dir: Path, max_bytes: int | None = None, url: str | None = None
) -> CacheWriteError:
    """``err`` (a failed write of ``path``, which holds bytes of ``url``) as a ``CacheWriteError`` that
    says what to change."""
    bound = "" if max_bytes is None else f" (now {max_bytes} bytes)"
    reason = err.strerror or str(err)
    where = "" if url is None else f"{url}: "
    message = (
        f"{where}cannot write {path.name} in the video cache directory {cache_dir}: {reason}. Free space "
        f"there, point video_cache_dir at a local disk with more room, or set video_cache_max_bytes{bound} "
        "below its free space (it must still hold one sample's videos), or pass video_cache='memory'"
    )
    return CacheWriteError(err.errno, message) if err.errno else CacheWriteError(message)


def owner_id() -> str:
    """A new owner id of this process: pid, process start time (robust to pid reuse), instance tag."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}:{uuid.uuid4().hex[:8]}"


_LIVE_FOR_S = 1.0
_alive_cache: dict[str, float] = {}  # owner -> when it was last seen alive (this process's view)


def owner_alive(owner: str) -> bool:
    """Whether the process named by ``owner`` still runs (same pid and start time).

    A live answer is reused for ``_LIVE_FOR_S`` (pruning a crashed owner may wait that long); a
    dead one is final.
    """
    seen = _alive_cache.get(owner)
    now = time.monotonic()
    if seen is not None and now - seen < _LIVE_FOR_S:
        return True
    alive = _owner_alive(owner)
    if alive:
        if len(_alive_cache) > 4096:
            _alive_cache.clear()
        _alive_cache[owner] = now
    else:
        _alive_cache.pop(owner, None)
    return alive


def _owner_alive(owner: str) -> bool:
    pid_text, _, rest = owner.partition(":")
    start = rest.partition(":")[0]
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return _start_time(pid) == start


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "dead"
    # Fields after the parenthesised command name; the start time is field 22 (index 19 after it).
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()


def file_key(url: str) -> str:
    """The cache key of ``url``: a hash plus the file's extension (decoders like to see ``.mp4``)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:32]
    suffix = Path(url.split("?", 1)[0]).suffix
    return digest + (suffix if suffix.isascii() and len(suffix) <= 8 else "")


def range_key(url: str, start: int, end: int) -> str:
    """The cache key of bytes ``[start, end)`` of ``url``."""
    return f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.{start}-{end}.seg"


def header_key(url: str) -> str:
    """The cache key of the header (and sample index) of the video file ``url``."""
    return f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.hdr"


class CacheState:
    """Locked access to the record of ``<cache_dir>``; see Note [Owners and crashed processes]."""

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._slots = [self.dir / name for name in _SLOTS]
        self._lock_path = self.dir / _LOCK
        self._descriptors = _Descriptors(self._lock_path, self._slots)
        self._paths: dict[str, Path] = {}

    shared = True  # other processes see these entries

    def data_path(self, key: str) -> Path:
        """Where the complete file of ``key`` lives."""
        path = self._paths.get(key)  # a lease asks per sample; joining paths costs ~10 us
        if path is None:
            if len(self._paths) > 4096:
                self._paths.clear()
            path = self._paths[key] = self.dir / key
        return path

    def part_path(self, key: str, owner: str) -> Path:
        """The temporary name ``owner`` downloads ``key`` to (renamed to ``data_path`` when whole)."""
        return self.dir / f".{key}.part-{owner.replace(':', '-')}"

    # --- entries --------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether the complete entry ``key`` exists."""
        return self.data_path(key).exists()

    def backing(self, key: str) -> Path:
        """The complete entry ``key``: its path."""
        return self.data_path(key)

    def open_part(self, key: str, owner: str) -> IO[bytes]:
        """A new, empty temporary file for ``owner``'s download of ``key``."""
        return open(self.part_path(key, owner), "wb")  # closed by finish() or discard()

    def finish(self, part: IO[bytes]) -> int:
        """Writes out and closes the downloaded ``part`` (the last step that can find the disk full);
        its size. ``commit`` then makes it the entry.

        No fsync: the cache is scratch space read back through this node's page cache, where the
        rename publishes the whole file at once; after a machine crash every owner is dead and the
        next process's sweep deletes what was there (an fsync cost ~4 ms per entry here).
        """
        try:
            part.flush()
            return part.tell()
        finally:
            with contextlib.suppress(OSError):  # the error, if any, came from flush
                part.close()

    def commit(self, key: str, owner: str) -> None:
        """Makes ``owner``'s finished download of ``key`` the complete entry (atomic rename)."""
        os.rename(self.part_path(key, owner), self.data_path(key))

    def discard(self, key: str, owner: str, part: IO[bytes] | None) -> None:
        """Drops ``owner``'s temporary download of ``key``."""
        if part is not None:
            part.close()
        _unlink(self.part_path(key, owner))

    def delete(self, key: str) -> None:
        """Deletes the complete entry ``key`` (a decoder that has it open keeps reading it)."""
        _unlink(self.data_path(key))

    def part_bytes(self, key: str) -> int:
        """Bytes of ``key`` downloaded so far by anyone (for progress bars)."""
        total = 0
        for part in stale_parts(self.dir, key):
            with contextlib.suppress(FileNotFoundError):
                total += os.path.getsize(part)
        return total

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The records (key -> record), pruned of dead owners; changes are saved on exit."""
        descriptors = self._descriptors
        with descriptors.locked() as slot_fds:
            generation, before, files = descriptors.load()
            self._prune(files)
            try:
                yield files
            except BaseException:
                descriptors.known = None  # half-changed records: read the slots again next time
                raise
            data = _dumps(files)
            if data != before:  # same bytes as what was read: nothing changed
                slot = (generation + 1) % 2
                try:
                    _write_slot(slot_fds, slot, generation + 1, data)
                except OSError as err:
                    descriptors.known = None
                    raise cache_write_error(err, self._slots[slot], self.dir) from err
                descriptors.remember(generation + 1, data, files)

    def want_room(self) -> None:
        """Tells the other processes that a lease waits for room (they drop their idle pins)."""
        with contextlib.suppress(OSError):
            fd = os.open(self.dir / _ROOM, os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
            os.utime(self.dir / _ROOM)

    def room_wanted(self) -> bool:
        """Whether a lease of any process waited for room in the last second."""
        try:
            return time.time() - os.stat(self.dir / _ROOM).st_mtime < _ROOM_FRESH_S
        except OSError:
            return False

    def sweep_orphans(self) -> None:
        """Deletes data and temporary files no record accounts for (left by a crash); takes the lock."""
        with self.locked() as files:
            for path in self.dir.iterdir():
                name = path.name
                if name in INTERNAL_FILES:
                    continue
                if name.startswith(".state"):  # an older version's state file
                    _unlink(path)
                    continue
                if name.startswith("."):  # .<key>.part-<pid>-<start>
                    key, _, owner = name[1:].partition(".part-")
                    record = files.get(key)
                    if record is None or (record.get("downloader") or "").replace(":", "-") != owner:
                        _unlink(path)
                elif name not in files or files[name]["status"] != "ready":
                    _unlink(path)

    # --- internals ------------------------------------------------------------------------------
    def _prune(self, files: dict[str, dict[str, Any]]) -> None:
        alive: dict[str, bool] = {}

        def is_alive(owner: str) -> bool:
            if owner not in alive:
                alive[owner] = owner_alive(owner)
            return alive[owner]

        for key in list(files):
            record = files[key]
            for field in ("refs", "pins"):
                owners = record[field]
                if not all(is_alive(o) for o in owners):
                    record[field] = {o: n for o, n in owners.items() if is_alive(o)}
            downloader = record.get("downloader")
            if downloader is not None and not is_alive(downloader):
                _unlink(self.part_path(key, downloader))
                record["downloader"] = None
                record["status"] = "queued"
            if unreferenced(record):
                self.forget(files, key)

    def forget(self, files: dict[str, dict[str, Any]], key: str) -> None:
        """Drops ``key``'s record and its complete file (its downloader discards its own part)."""
        record = files.pop(key)
        if record["status"] == "ready":
            self.delete(key)


class MemoryCacheState:
    """``CacheState``'s record and entry operations in this process's memory (entries are ``bytes``).

    One instance per process: a forked child must make its own (the prefetcher does).
    """

    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, Any]] = {}
        self._data: dict[str, bytes] = {}
        self._parts: dict[tuple[str, str], io.BytesIO] = {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The records (key -> record); every owner is this process, so nothing is pruned."""
        with self._lock:
            yield self._files

    def sweep_orphans(self) -> None:
        """Nothing to sweep: memory does not outlive its process."""

    def want_room(self) -> None:
        """Nothing to tell: no other process shares this memory."""

    def room_wanted(self) -> bool:
        return False

    def forget(self, files: dict[str, dict[str, Any]], key: str) -> None:
        """Drops ``key``'s record and its bytes."""
        files.pop(key)
        self._data.pop(key, None)

    def has(self, key: str) -> bool:
        return key in self._data

    def backing(self, key: str) -> bytes:
        """The complete entry ``key``: its bytes (KeyError once deleted)."""
        return self._data[key]

    def open_part(self, key: str, owner: str) -> IO[bytes]:
        part = io.BytesIO()
        self._parts[(key, owner)] = part
        return part

    def finish(self, part: IO[bytes]) -> int:
        return part.seek(0, io.SEEK_END)

    def commit(self, key: str, owner: str) -> None:
        self._data[key] = self._parts.pop((key, owner)).getvalue()

    def discard(self, key: str, owner: str, part: IO[bytes] | None) -> None:
        self._parts.pop((key, owner), None)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def part_bytes(self, key: str) -> int:
        return sum(p.getbuffer().nbytes for (k, _), p in list(self._parts.items()) if k == key)


class _Descriptors:
    """The lock and slot files of one cache directory, opened once per process.

    Note [Cache record descriptors]
    ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    The record changes several times per episode segment; opening and closing the lock and both slot
    files for every change cost more than the change itself (Python file objects: about a millisecond
    per locked section). So each process opens them once and reads and writes with ``pread``/``pwrite``;
    and it keeps the record it last read or wrote (``known``: the slot's first line, its bytes and the
    parsed records): while the newest slot's first line is still that one, nobody wrote since, and the
    records are reused without reading or parsing the slot again (the line holds generation, length and
    CRC, so a record rewritten from scratch cannot pass for it). ``flock`` excludes per open file
    description, which the threads of a process share, so a thread lock serialises them first and the
    flock then excludes other processes. A forked child must not share its parent's descriptions (their
    flock would be one lock): it opens its own (``os.register_at_fork``). A lock or slot file unlinked
    behind our back (the directory removed and made again) is opened anew, so every process keeps
    locking the same file.
    """

    def __init__(self, lock_path: Path, slots: list[Path]) -> None:
        self._lock_path, self._slot_paths = lock_path, slots
        self._thread_lock = threading.Lock()
        self._fds: list[int] = []  # lock, slot 0, slot 1 (empty: not opened in this process)
        self.known: tuple[bytes, bytes, dict[str, dict[str, Any]]] | None = None
        _OPEN_DESCRIPTORS.add(self)

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[int]]:
        """Holds the thread lock and the flock; yields the two slot descriptors."""
        with self._thread_lock:
            if not self._fds or any(os.fstat(fd).st_nlink == 0 for fd in self._fds):
                self._reopen()
            fcntl.flock(self._fds[0], fcntl.LOCK_EX)
            try:
                yield self._fds[1:]
            finally:
                fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def load(self) -> tuple[int, bytes, dict[str, dict[str, Any]]]:
        """(generation, record bytes, records) of the newest valid slot (Note [State slots]); call
        it under ``locked()``. The records are this object's own copy (``known``), which ``locked``'s
        caller may change: ``remember`` what was written, or set ``known`` to None."""
        fds = self._fds[1:]
        if self.known is not None:
            head = self.known[0]
            firsts = [os.pread(fd, len(head), 0) for fd in fds]
            if head in firsts and all(_generation(first) <= _generation(head) for first in firsts):
                return _generation(head), self.known[1], self.known[2]
        slots = [_parse_slot(os.pread(fd, os.fstat(fd).st_size, 0)) for fd in fds]
        generation, data, files = _parse_newest(slots)
        self.known = (_head(generation, data), data, files) if data else None
        return generation, data, files

    def remember(self, generation: int, data: bytes, files: dict[str, dict[str, Any]]) -> None:
        """Keeps ``files``, just written as ``data`` with ``generation``, for the next ``load``."""
        self.known = (_head(generation, data), data, files)

    def _reopen(self) -> None:
        self._close()
        try:
            for path in (self._lock_path, *self._slot_paths):
                self._fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except FileNotFoundError as err:
            self._close()
            cache_dir = self._lock_path.parent
            raise CacheWriteError(
                err.errno,
                f"the video cache directory {cache_dir} is gone (removed while in use, e.g. by a /tmp "
                "cleaner): point video_cache_dir at a directory nothing else removes, or pass "
                "video_cache='memory'",
            ) from err

    def _close(self) -> None:
        self.known = None
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def after_fork_in_child(self) -> None:
        self._thread_lock = threading.Lock()  # the parent's may have been held by another thread
        self._close()  # our copies only: the parent's descriptions (and any flock on them) stay

    def __del__(self) -> None:
        # not contextlib.suppress: at interpreter shutdown, module globals may be gone already
        try:  # noqa: SIM105
            self._close()
        except Exception:
            pass


_OPEN_DESCRIPTORS: weakref.WeakSet[_Descriptors] = weakref.WeakSet()


def _reopen_descriptors_in_child() -> None:
    for descriptors in list(_OPEN_DESCRIPTORS):
        descriptors.after_fork_in_child()


os.register_at_fork(after_in_child=_reopen_descriptors_in_child)


def _head(generation: int, data: bytes) -> bytes:
    """A slot's first line: generation, length and CRC of the record bytes that follow it."""
    return f"{generation} {len(data)} {zlib.crc32(data)}\n".encode()


def _generation(first: bytes) -> int:
    """The generation in a slot's first bytes (-1 when they do not start with one)."""
    try:
        return int(first.split(b" ", 1)[0])
    except ValueError:
        return -1


def _write_slot(fds: list[int], slot: int, generation: int, data: bytes) -> None:
    """Writes the record bytes into slot ``slot`` of the slot descriptors ``fds``, in place; grows both
    slots first when it does not fit (Note [Writes on a full disk])."""
    head = _head(generation, data)
    if os.fstat(fds[slot]).st_size < len(head) + len(data):
        capacity = -(-(len(head) + len(data) + _SLOT_SLACK) // _SLOT_STEP) * _SLOT_STEP
        for fd in fds:
            if os.fstat(fd).st_size < capacity:
                try:
                    os.posix_fallocate(fd, 0, capacity)
                except OSError as err:  # a file system that cannot reserve: grow it sparse
                    if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    os.ftruncate(fd, capacity)
    os.pwrite(fds[slot], head + data, 0)  # the bytes after it are ignored


def _read_slot(path: Path) -> tuple[int, bytes] | None:
    """(generation, record bytes) of a slot file, or None when missing, torn or damaged."""
    try:
        with open(path, "rb") as f:
            return _parse_slot(f.read())
    except OSError:
        return None


def _parse_slot(raw: bytes) -> tuple[int, bytes] | None:
    head, _, body = raw.partition(b"\n")
    try:
        generation, length, crc = (int(x) for x in head.split())
    except ValueError:
        return None
    data = body[:length]
    if len(data) != length or zlib.crc32(data) != crc:
        return None
    return generation, data


def _parse_newest(slots: list[tuple[int, bytes] | None]) -> tuple[int, bytes, dict[str, dict[str, Any]]]:
    best: tuple[int, bytes] = (0, b"")
    for slot in slots:
        if slot is not None and slot[0] > best[0]:
            best = slot
    generation, data = best
    if not data:
        return generation, b"", {}
    try:
        raw = marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return generation, b"", {}
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        return generation, b"", {}  # foreign: start over; sweep_orphans() removes what it held
    return generation, data, raw.get("files", {})


def read_records(cache_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The records of a cache directory as they stand (no lock, no pruning; for tests and tools)."""
    return _parse_newest([_read_slot(Path(cache_dir) / name) for name in _SLOTS])[2]


def _dumps(files: dict[str, dict[str, Any]]) -> bytes:
    return marshal.dumps({"version": STATE_VERSION, "files": files}, _MARSHAL_FORMAT)


def unreferenced(record: dict[str, Any]) -> bool:
    """Whether an entry's record (and its bytes) can go: no process references it and no download of
    it runs (a live download drops the record itself when it ends: Note [Unreferenced downloads])."""
    return not record["refs"] and record["status"] != "downloading"


def resident_bytes(files: dict[str, dict[str, Any]]) -> int:
    """Bytes on disk or being written: sizes of ready and downloading files."""
    return sum(r["size"] or 0 for r in files.values() if r["status"] != "queued")


def new_record(url: str, size: int | None, kind: str = "file") -> dict[str, Any]:
    """A fresh record of an entry nobody downloaded yet."""
    return {
        "url": url,
        "kind": kind,
        "size": size,
        "status": "queued",
        "downloader": None,
        "refs": {},
        "pins": {},
        "last_used": time.time(),
    }


def _unlink(path: Path) -> None:
    """Deletes ``path`` (gone already is fine); a cache directory that refuses is a ``CacheWriteError``
    naming it (e.g. made read-only mid-run), not a bare ``PermissionError``."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise cache_write_error(err, path, path.parent) from err


def stale_parts(cache_dir: Path, key: str) -> list[str]:
    """Temporary files of ``key`` in ``cache_dir`` (for tests and diagnostics)."""
    return glob.glob(str(cache_dir / f".{key}.part-*"))
