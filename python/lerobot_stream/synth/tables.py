"""Tabular side of a v3 dataset: data parquet files, episodes metadata, tasks, stats and info.json.

Schemas copy what lerobot 0.6.x writes through HF ``datasets`` (so its reader, and ours, see the
same files): data columns carry the ``huggingface`` schema metadata; vectors are fixed-size lists;
``meta/tasks.parquet`` is a pandas frame indexed by the task string; episodes metadata has one
row per episode with flattened ``stats/<feature>/<stat>`` list columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .layout import DATA_PATH, EPISODES_PATH, INFO_PATH, STATS_PATH, TASKS_PATH, FileSlot
from .stats import Stats

# lerobot's DEFAULT_FEATURES, in its order, appended after the user features.
INDEX_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _hf_feature(feature: dict[str, Any]) -> tuple[pa.DataType, dict[str, Any]]:
    """Arrow type and HF ``datasets`` feature dict of a non-video feature."""
    if feature["dtype"] == "image":  # HF datasets.Image(): the encoded file and its name
        return IMAGE_TYPE, {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    arrow = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    shape = feature["shape"]
    if list(shape) == [1]:
        return arrow, value
    if len(shape) == 1:
        return pa.list_(arrow, shape[0]), {"feature": value, "length": shape[0], "_type": "List"}
    raise ValueError(f"synthetic datasets only write scalar or 1-D numeric features, got shape {shape}")


def data_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    """Schema of ``data/*.parquet``: every non-video feature, with the HF ``datasets`` metadata."""
    fields, hf = [], {}
    for key, feature in features.items():
        if feature["dtype"] == "video":
            continue
        arrow, hf[key] = _hf_feature(feature)
        fields.append(pa.field(key, arrow))
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": hf}})})


class DataFileWriter:
    """Appends episodes' rows to ``data/chunk-XXX/file-XXX.parquet``, rolling over by size like lerobot.

    Before an episode is appended, if the open file's size plus the episode's estimated size
    (bytes per row so far × rows) reaches the cap, the episode starts the next file. One row group
    per episode, snappy, dictionary encoding (lerobot's writer settings). Not thread-safe.
    """

    def __init__(self, root: Path, schema: pa.Schema, *, file_size_in_mb: float, chunks_size: int) -> None:
        self._root, self._schema = root, schema
        self._cap_bytes = file_size_in_mb * 1024 * 1024
        self._chunks_size = chunks_size
        self._slot: FileSlot | None = None
        self._path: Path | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self.paths: list[Path] = []

    def write_episode(self, columns: dict[str, np.ndarray | list]) -> FileSlot:
        """Append one episode's rows (one array per schema column); return the file it went to."""
        table = pa.Table.from_arrays(
            [_column(columns[f.name], f.type) for f in self._schema], schema=self._schema
        )
        if self._writer is None or self._would_overflow(table.num_rows):
            self._open_next_file()
        assert self._writer is not None and self._slot is not None
        self._writer.write_table(table)
        self._rows_in_file += table.num_rows
        return self._slot

    def close(self) -> None:
        """Finalise the open file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _would_overflow(self, rows: int) -> bool:
        assert self._path is not None
        size = self._path.stat().st_size
        per_row = size / self._rows_in_file if self._rows_in_file else 0.0
        return size + per_row * rows >= self._cap_bytes

    def _open_next_file(self) -> None:
        self.close()
        self._slot = FileSlot() if self._slot is None else self._slot.next(self._chunks_size)
        self._path = self._root / DATA_PATH.format(
            chunk_index=self._slot.chunk_index, file_index=self._slot.file_index
        )
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._path, self._schema, compression="snappy", use_dictionary=True)
        self._rows_in_file = 0
        self.paths.append(self._path)


def _column(values: np.ndarray | list, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_struct(arrow_type):  # image features: [{"bytes": ..., "path": ...}, ...]
        return pa.array(values, type=arrow_type)
    if pa.types.is_fixed_size_list(arrow_type):
        flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=arrow_type.value_type)
        return pa.FixedSizeListArray.from_arrays(flat, arrow_type.list_size)
    return pa.array(values, type=arrow_type)


def _jsonable(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def write_episodes_metadata(root: Path, rows: list[dict[str, Any]]) -> Path:
    """Write all episodes' metadata rows to ``meta/episodes/chunk-000/file-000.parquet``.

    Column types follow ``pa.Table.from_pydict`` on lerobot's row dicts: ints → int64, floats →
    double, ``tasks`` → list<string>, stats → (nested) lists. One file: the rows of even 100k
    episodes stay far below lerobot's 100 MB data-file cap.
    """
    columns = {key: [_jsonable(row[key]) for row in rows] for key in rows[0]}
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns), path, compression="snappy", use_dictionary=True)
    return path


def write_tasks(root: Path, tasks: list[str]) -> Path:
    """Write ``meta/tasks.parquet`` as pandas would for ``DataFrame({"task_index": ...}, index=task)``."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={"pandas": json.dumps(pandas_meta)},
    )
    table = pa.Table.from_arrays(
        [pa.array(range(len(tasks)), type=pa.int64()), pa.array(tasks, type=pa.string())], schema=schema
    )
    path = root / TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_json(root: Path, relative_path: str, data: Any) -> Path:
    """Write JSON the way lerobot does (indent 4, UTF-8, no ASCII escaping)."""
    path = root / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=4, ensure_ascii=False)
    return path


def write_stats(root: Path, stats: dict[str, Stats]) -> Path:
    """Write ``meta/stats.json``: feature → stat → (nested) list."""
    return write_json(
        root, STATS_PATH, {k: {s: _jsonable(v) for s, v in st.items()} for k, st in stats.items()}
    )


def write_info(root: Path, info: dict[str, Any]) -> Path:
    """Write ``meta/info.json``."""
    return write_json(root, INFO_PATH, info)
