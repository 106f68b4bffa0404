"""HTTP(S) requests of the remote readers: one request, its Range, the Hub token, remembered redirects.

``open_http(url, policy, start=, end=)`` sends one GET (or HEAD) and returns the open response, or
raises ``TransientError`` (retry it) / ``RemoteFileError`` (permanent). ``content_range`` parses a
206 answer. No retries here: callers wrap requests in ``lerobot_stream.remote.retry.with_retries``.

Note [Redirects and the Hub token]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The Hugging Face Hub answers a file request with a redirect to a signed CDN URL that expires.
Redirects are followed, and the final URL is remembered per requested URL (per process), so the
following range requests of that file go straight to it. A 401/403 from a URL we were redirected
to (remembered or fresh) means the signature expired: the original URL is asked again once (a new
redirect) and the same range retried; a second denial is permanent. A 401/403 from the original
host itself is permanent at once. The Hub token (``$HF_TOKEN``) is sent only to the Hub endpoint
(``$HF_ENDPOINT``, default https://huggingface.co, compared by scheme, host and port), as an
"unredirected" header: never to the CDN or any other host.

Thread-safe: the redirect memory is guarded by a lock; responses belong to their caller.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from lerobot_stream.remote.retry import RemoteFileError, RemoteFileNotFoundError, RetryPolicy, TransientError

_TRANSIENT_HTTP = {408, 425, 429}
_DENIED = {401, 403}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_redirects: dict[str, str] = {}
_redirects_lock = threading.Lock()


def is_http_url(url: str) -> bool:
    """True for ``http://`` and ``https://`` URLs."""
    return url.startswith(("http://", "https://"))


def hf_endpoint() -> str:
    """The Hub's base URL: ``$HF_ENDPOINT`` or https://huggingface.co (read at call time)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def hf_token(url: str) -> str | None:
    """The token to send with ``url``: ``$HF_TOKEN`` when ``url`` is on the Hub endpoint, else None."""
    token = os.environ.get("HF_TOKEN")
    if not token or _origin(url) != _origin(hf_endpoint()):
        return None
    return token


def forget_redirects() -> None:
    """Drops every remembered redirect (tests; a long-lived process never needs it)."""
    with _redirects_lock:
        _redirects.clear()


def open_http(
    url: str,
    policy: RetryPolicy,
    *,
    start: int | None = None,
    end: int | None = None,
    suffix: int | None = None,
    method: str = "GET",
) -> http.client.HTTPResponse:
    """Sends one request for ``url`` and returns the open response.

    Asks for bytes ``[start, end)`` (``end`` None: to the end of the file) when ``start`` is given,
    or for the last ``suffix`` bytes.

    See Note [Redirects and the Hub token]. Raises ``TransientError`` for failures worth retrying
    and ``RemoteFileError(permanent=True)`` for the others (naming ``url``).
    """
    with _redirects_lock:
        target = _redirects.get(url, url)
    try:
        return _open(url, target, policy, _range_header(start, end, suffix), method)
    except urllib.error.HTTPError as err:
        denied_by = err.geturl() or target
        err.close()
        if err.code not in _DENIED or denied_by == url:
            raise _classify(url, err) from err
    with _redirects_lock:  # an expired redirect: resolve once more from the original URL
        _redirects.pop(url, None)
    try:
        return _open(url, url, policy, _range_header(start, end, suffix), method)
    except urllib.error.HTTPError as err:
        err.close()
        raise _classify(url, err) from err


def content_range(resp: http.client.HTTPResponse) -> tuple[int, int, int | None] | None:
    """``(first, last, total)`` of a 206 answer's Content-Range (total None when ``*``), else None."""
    match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if match is None:
        return None
    total = match.group(3)
    return int(match.group(1)), int(match.group(2)), None if total == "*" else int(total)


def _range_header(start: int | None, end: int | None, suffix: int | None) -> str | None:
    if suffix is not None:
        return f"bytes=-{suffix}"
    if start is None or (start == 0 and end is None):
        return None
    return f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"


def _open(
    url: str, target: str, policy: RetryPolicy, byte_range: str | None, method: str
) -> http.client.HTTPResponse:
    # Byte offsets address the file as stored: ask for it unencoded (below: refuse anything else).
    headers = {"User-Agent": "lerobot-stream", "Accept-Encoding": "identity"}
    request = urllib.request.Request(target, method=method, headers=headers)
    if byte_range is not None:
        request.add_header("Range", byte_range)
    token = hf_token(target)
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        resp = urllib.request.urlopen(request, timeout=policy.timeout_s)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise TransientError(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from err
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        resp.close()
        raise RemoteFileError(
            url,
            f"the server sent the body with Content-Encoding: {encoding} although identity was asked; "
            "byte ranges need the file's bytes as stored",
            permanent=True,
        )
    final = resp.geturl()
    if final != target:
        with _redirects_lock:
            _redirects[url] = final
    return resp


def _classify(url: str, err: urllib.error.HTTPError) -> Exception:
    if err.code in _TRANSIENT_HTTP or err.code >= 500:
        return TransientError(f"HTTP {err.code} {err.reason}")
    if err.code == 404:
        return RemoteFileNotFoundError(url, f"HTTP 404 {err.reason}")
    return RemoteFileError(url, f"HTTP {err.code} {err.reason}", permanent=True)
