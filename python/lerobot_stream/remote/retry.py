"""How remote reads retry, and the errors they raise: ``RetryPolicy``, ``with_retries``, error classes.

Every remote read (metadata, parquet ranges, video headers and segments, whole files) runs through
``with_retries``; the transfer functions (``lerobot_stream.remote.download``) decide which failures are
worth retrying by raising ``TransientError``.

Note [Transient and permanent errors]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Retried with exponential backoff and jitter (``policy.backoff_s * 2**attempt``, capped at
``policy.max_backoff_s``, times a uniform factor in [0.5, 1.5]): connection refused/reset/aborted,
a body shorter than announced (``IncompleteRead``, or fewer bytes than the expected size), a read
that stalls longer than ``policy.timeout_s`` (socket timeout), HTTP 408, 425, 429 and 5xx.
Permanent, raised at once as ``RemoteFileError(permanent=True)``: HTTP 4xx other than those (404
missing, 401/403 denied after one re-resolution, see Note [Redirects and the Hub token] in
``lerobot_stream.remote.http_client``; 416 bad range), ``FileNotFoundError``/``PermissionError`` from
fsspec, a file larger than expected, a server that ignores ``Range`` where a range is needed
(``RangeNotSupportedError``). After ``policy.retries`` retries the last transient error is raised
as ``RemoteFileError(permanent=False)``. Every message names the URL. A retry resumes: it asks only
for the bytes not received yet. A failed *local* write (an ``OSError`` of the file the bytes
go to: a full disk) is no network failure: it is raised as it is, at once.

Thread-safe: every call is independent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class RemoteFileError(OSError):
    """A remote file could not be read; ``url`` names it, ``permanent`` says whether retrying may help.

    Every class here can also be built from its message alone (``url`` then holds the message and
    ``reason`` is empty): torch re-raises a DataLoader worker's error in the main process as
    ``type(err)(message)`` (a RuntimeError when that fails), so the user sees the same class.
    """

    def __init__(self, url: str, reason: str | None = None, *, permanent: bool = True) -> None:
        kind = "permanent error" if permanent else "gave up after retries"
        super().__init__(url if reason is None else f"{url}: {reason} ({kind})")
        self.url = url
        self.reason = reason or ""
        self.permanent = permanent


class RemoteFileNotFoundError(RemoteFileError, FileNotFoundError):
    """The server says the file does not exist (HTTP 404, or fsspec's FileNotFoundError)."""

    def __init__(self, url: str, reason: str | None = None) -> None:
        super().__init__(url, reason, permanent=True)


class RangeNotSupportedError(RemoteFileError):
    """The server answered a ``Range`` request with the whole file (HTTP 200 instead of 206)."""

    def __init__(self, url: str) -> None:
        if any(c.isspace() for c in url):  # a message (URLs hold no blanks): rebuilt from a worker's
            super().__init__(url)
            return
        super().__init__(url, "the server ignores HTTP Range requests (200 instead of 206)", permanent=True)


class ServerUnreachableError(RemoteFileError, ConnectionError):
    """The server holding a dataset could not be reached (refused, reset, timed out, 5xx) after retries."""

    def __init__(self, url: str, reason: str | None = None, attempts: int | None = None) -> None:
        if reason is None:  # rebuilt from its message
            super().__init__(url, permanent=False)
            return
        OSError.__init__(
            self,
            f"Could not reach the server for {url} after {attempts} attempts ({reason}). The dataset "
            "may well exist: check the URL, the network and the server, then retry.",
        )
        self.url = url
        self.reason = reason
        self.permanent = False


class TransientError(Exception):
    """A failure worth retrying (see Note [Transient and permanent errors])."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a remote read tries: retries, backoff (seconds), the stall timeout of one read, and
    the slowest body worth waiting for: once a body has taken ``timeout_s``, it must keep averaging
    ``min_bytes_per_s`` (0: no floor), else the attempt fails as too slow and is retried; a server that
    trickles a byte at a time never goes silent long enough for the stall timeout."""

    retries: int = 6
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    timeout_s: float = 30.0
    min_bytes_per_s: float = 1024.0

    def __post_init__(self) -> None:
        if (
            self.retries < 0
            or self.backoff_s < 0
            or self.max_backoff_s < 0
            or self.timeout_s <= 0
            or self.min_bytes_per_s < 0
        ):
            raise ValueError(
                f"RetryPolicy needs retries, backoffs, min_bytes_per_s >= 0 and timeout_s > 0, got {self}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before retry ``attempt`` (0-based): exponential, capped, jittered."""
        return min(self.backoff_s * 2**attempt, self.max_backoff_s) * random.uniform(0.5, 1.5)


def with_retries(
    url: str, policy: RetryPolicy, op: Callable[[], T], on_retry: Callable[[], None] = lambda: None
) -> T:
    """Runs ``op``, retrying ``TransientError``; see Note [Transient and permanent errors]."""
    for attempt in range(policy.retries + 1):
        try:
            return op()
        except TransientError as err:
            if attempt == policy.retries:
                raise RemoteFileError(url, str(err), permanent=False) from err
            on_retry()
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")
