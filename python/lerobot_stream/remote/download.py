"""Transfers of remote bytes, with retries: whole files, byte ranges, sizes; HTTP(S) or fsspec.

The transfer layer of the remote readers: no caching, no refcounts. Every function retries
transient failures and resumes where the last attempt stopped (Note [Transient and permanent
errors] in ``lerobot_stream.remote.retry``):

    fetch_size(url, policy)                       the file's size (HEAD, or fsspec ``size``)
    probe(url, length, policy)                    the first ``length`` bytes and the file's size,
                                                  in one range request (RangeNotSupportedError when
                                                  the server ignores ``Range``)
    read_range(url, start, end, policy)           bytes [start, end) in memory
    read_suffix(url, length, policy)              the last ``length`` bytes and the file's size
    read_all(url, policy)                         a small file (metadata) in memory
    download(url, out, size, policy)              the whole file into the binary file ``out``
    download_range(url, start, end, out, policy)  bytes [start, end) into ``out``
    fs_glob(base_url, pattern, policy)            paths under ``base_url`` matching ``pattern`` (fsspec)

HTTP(S) goes through ``lerobot_stream.remote.http_client`` (Range requests, redirects, the Hub token);
other URLs (``s3://``, ``gs://``, ...) through fsspec (``cat_file(path, start=, end=)``). A download
checks that exactly the expected number of bytes arrived; ``out`` is written from its position at
the call (a file opened ``wb`` or a ``BytesIO``) and truncated back to it before a restart.

Thread-safe: every call is independent.
"""

from __future__ import annotations

import http.client
import io
import time
from collections.abc import Callable
from typing import IO, Any

from lerobot_stream.remote.http_client import content_range, is_http_url, open_http
from lerobot_stream.remote.retry import (
    RangeNotSupportedError,
    RemoteFileError,
    RemoteFileNotFoundError,
    RetryPolicy,
    TransientError,
    with_retries,
)

_CHUNK = 1 << 20
Counter = Callable[[int], None]


def _no_count(n: int) -> None:
    pass


def _no_retry() -> None:
    pass


def fetch_size(url: str, policy: RetryPolicy, on_retry: Callable[[], None] = _no_retry) -> int:
    """The size in bytes of the remote file ``url`` (HTTP HEAD, or fsspec ``size``)."""

    def head() -> int:
        if not is_http_url(url):
            return _classify_fs(url, lambda: _fs_size(url))
        with open_http(url, policy, method="HEAD") as resp:
            length = resp.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RemoteFileError(url, "the server did not send Content-Length", permanent=True)
        return int(length)

    return with_retries(url, policy, head, on_retry)


def probe(
    url: str, length: int, policy: RetryPolicy, on_bytes: Counter = _no_count, on_retry=_no_retry
) -> tuple[bytes, int]:
    """``(the first min(length, size) bytes, size)`` of ``url``, from one range request when possible.

    Raises ``RangeNotSupportedError`` when an HTTP server answers with the whole file (200): the
    body is not read (the connection is closed at once).
    """

    def attempt() -> tuple[bytes, int]:
        if not is_http_url(url):
            size = _classify_fs(url, lambda: _fs_size(url))
            data = _classify_fs(url, lambda: _fs_cat(url, 0, min(length, size)))
            on_bytes(len(data))
            return data, size
        with open_http(url, policy, start=0, end=length) as resp:
            if resp.status != 206:
                raise RangeNotSupportedError(url)
            parsed = content_range(resp)
            if parsed is None or parsed[0] != 0 or parsed[2] is None:
                raise RemoteFileError(url, "206 answer without a usable Content-Range", permanent=True)
            out = io.BytesIO()
            _copy_body(url, resp, out, parsed[1] + 1, on_bytes, policy)
            return out.getvalue(), parsed[2]

    return with_retries(url, policy, attempt, on_retry)


def read_range(
    url: str, start: int, end: int, policy: RetryPolicy, on_bytes: Counter = _no_count, on_retry=_no_retry
) -> bytes:
    """Bytes ``[start, end)`` of ``url``; raises ``RangeNotSupportedError`` if ranges are ignored."""
    out = io.BytesIO()
    download_range(url, start, end, out, policy, on_bytes, on_retry)
    return out.getvalue()


