"""Downloads one remote file to a local path, with retries: HTTP(S) by ranged GETs, others via fsspec.

The transfer layer of the video prefetcher: no caching, no refcounts. ``fetch_size(url)`` asks the
server for a file's size; ``download(url, dest, size, policy, on_bytes)`` writes the whole file to
``dest`` (a temporary name chosen by the caller) and checks that exactly ``size`` bytes arrived.

Note [Transient and permanent errors]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Retried with exponential backoff and jitter (``policy.backoff_s * 2**attempt``, capped at
``policy.max_backoff_s``, times a uniform factor in [0.5, 1.5]): connection refused/reset/aborted,
a body shorter than announced (``IncompleteRead``, or fewer bytes than the expected size), a read
that stalls longer than ``policy.timeout_s`` (socket timeout), HTTP 408, 425, 429 and 5xx.
Permanent, raised at once as ``RemoteFileError(permanent=True)``: HTTP 4xx other than those (404
missing, 401/403 denied, 416 bad range), ``FileNotFoundError``/``PermissionError`` from fsspec, a
file larger than expected. After ``policy.retries`` retries the last transient error is raised as
``RemoteFileError(permanent=False)``. Every message names the URL. A retry of an HTTP download asks
only for the missing tail (``Range: bytes=N-``) when the server honours ranges (206); on a plain
200 it starts over.

Thread-safe: every call is independent.
"""

from __future__ import annotations

import http.client
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from lerobot_stream.remote import hf_token, is_http_url, open_fs_file, remote_size

_CHUNK = 1 << 20
_TRANSIENT_HTTP = {408, 425, 429}


class RemoteFileError(OSError):
    """A remote file could not be read; ``url`` names it, ``permanent`` says whether retrying may help."""

    def __init__(self, url: str, reason: str, *, permanent: bool) -> None:
        kind = "permanent error" if permanent else "gave up after retries"
        super().__init__(f"{url}: {reason} ({kind})")
        self.url = url
        self.reason = reason
        self.permanent = permanent


class _Transient(Exception):
    """Internal: an error worth retrying."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a download tries: retries, backoff (seconds) and the stall timeout of one read."""

    retries: int = 6
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    timeout_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before retry ``attempt`` (0-based): exponential, capped, jittered."""
        return min(self.backoff_s * 2**attempt, self.max_backoff_s) * random.uniform(0.5, 1.5)


def with_retries(url: str, policy: RetryPolicy, op: Callable[[], object], on_retry: Callable[[], None]):
    """Runs ``op``, retrying ``_Transient`` failures; see Note [Transient and permanent errors]."""
    for attempt in range(policy.retries + 1):
        try:
            return op()
        except _Transient as err:
            if attempt == policy.retries:
                raise RemoteFileError(url, str(err), permanent=False) from err
            on_retry()
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")


def fetch_size(url: str, policy: RetryPolicy, on_retry: Callable[[], None] = lambda: None) -> int:
    """The size in bytes of the remote file ``url`` (HTTP HEAD, or fsspec ``size``)."""

    def head() -> int:
        if not is_http_url(url):
            return _classify_fs(url, lambda: remote_size(url))
        with _http_open(url, policy, method="HEAD") as resp:
            length = resp.headers.get("Content-Length")
        if length is None:
            raise RemoteFileError(url, "the server did not send Content-Length", permanent=True)
        return int(length)

    return int(with_retries(url, policy, head, on_retry))


def download(
    url: str,
    dest: str,
    size: int,
    policy: RetryPolicy,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_retry: Callable[[], None] = lambda: None,
) -> None:
    """Writes the ``size`` bytes of ``url`` to ``dest`` (created or truncated); raises RemoteFileError."""
    with open(dest, "wb") as out:

        def attempt() -> None:
            have = out.tell()
            if is_http_url(url):
                _http_copy(url, out, have, size, policy, on_bytes)
            else:
                _classify_fs(url, lambda: _fs_copy(url, out, have, on_bytes))
            got = out.tell()
            if got < size:
                raise _Transient(f"short body: got {got} of {size} bytes")
            if got > size:
                raise RemoteFileError(
                    url, f"file is larger than expected: {got} > {size} bytes", permanent=True
                )

        with_retries(url, policy, attempt, on_retry)
        out.flush()
        os.fsync(out.fileno())


def _http_open(url: str, policy: RetryPolicy, *, method: str = "GET", start: int = 0):
    headers = {"User-Agent": "lerobot-stream"}
    if start:
        headers["Range"] = f"bytes={start}-"
    token = hf_token(url)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        return urllib.request.urlopen(request, timeout=policy.timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code in _TRANSIENT_HTTP or err.code >= 500:
            raise _Transient(f"HTTP {err.code} {err.reason}") from err
        raise RemoteFileError(url, f"HTTP {err.code} {err.reason}", permanent=True) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Transient(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from err


def _http_copy(
    url: str, out: IO[bytes], have: int, size: int, policy: RetryPolicy, on_bytes: Callable[[int], None]
) -> None:
    with _http_open(url, policy, start=have) as resp:
        if have and resp.status != 206:  # the server ignored the range: start over
            out.seek(0)
            out.truncate()
        total = _announced_total(resp)
        if total is not None and total != size:
            raise RemoteFileError(url, f"the server has {total} bytes, expected {size}", permanent=True)
        try:
            while chunk := resp.read(min(_CHUNK, max(size - out.tell(), 0) + 1)):
                out.write(chunk)
                on_bytes(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(f"{type(err).__name__} after {out.tell()} of {size} bytes: {err}") from err


def _announced_total(resp: http.client.HTTPResponse) -> int | None:
    """The whole file's size as the response announces it (Content-Range total, or Content-Length)."""
    if resp.status == 206:
        total = resp.headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _fs_copy(url: str, out: IO[bytes], have: int, on_bytes: Callable[[int], None]) -> None:
    with open_fs_file(url, block_size=0 if have == 0 else None) as src:
        if have:
            src.seek(have)
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            on_bytes(len(chunk))


def _classify_fs(url: str, op: Callable[[], object]):
    try:
        return op()
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise RemoteFileError(url, f"{type(err).__name__}: {err}", permanent=True) from err
    except RemoteFileError:
        raise
    except Exception as err:  # fsspec backends raise many types (aiohttp, botocore): retry them
        raise _Transient(f"{type(err).__name__}: {err}") from err
