"""Where a dataset lives: a local directory or an fsspec URL, and range reads of its remote files.

``DatasetLocation`` turns the user's ``repo_id``/``root``/``revision`` into one root that every
reader joins relative paths to (``meta/info.json``, ``data/chunk-000/file-000.parquet``, ...):

    root="/data/ds" or a path that exists        local files, read with the OS
    root="http(s)://host/ds"                     any server that honours Range requests
    root="s3://bucket/ds", "gs://..."            fsspec (needs s3fs / gcsfs installed)
    repo_id="hf://datasets/org/name"             the Hugging Face Hub (needs huggingface_hub);
                                                 ``revision`` (default "main") pins a commit/branch
    repo_id="org/name", no root                  ``$HF_LEROBOT_HOME/org/name`` when it exists,
                                                 else streamed from ``hf://datasets/org/name``

Note [Remote reads]
~~~~~~~~~~~~~~~~~~~
Nothing is downloaded whole up front, and every read retries like a download does (Note [Transient
and permanent errors] in ``lerobot_stream.remote.retry``). JSON metadata and the small metadata parquet
files (tasks, episodes) are read with one GET each, once per process (the metadata is pickled into
DataLoader workers). Data parquet files are opened with exact range requests: the footer once per
process, then the row groups an episode needs (Note [Parquet bytes] in
``lerobot_stream.remote.parquet``). Video files are not read here: the video prefetcher fetches
each file's header once per node and each pooled episode's byte range (``lerobot_stream.remote.video_files``).
A 404 means "missing" (FileNotFoundError naming the file); a server that cannot be reached after
the retries (refused, reset, timed out, 5xx) raises ``ServerUnreachableError`` naming the URL.
``hf://`` files are read through the Hub's ``resolve`` HTTPS URLs (Note [Redirects and the Hub
token] in ``lerobot_stream.remote.http_client``); other schemes (``s3://``, ``gs://``) through fsspec.

Thread-safe: every read is independent; fsspec filesystems are cached per protocol and safe to share.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from lerobot_stream.remote.download import fetch_size, fs_glob, read_all
from lerobot_stream.remote.http_client import hf_endpoint, hf_token, is_http_url
from lerobot_stream.remote.parquet import open_remote_parquet
from lerobot_stream.remote.retry import RemoteFileError, RetryPolicy, ServerUnreachableError

__all__ = ["DatasetLocation", "hf_token", "is_http_url", "is_url", "resolve_location"]

T = TypeVar("T")


def is_url(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` strings (fsspec URLs), False for local paths."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


@dataclass(frozen=True)
class DatasetLocation:
    """The root of one dataset: a local ``Path`` or a URL string; joins and reads relative paths.

    ``root`` is what error messages show. ``download_url(rel)`` is the URL remote reads fetch
    (``hf://`` files map to the Hub's ``resolve`` HTTPS URL, read with range requests). ``policy``
    is the retry policy of every remote read.
    """

    root: Path | str
    revision: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy, compare=False)

    @property
    def is_local(self) -> bool:
        """True when the dataset is a local directory."""
        return isinstance(self.root, Path)

    def join(self, rel: str | os.PathLike) -> Path | str:
        """``root/rel`` as a local path or a URL."""
        if isinstance(self.root, Path):
            return self.root / rel
        return f"{self.root.rstrip('/')}/{Path(rel).as_posix()}"

    def download_url(self, rel: str | os.PathLike) -> str:
        """The URL a remote read fetches for ``rel`` (the local path as a string for local datasets)."""
        url = str(self.join(rel))
        if url.startswith("hf://datasets/"):
            repo_path = url[len("hf://datasets/") :]
            org, name, *rest = repo_path.split("/")
            name, _, rev = name.partition("@")
            revision = quote(rev or self.revision or "main", safe="")
            return f"{hf_endpoint()}/datasets/{org}/{name}/resolve/{revision}/{'/'.join(rest)}"
        return url

    def exists(self, rel: str | os.PathLike) -> bool:
        """Whether ``rel`` exists (a HEAD request for URLs)."""
        target = self.join(rel)
        if isinstance(target, Path):
            return target.exists()
        try:
            self._remote(rel, lambda url: fetch_size(url, self.policy))
        except FileNotFoundError:
            return False
        return True

    def read_json(self, rel: str | os.PathLike) -> Any:
        """Parses ``rel`` as JSON; FileNotFoundError / ValueError naming the file."""
        target = self.join(rel)
        try:
            if isinstance(target, Path):
                data = target.read_bytes()
            else:
                data = self._remote(rel, lambda url: read_all(url, self.policy))
        except FileNotFoundError:
            raise FileNotFoundError(f"Missing dataset metadata file {target}") from None
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{target} is not valid JSON: {err}") from err

    def parquet_file(self, rel: str | os.PathLike) -> pq.ParquetFile:
        """Opens ``rel`` for row-group reads (exact range requests for URLs, see Note [Remote reads])."""
        target = self.join(rel)
        with _parquet_errors(target):
            if isinstance(target, Path):
                return pq.ParquetFile(target)
            return self._remote(rel, lambda url: open_remote_parquet(url, self.policy))

    def read_parquet(
        self, rel: str | os.PathLike, columns: list[str] | Callable[[str], bool] | None = None
    ) -> pa.Table:
        """Reads ``rel`` whole (one GET when remote): ``columns`` names or a predicate on names."""
        target = self.join(rel)
        with _parquet_errors(target):
            if isinstance(target, Path):
                pf = pq.ParquetFile(target)
            else:
                data = self._remote(rel, lambda url: read_all(url, self.policy))
                pf = pq.ParquetFile(pa.BufferReader(data))
            if callable(columns):
                columns = [n for n in pf.schema_arrow.names if columns(n)]
            return pf.read(columns=columns)

    def list_numbered_files(self, pattern: str, files_per_chunk: int) -> list[str]:
        """Relative paths of ``pattern.format(chunk_index=c, file_index=f)`` that exist, in order.

        Local and listable stores (s3, gs) are globbed; HTTP servers (and the Hub, read over HTTPS)
        cannot list, so files are probed in order (file f+1 of the chunk, else file 0 of the next
        chunk) until one is missing.
        """
        glob = re.sub(r"\{[^}]*\}", "*", pattern)
        if isinstance(self.root, Path):
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(glob))
        if not is_http_url(self.download_url("x")):
            return sorted(self._remote(None, lambda url: fs_glob(url, glob, self.policy)))
        found: list[str] = []
        chunk, index = 0, 0
        while True:
            rel = pattern.format(chunk_index=chunk, file_index=index)
            if self.exists(rel):
                found.append(rel)
                index += 1
                if index < files_per_chunk:
                    continue
            elif index == 0:
                return found
            chunk, index = chunk + 1, 0

    def _remote(self, rel: str | os.PathLike | None, op: Callable[[str], T]) -> T:
        """Runs ``op(url of rel)`` (``rel`` None: the root); a read that gave up after retries becomes
        ServerUnreachableError."""
        url = str(self.root) if rel is None else self.download_url(rel)
        try:
            return op(url)
        except ServerUnreachableError:
            raise
        except RemoteFileError as err:
            if err.permanent:
                raise
            raise ServerUnreachableError(url, err.reason, self.policy.retries + 1) from err


def resolve_location(
    repo_id: str, root: str | os.PathLike | None, revision: str | None, policy: RetryPolicy | None = None
) -> DatasetLocation:
    """The dataset root for lerobot's (``repo_id``, ``root``, ``revision``); see the module docstring."""
    from lerobot_stream.metadata import default_root  # metadata imports this module

    policy = policy or RetryPolicy()
    if root is not None:
        if is_url(str(root)):
            return _url_location(str(root), revision, policy)
        return DatasetLocation(Path(str(root).removeprefix("file://")), revision, policy)
    if is_url(repo_id):
        return _url_location(repo_id, revision, policy)
    local = default_root(repo_id)
    if local.is_dir():
        return DatasetLocation(local, revision, policy)
    return _url_location(f"hf://datasets/{repo_id}", revision, policy)


def _url_location(url: str, revision: str | None, policy: RetryPolicy) -> DatasetLocation:
    """A URL root; ``hf://datasets/org/name`` gets ``@revision`` (fsspec's spelling) when one is given."""
    url = url.rstrip("/")
    if url.startswith("hf://datasets/") and revision:
        org_name = url[len("hf://datasets/") :].split("/")
        if len(org_name) >= 2 and "@" not in org_name[1]:
            org_name[1] += "@" + quote(revision, safe="")
            url = "hf://datasets/" + "/".join(org_name)
    return DatasetLocation(url, revision, policy)


@contextlib.contextmanager
def _parquet_errors(target: Path | str) -> Iterator[None]:
    """Reading the parquet file ``target``: a missing one is FileNotFoundError, an unreadable one
    ValueError naming it; remote errors keep their class."""
    try:
        if isinstance(target, Path) and not target.is_file():
            raise FileNotFoundError(target)
        yield
    except FileNotFoundError:
        raise FileNotFoundError(f"Missing dataset file {target}") from None
    except RemoteFileError:
        raise
    except (OSError, pa.ArrowException) as err:
        raise ValueError(f"Cannot read parquet file {target}: {err}") from err