def read_suffix(
    url: str, length: int, policy: RetryPolicy, on_bytes: Counter = _no_count, on_retry=_no_retry
) -> tuple[bytes, int]:
    """``(the last min(length, size) bytes, size)`` of ``url`` (one suffix range request over HTTP)."""

    def attempt() -> tuple[bytes, int]:
        if not is_http_url(url):
            size = _classify_fs(url, lambda: _fs_size(url))
            data = _classify_fs(url, lambda: _fs_cat(url, max(size - length, 0), size))
            on_bytes(len(data))
            return data, size
        with open_http(url, policy, suffix=length) as resp:
            if resp.status != 206:
                raise RangeNotSupportedError(url)
            parsed = content_range(resp)
            if parsed is None or parsed[2] is None or parsed[1] + 1 != parsed[2]:
                raise RemoteFileError(url, f"206 answer for the wrong range ({parsed})", permanent=True)
            out = io.BytesIO()
            _copy_body(url, resp, out, parsed[1] + 1 - parsed[0], on_bytes, policy)
            data = out.getvalue()
            if len(data) != parsed[1] + 1 - parsed[0]:
                raise TransientError(f"short body: got {len(data)} of {parsed[1] + 1 - parsed[0]} bytes")
            return data, parsed[2]

    return with_retries(url, policy, attempt, on_retry)


def read_all(url: str, policy: RetryPolicy, on_retry: Callable[[], None] = _no_retry) -> bytes:
    """The whole (small) file ``url`` in memory: one GET, retried from scratch on failure."""

    def attempt() -> bytes:
        if not is_http_url(url):
            return _classify_fs(url, lambda: _fs_cat(url, None, None))
        with open_http(url, policy) as resp:
            announced = resp.headers.get("Content-Length")
            out = io.BytesIO()
            _copy_body(url, resp, out, None, _no_count, policy)
            data = out.getvalue()
        if announced is not None and announced.isdigit() and len(data) != int(announced):
            raise TransientError(f"short body: got {len(data)} of {announced} bytes")
        return data

    return with_retries(url, policy, attempt, on_retry)


def download(
    url: str,
    out: IO[bytes],
    size: int,
    policy: RetryPolicy,
    on_bytes: Counter = _no_count,
    on_retry: Callable[[], None] = _no_retry,
) -> None:
    """Writes the ``size`` bytes of ``url`` to ``out``; raises RemoteFileError naming ``url``."""
    base = out.tell()

    def attempt() -> None:
        have = out.tell() - base
        if is_http_url(url):
            _http_copy(url, out, base, have, size, policy, on_bytes, ranged=False)
        else:
            _fs_copy(url, out, have, on_bytes)
        _check_count(url, out.tell() - base, size)

    with_retries(url, policy, attempt, on_retry)


def download_range(
    url: str,
    start: int,
    end: int,
    out: IO[bytes],
    policy: RetryPolicy,
    on_bytes: Counter = _no_count,
    on_retry: Callable[[], None] = _no_retry,
) -> None:
    """Writes bytes ``[start, end)`` of ``url`` to ``out`` (range requests, resumed on retry)."""
    if not 0 <= start < end:
        raise ValueError(f"{url}: bad byte range [{start}, {end})")
    base = out.tell()
    size = end - start

    def attempt() -> None:
        have = out.tell() - base
        if is_http_url(url):
            _http_copy(url, out, base - start, start + have, end, policy, on_bytes, ranged=True)
        else:
            data = _classify_fs(url, lambda: _fs_cat(url, start + have, end))
            out.write(data)
            on_bytes(len(data))
        _check_count(url, out.tell() - base, size)

    with_retries(url, policy, attempt, on_retry)


def fs_glob(base_url: str, pattern: str, policy: RetryPolicy) -> list[str]:
    """Paths relative to ``base_url`` (an fsspec URL) that match the glob ``pattern``."""

    def attempt() -> list[str]:
        fs, base = fs_and_path(base_url)
        base = base.rstrip("/")
        return [p[len(base) + 1 :] for p in fs.glob(f"{base}/{pattern}")]

    return with_retries(base_url, policy, lambda: _classify_fs(base_url, attempt))


# --- internals ----------------------------------------------------------------------------------
def _check_count(url: str, got: int, size: int) -> None:
    if got < size:
        raise TransientError(f"short body: got {got} of {size} bytes")
    if got > size:
        raise RemoteFileError(url, f"file is larger than expected: {got} > {size} bytes", permanent=True)


