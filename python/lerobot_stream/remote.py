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
Nothing is downloaded whole up front. JSON metadata is read with one GET. Parquet files are opened
through an fsspec file object with a block cache (``block_size``), so ``pyarrow.parquet.ParquetFile``
reads the footer and then only the column chunks of the row groups asked for (a few range requests
per row group). Video files are not read here: the prefetcher downloads them whole (decoders seek
all over a file), see ``lerobot_stream.prefetch``.

Thread-safe: fsspec filesystems are cached per protocol and safe to share; file objects are not.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_BLOCK_SIZE = 1 << 20
_HF_ENDPOINT = os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def is_url(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` strings (fsspec URLs), False for local paths."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


def is_http_url(url: str) -> bool:
    """True for ``http://`` and ``https://`` URLs."""
    return url.startswith(("http://", "https://"))


def hf_token(url: str) -> str | None:
    """The Hub token to send with ``url`` (only to the Hub endpoint): ``$HF_TOKEN`` when set."""
    return os.environ.get("HF_TOKEN") if url.startswith(_HF_ENDPOINT) else None


@dataclass(frozen=True)
class DatasetLocation:
    """The root of one dataset: a local ``Path`` or a URL string; joins and reads relative paths.

    ``root`` is what error messages show. ``download_url(rel)`` is the URL the video prefetcher
    fetches (``hf://`` files map to the Hub's ``resolve`` HTTPS URL so they download with ranges).
    """

    root: Path | str
    revision: str | None = None

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
        """The URL a downloader fetches for ``rel`` (the local path as a string for local datasets)."""
        url = str(self.join(rel))
        if url.startswith("hf://datasets/"):
            repo_path = url[len("hf://datasets/") :]
            org, name, *rest = repo_path.split("/")
            name, _, rev = name.partition("@")
            revision = quote(rev or self.revision or "main", safe="")
            return f"{_HF_ENDPOINT}/datasets/{org}/{name}/resolve/{revision}/{'/'.join(rest)}"
        return url

    def exists(self, rel: str | os.PathLike) -> bool:
        """Whether ``rel`` exists (a HEAD request for URLs)."""
        target = self.join(rel)
        if isinstance(target, Path):
            return target.exists()
        fs, path = _fs_and_path(target)
        return bool(fs.exists(path))

    def read_json(self, rel: str | os.PathLike) -> Any:
        """Parses ``rel`` as JSON; FileNotFoundError / ValueError naming the file."""
        target = self.join(rel)
        try:
            if isinstance(target, Path):
                data = target.read_bytes()
            else:
                with open_fs_file(target, block_size=0) as f:
                    data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"Missing dataset metadata file {target}") from None
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{target} is not valid JSON: {err}") from err

    def parquet_file(self, rel: str | os.PathLike) -> pq.ParquetFile:
        """Opens ``rel`` for row-group reads (range requests for URLs, see Note [Remote reads])."""
        target = self.join(rel)
        try:
            if isinstance(target, Path):
                if not target.is_file():
                    raise FileNotFoundError(target)
                return pq.ParquetFile(target)
            return pq.ParquetFile(open_fs_file(target, block_size=PARQUET_BLOCK_SIZE))
        except FileNotFoundError:
            raise FileNotFoundError(f"Missing dataset file {target}") from None
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"Cannot read parquet file {target}: {err}") from err

    def read_parquet(self, rel: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
        """Reads the ``columns`` of ``rel`` (all row groups)."""
        pf = self.parquet_file(rel)
        try:
            return pf.read(columns=columns)
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"Cannot read parquet file {self.join(rel)}: {err}") from err

    def list_numbered_files(self, pattern: str, files_per_chunk: int) -> list[str]:
        """Relative paths of ``pattern.format(chunk_index=c, file_index=f)`` that exist, in order.

        Local and listable stores (s3, hf) are globbed; plain HTTP servers cannot list, so files are
        probed in order (file f+1 of the chunk, else file 0 of the next chunk) until one is missing.
        """
        glob = re.sub(r"\{[^}]*\}", "*", pattern)
        if isinstance(self.root, Path):
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(glob))
        if not is_http_url(self.root):
            fs, base = _fs_and_path(str(self.join("")))
            return sorted(p[len(base.rstrip("/")) + 1 :] for p in fs.glob(f"{base.rstrip('/')}/{glob}"))
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


def resolve_location(repo_id: str, root: str | os.PathLike | None, revision: str | None) -> DatasetLocation:
    """The dataset root for lerobot's (``repo_id``, ``root``, ``revision``); see the module docstring."""
    from lerobot_stream.metadata import default_root  # metadata imports this module

    if root is not None:
        if is_url(str(root)):
            return _url_location(str(root), revision)
        return DatasetLocation(Path(str(root).removeprefix("file://")), revision)
    if is_url(repo_id):
        return _url_location(repo_id, revision)
    local = default_root(repo_id)
    if local.is_dir():
        return DatasetLocation(local, revision)
    return _url_location(f"hf://datasets/{repo_id}", revision)


def _url_location(url: str, revision: str | None) -> DatasetLocation:
    """A URL root; ``hf://datasets/org/name`` gets ``@revision`` (fsspec's spelling) when one is given."""
    url = url.rstrip("/")
    if url.startswith("hf://datasets/") and revision:
        org_name = url[len("hf://datasets/") :].split("/")
        if len(org_name) >= 2 and "@" not in org_name[1]:
            org_name[1] += "@" + quote(revision, safe="")
            url = "hf://datasets/" + "/".join(org_name)
    return DatasetLocation(url, revision)


def open_fs_file(url: str, *, block_size: int | None = None) -> IO[bytes]:
    """Opens ``url`` for reading via fsspec; ``block_size`` sets the range-request size (0: stream)."""
    fs, path = _fs_and_path(url)
    kwargs: dict[str, Any] = {}
    if block_size is not None:
        kwargs["block_size"] = block_size
    return fs.open(path, "rb", **kwargs)


def remote_size(url: str) -> int:
    """Size in bytes of ``url`` via fsspec."""
    fs, path = _fs_and_path(url)
    size = fs.size(path)
    if size is None:
        raise OSError(f"{url}: the store did not report a size")
    return int(size)


def _fs_and_path(url: str):
    try:
        import fsspec
    except ImportError as err:
        raise ImportError(
            f"Reading {url} needs fsspec: pip install 'lerobot-stream[remote]' (fsspec, aiohttp)"
        ) from err
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise ImportError(f"Reading {url}: {err}") from err
