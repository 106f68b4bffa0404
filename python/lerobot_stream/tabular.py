"""Reads the tabular rows of one episode from the data parquet files, row-group aware.

An episode's rows live in ``data/chunk-X/file-Y.parquet`` together with other episodes'. The reader
uses the row groups' min/max statistics of the ``index`` column to read only the row groups that
overlap the episode's ``[dataset_from_index, dataset_to_index)`` range, slices them, and converts
the columns the way lerobot's ``hf_transform_to_torch`` does (floats -> float32, integers -> int64,
bools -> bool, strings stay strings; image columns keep their encoded bytes, decoded only when a
sample is emitted: ``lerobot_stream.images``). It counts rows and bytes read so the benchmark can report
read amplification (rows read / rows needed).

One reader per consumer (not thread-safe): it keeps a few open ``ParquetFile`` handles and the
last row groups read, so consecutive episodes of one row group cost one read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from lerobot_stream.images import ImageColumn, image_column, is_image_column
from lerobot_stream.metadata import DatasetMetadata
from lerobot_stream.remote.retry import RemoteFileError
from lerobot_stream.validation import check_episode_rows

_OPEN_FILES = 8
_CACHED_ROW_GROUPS = 8
# Row groups of image-feature datasets hold encoded frames (a 480x640 PNG is ~300 KB): bound the
# cache by bytes too, so it never holds much more than the episode pool itself.
_CACHED_ROW_GROUP_BYTES = 128 << 20


@dataclass
class TabularStats:
    """Read accounting of one reader: amplification = rows_read / rows_needed."""

    episodes_read: int = 0
    rows_needed: int = 0
    rows_read: int = 0
    row_groups_read: int = 0
    bytes_read: int = 0

    def add(self, other: TabularStats) -> None:
        """Adds another reader's counters to these."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float]:
        """Counters plus ``read_amplification`` (rows read per row needed)."""
        d: dict[str, float] = dict(vars(self))
        d["read_amplification"] = self.rows_read / self.rows_needed if self.rows_needed else 0.0
        return d


@dataclass
class EpisodeRows:
    """One whole episode's tabular columns, row ``i`` = the episode's frame ``i``.

    Numeric columns are torch tensors ``[length, *shape]`` with lerobot's dtypes; image features are
    ``ImageColumn`` (encoded bytes); other columns (strings) are Python lists.
    """

    episode_index: int
    length: int
    columns: dict[str, torch.Tensor | ImageColumn | list]

    def row(self, i: int) -> dict[str, torch.Tensor | object]:
        """Row ``i`` as lerobot's map-style dataset returns it (0-d tensors for scalars)."""
        return {
            name: col[i].clone() if isinstance(col, torch.Tensor) else col[i]
            for name, col in self.columns.items()
        }