def _http_copy(
    url: str,
    out: IO[bytes],
    origin: int,
    first: int,
    end: int,
    policy: RetryPolicy,
    on_bytes: Counter,
    *,
    ranged: bool,
) -> None:
    """Copies bytes ``[first, end)`` of the file to ``out`` at position ``origin + offset``.

    ``ranged``: the caller needs a range (a 200 is an error); otherwise a 200 restarts the file.
    """
    with open_http(url, policy, start=first, end=end if ranged else None) as resp:
        if resp.status == 206:
            parsed = content_range(resp)
            if parsed is None or parsed[0] != first:
                raise RemoteFileError(url, f"206 answer for the wrong range ({parsed})", permanent=True)
            total = parsed[2]
        else:  # the whole file: start over from its first byte (fine unless a range was needed)
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
            if ranged and (first > 0 or total != end):
                raise RangeNotSupportedError(url)
            first = 0
        if not ranged and total is not None and total != end:
            raise RemoteFileError(url, f"the server has {total} bytes, expected {end}", permanent=True)
        out.seek(origin + first)
        out.truncate()
        _copy_body(url, resp, out, end - first, on_bytes, policy)


def _copy_body(
    url: str, resp: Any, out: IO[bytes], want: int | None, on_bytes: Counter, policy: RetryPolicy
) -> None:
    """Reads at most ``want`` bytes (plus one, to notice an oversized body; None: to the end) of
    ``resp`` into ``out``, as they arrive (``read1``: a partial read counts, and a stall names what
    came), failing as too slow below ``policy.min_bytes_per_s`` once ``policy.timeout_s`` has passed."""
    got = 0
    started = time.monotonic()
    of = "" if want is None else f" of {want}"
    while True:
        ask = _CHUNK if want is None else min(_CHUNK, max(want - got, 0) + 1)
        try:
            chunk = resp.read1(ask)
        except (OSError, http.client.HTTPException) as err:
            raise TransientError(f"{type(err).__name__} after {got}{of} bytes: {err}") from err
        if not chunk:
            return
        out.write(chunk)  # a failed write (full disk) is no network error: raised as it is
        got += len(chunk)
        on_bytes(len(chunk))
        if want is not None and got > want:
            return
        elapsed = time.monotonic() - started
        if elapsed > policy.timeout_s and got < policy.min_bytes_per_s * elapsed:
            raise TransientError(
                f"too slow: {got}{of} bytes in {elapsed:.0f} s (below min_bytes_per_s="
                f"{policy.min_bytes_per_s:g} of the RetryPolicy)"
            )


def fs_and_path(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url``; ImportError naming what to install."""
    try:
        import fsspec
    except ImportError as err:
        raise ImportError(
            f"Reading {url} needs fsspec: pip install 'lerobot-stream[remote]' (fsspec, s3fs, aiohttp)"
        ) from err
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise ImportError(f"Reading {url}: {err}") from err


def _fs_size(url: str) -> int:
    fs, path = fs_and_path(url)
    size = fs.size(path)
    if size is None:
        raise RemoteFileError(url, "the store did not report a size", permanent=True)
    return int(size)


def _fs_cat(url: str, start: int | None, end: int | None) -> bytes:
    fs, path = fs_and_path(url)
    return bytes(fs.cat_file(path, start=start, end=end))


def _fs_copy(url: str, out: IO[bytes], have: int, on_bytes: Counter) -> None:
    fs, path = fs_and_path(url)
    with _classify_fs(url, lambda: fs.open(path, "rb", block_size=0 if have == 0 else None)) as src:
        if have:
            _classify_fs(url, lambda: src.seek(have))
        while chunk := _classify_fs(url, lambda: src.read(_CHUNK)):
            out.write(chunk)  # outside _classify_fs: a failed write (full disk) is no network error
            on_bytes(len(chunk))


def _classify_fs(url: str, op: Callable[[], Any]) -> Any:
    try:
        return op()
    except RemoteFileError:
        raise
    except FileNotFoundError as err:
        raise RemoteFileNotFoundError(url, f"{type(err).__name__}: {err}") from err
    except (PermissionError, IsADirectoryError) as err:
        raise RemoteFileError(url, f"{type(err).__name__}: {err}", permanent=True) from err
    except ImportError:
        raise
    except Exception as err:  # fsspec backends raise many types (aiohttp, botocore): retry them
        raise TransientError(f"{type(err).__name__}: {err}") from err