class TabularReader:
    """Reads whole episodes' rows from the data parquet files of one dataset."""

    def __init__(
        self, meta: DatasetMetadata, columns: list[str] | None = None, tolerance_s: float = 1e-4
    ) -> None:
        """``columns``: the columns to read (default: every column of the data files);
        ``tolerance_s``: how far a row's ``timestamp`` may be from ``frame_index / fps``."""
        self._meta = meta
        self._columns = columns
        self._tolerance_s = tolerance_s
        self._files: OrderedDict[Path | str, pq.ParquetFile] = OrderedDict()
        self._row_group_ranges: dict[Path | str, np.ndarray | None] = {}
        self._row_groups: OrderedDict[tuple[Path | str, int], pa.Table] = OrderedDict()
        self.stats = TabularStats()

    def fork(self) -> TabularReader:
        """A new reader of the same dataset and columns (for another thread)."""
        return TabularReader(self._meta, self._columns, self._tolerance_s)

    def read_episode(self, episode_index: int) -> EpisodeRows:
        """All rows of ``episode_index``, in frame order; errors name the data file."""
        meta = self._meta
        row = meta.episode_row(episode_index)
        begin, end = int(meta.dataset_from_index[row]), int(meta.dataset_to_index[row])
        rel = meta.get_data_file_path(episode_index)
        path = meta.data_location.join(rel)
        pf = self._open(path, rel)
        groups = self._overlapping_row_groups(path, pf, begin, end)
        found = pa.concat_tables([self._row_group(path, pf, g) for g in groups]) if groups else None
        if found is not None:
            index = found.column("index")
            found = found.filter(pc.and_(pc.greater_equal(index, begin), pc.less(index, end)))
        if found is None or found.num_rows != end - begin:
            raise ValueError(
                f"{path}: episode {episode_index} should have {end - begin} rows with index in "
                f"[{begin}, {end}), found {0 if found is None else found.num_rows}"
            )
        table = found
        if self._columns is None:  # the rows a sample is made of (Note [What is checked, and when])
            check_episode_rows(meta, table, int(episode_index), path, self._tolerance_s)
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        self.stats.episodes_read += 1
        self.stats.rows_needed += end - begin
        return EpisodeRows(
            episode_index=int(episode_index),
            length=end - begin,
            columns={name: _to_torch(table.column(name), path, name) for name in table.column_names},
        )

    # --- internals ------------------------------------------------------------------------------
    def _open(self, path: Path | str, rel: Path) -> pq.ParquetFile:
        pf = self._files.get(path)
        if pf is not None:
            self._files.move_to_end(path)
            return pf
        try:
            pf = self._meta.data_location.parquet_file(rel)  # range reads when remote
        except FileNotFoundError:
            raise FileNotFoundError(f"Missing data file {path}") from None
        if "index" not in pf.schema_arrow.names:
            raise ValueError(f"{path}: no 'index' column (columns: {pf.schema_arrow.names})")
        self._files[path] = pf
        if len(self._files) > _OPEN_FILES:
            self._files.popitem(last=False)
        return pf

    def _overlapping_row_groups(
        self, path: Path | str, pf: pq.ParquetFile, begin: int, end: int
    ) -> list[int]:
        if path not in self._row_group_ranges:
            self._row_group_ranges[path] = _index_ranges(pf)
        ranges = self._row_group_ranges[path]
        if ranges is None:  # no statistics: every row group may hold the episode
            return list(range(pf.metadata.num_row_groups))
        return [int(g) for g in np.nonzero((ranges[:, 0] < end) & (ranges[:, 1] >= begin))[0]]

    def _row_group(self, path: Path | str, pf: pq.ParquetFile, group: int) -> pa.Table:
        key = (path, group)
        table = self._row_groups.get(key)
        if table is not None:
            self._row_groups.move_to_end(key)
            return table
        columns = self._columns
        try:
            table = pf.read_row_group(group, columns=columns)
        except RemoteFileError:
            raise  # retried already; names the URL (and keeps its type for the user)
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"Cannot read row group {group} of {path}: {err}") from err
        meta = pf.metadata.row_group(group)
        names = set(table.column_names)
        self.stats.row_groups_read += 1
        self.stats.rows_read += table.num_rows
        self.stats.bytes_read += sum(
            meta.column(i).total_compressed_size
            for i in range(meta.num_columns)
            if _column_of(meta.column(i).path_in_schema, names)
        )
        self._row_groups[key] = table
        while len(self._row_groups) > 1 and (
            len(self._row_groups) > _CACHED_ROW_GROUPS
            or sum(t.nbytes for t in self._row_groups.values()) > _CACHED_ROW_GROUP_BYTES
        ):
            self._row_groups.popitem(last=False)
        return table


def _column_of(leaf_path: str, names: set[str]) -> bool:
    """Whether a parquet leaf (``observation.images.cam.bytes``) belongs to one of the ``names``."""
    return any(leaf_path == n or leaf_path.startswith(n + ".") for n in names)


def _index_ranges(pf: pq.ParquetFile) -> np.ndarray | None:
    """[num_row_groups, 2] min/max of the ``index`` column per row group, or None without statistics."""
    md = pf.metadata
    # The leaf column of "index" (struct columns such as images have several leaves before it).
    col = next((i for i in range(md.num_columns) if md.schema.column(i).path == "index"), -1)
    if col < 0:
        return None
    ranges = np.empty((md.num_row_groups, 2), dtype=np.int64)
    for g in range(md.num_row_groups):
        stats = md.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            return None
        ranges[g] = (stats.min, stats.max)
    return ranges


def _to_torch(column: pa.ChunkedArray, path: Path | str, name: str) -> torch.Tensor | ImageColumn | list:
    """A column as lerobot's ``hf_transform_to_torch`` would give it, stacked over rows (images: bytes)."""
    if is_image_column(column):
        return image_column(column, path, name)
    array = column.combine_chunks()
    shape = [len(array)]
    values = array
    while (
        pa.types.is_list(values.type)
        or pa.types.is_fixed_size_list(values.type)
        or pa.types.is_large_list(values.type)
    ):
        if len(values) == 0:
            break
        if values.null_count:
            raise ValueError(f"{path}: column {name!r} has null rows")
        flat = values.flatten()
        if len(flat) % len(values):
            raise ValueError(f"{path}: column {name!r} has rows of different lengths")
        shape.append(len(flat) // len(values))
        values = flat
    kind = values.type
    if pa.types.is_floating(kind):
        dtype = np.float32
    elif pa.types.is_integer(kind):
        dtype = np.int64
    elif pa.types.is_boolean(kind):
        dtype = np.bool_
    else:
        return array.to_pylist()
    if values.null_count:
        raise ValueError(f"{path}: column {name!r} has null values")
    data = values.to_numpy(zero_copy_only=False).astype(dtype).reshape(shape)
    return torch.from_numpy(np.ascontiguousarray(data))
