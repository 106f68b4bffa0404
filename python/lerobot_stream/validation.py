"""Checks that turn inconsistent metadata, rows and videos into clear errors instead of wrong samples.

Note [What is checked, and when]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A dataset edited by hand (or by a buggy writer) must give a clear error naming the file and the
field, never samples that differ from the intact dataset's (issue 14). What a sample is made of,
and how each part is tied to the rest:

- At construction, O(episodes) (``check_metadata``): ``fps`` is a positive integer; each feature's
  ``shape`` is a list of positive integers; the ``data_path``/``video_path`` templates format
  with lerobot's fields and give different files for different (chunk, file) indices (a template
  that forgets ``{file_index}`` would read one file for all); chunk/file indices are non-negative
  integers; the episodes' ``[dataset_from_index, dataset_to_index)`` ranges cover the rows from 0
  back to back (a gap is data rows no episode claims, e.g. an episode's row deleted from the
  episodes parquet: they would never be emitted); per camera, every episode's ``[from_timestamp,
  to_timestamp)`` is finite, starts at or after 0 and does not overlap another episode of the same
  video file (an episode moved by whole frames then lands on its neighbour: the error names both).
  ``meta/tasks.parquet`` gives each ``task_index`` of ``0 .. tasks - 1`` exactly once.
- At admission, O(rows) once per episode (``check_episode_rows``, on the rows read from the data
  parquet): ``index`` is exactly ``dataset_from_index .. dataset_to_index - 1`` in file order (no
  dropped, duplicated or reordered rows), ``episode_index`` is the episode, ``frame_index`` is
  ``0 .. length - 1``, ``task_index`` is a task of ``meta/tasks.parquet`` (-1 would otherwise pick the
  last task); an episode with no rows in its data file is named as such; with videos,
  ``timestamp`` is ``frame_index / fps`` within ``tolerance_s`` and ``from_timestamp + timestamp``
  of the last frame stays before each camera's ``to_timestamp`` (a timestamp column shifted by
  whole frames decodes the neighbour's frames: issue 14 item 1); every numeric feature of
  info.json has a column whose rows hold ``prod(shape)`` values.
- Once per camera and per local video file, at its first decode (``VideoChecks``): the file is a
  regular file (the decoder refuses a FIFO, which would block the open forever); the stream's
  frame size equals the feature's ``shape`` in info.json, and the file's frames reach every
  ``to_timestamp`` of the episodes it holds (a truncated file is reported as such, before any of
  its frames is emitted: a sample cut by the file's end is not counted as a frame). Remote files
  are checked the same way from their index: the frames in an episode's ``[from_timestamp,
  to_timestamp)`` must number at least its length (``check_segment_frames``).

Nothing is checked per sample. ``total_episodes``/``total_frames`` in info.json are not used to
build samples (the episodes parquet is), so they are not checked.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from lerobot_stream.metadata import DatasetMetadata

_TEMPLATE_FIELDS = {
    "data_path": ("chunk_index", "file_index"),
    "video_path": ("video_key", "chunk_index", "file_index"),
}


def check_info(raw: dict[str, Any], path: Path | str) -> None:
    """``meta/info.json``'s fps, feature shapes and path templates (Note [What is checked, and when])."""
    fps = raw["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps != int(fps) or fps <= 0:
        raise ValueError(f"{path}: fps must be a positive integer, got {fps!r}")
    for name, ft in raw["features"].items():
        shape = ft.get("shape")
        if shape is None:
            continue
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(
                f"{path}: feature {name!r} has shape {shape!r}: expected a list of positive integers"
            )
        if ft.get("dtype") in ("video", "image") and len(shape) != 3:
            raise ValueError(
                f"{path}: camera feature {name!r} has shape {list(shape)}: expected 3 dimensions"
            )
    for key, fields in _TEMPLATE_FIELDS.items():
        template = raw.get(key)
        if template is None:
            continue
        if not isinstance(template, str):
            raise ValueError(f"{path}: {key} must be a string, got {template!r}")
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            template.format(**{f: 0 if f != "video_key" else "k" for f in fields})
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise ValueError(
                f"{path}: {key} {template!r} is not a template of {list(fields)}: {err}"
            ) from None
        missing = [f for f in fields if f not in used]
        if missing:
            raise ValueError(
                f"{path}: {key} {template!r} lacks {missing}: different files would share a path"
            )


def check_episodes(meta: DatasetMetadata, where: Path | str) -> None:
    """The episodes parquet's indices and per-camera time ranges (Note [What is checked, and when])."""
    episodes = meta.episode_index
    if len(episodes) and np.any(meta.length < 1):
        ep = int(episodes[np.argmax(meta.length < 1)])
        raise ValueError(f"{where}: episode {ep} has length {int(meta.length[meta.episode_row(ep)])} (< 1)")
    _non_negative(where, episodes, "data/chunk_index", meta.data_chunk_index)
    _non_negative(where, episodes, "data/file_index", meta.data_file_index)
    _non_negative(where, episodes, "dataset_from_index", meta.dataset_from_index)
    _check_rows_tiled(meta, where)
    for key, loc in meta.videos.items():
        prefix = f"videos/{key}/"
        _non_negative(where, episodes, prefix + "chunk_index", loc.chunk_index)
        _non_negative(where, episodes, prefix + "file_index", loc.file_index)
        begin, end = loc.from_timestamp, loc.to_timestamp
        bad = ~np.isfinite(begin) | ~np.isfinite(end) | (begin < -0.5 / meta.fps) | (end <= begin)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"{where}: episode {int(episodes[row])}: {prefix}from_timestamp={begin[row]!r}, "
                f"to_timestamp={end[row]!r}: expected 0 <= from_timestamp < to_timestamp"
            )
        # Episodes of one file, by start time: each must end before the next starts (half a frame slack).
        order = np.lexsort((begin, loc.file_index, loc.chunk_index))
        same_file = (np.diff(loc.chunk_index[order]) == 0) & (np.diff(loc.file_index[order]) == 0)
        overlap = same_file & (begin[order][1:] < end[order][:-1] - 0.5 / meta.fps)
        if overlap.any():
            i = int(np.argmax(overlap))
            a, b = int(order[i]), int(order[i + 1])
            raise ValueError(
                f"{where}: {prefix}: episodes {int(episodes[a])} [{begin[a]}, {end[a]}) and "
                f"{int(episodes[b])} [{begin[b]}, {end[b]}) s overlap in "
                f"{meta.get_video_file_path(int(episodes[a]), key)}"
            )
    _check_distinct_paths(meta, where)


def _check_rows_tiled(meta: DatasetMetadata, where: Path | str) -> None:
    """The episodes' ``[dataset_from_index, dataset_to_index)`` ranges cover ``0 .. total - 1`` back
    to back, as lerobot writes them: a gap is rows of the data files that no episode of the episodes
    parquet claims (an episode's row deleted there), which would never be emitted."""
    order = np.argsort(meta.dataset_from_index, kind="stable")
    starts, ends = meta.dataset_from_index[order], meta.dataset_to_index[order]
    expected = np.concatenate([[0], ends[:-1]]) if len(order) else starts
    bad = starts != expected
    if bad.any():
        i = int(np.argmax(bad))
        ep = int(meta.episode_index[order[i]])
        what = (
            f"rows {int(expected[i])}..{int(starts[i]) - 1} of the data files belong to no episode "
            "(an episode missing from the episodes metadata?)"
            if starts[i] > expected[i]
            else f"its rows overlap the episode before it, which ends at {int(expected[i])}"
        )
        raise ValueError(f"{where}: episode {ep} starts at dataset_from_index={int(starts[i])}: {what}")


def _non_negative(where: Path | str, episodes: np.ndarray, column: str, values: np.ndarray) -> None:
    bad = values < 0
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{where}: episode {int(episodes[row])} has {column}={int(values[row])} (< 0)")


def _check_distinct_paths(meta: DatasetMetadata, where: Path | str) -> None:
    """Different (chunk, file) indices must give different files (else one file is read for both)."""
    columns = [("data_path", "", meta.data_chunk_index, meta.data_file_index)]
    columns += [("video_path", k, loc.chunk_index, loc.file_index) for k, loc in meta.videos.items()]
    for name, key, chunks, files in columns:
        pairs = set(zip(chunks.tolist(), files.tolist(), strict=True))
        template = meta.data_path if name == "data_path" else meta.video_path
        seen: dict[str, tuple[int, int]] = {}
        for chunk, file in sorted(pairs):
            path = template.format(chunk_index=chunk, file_index=file, video_key=key)
            other = seen.setdefault(path, (chunk, file))
            if other != (chunk, file):
                raise ValueError(
                    f"{where}: {name} {template!r} gives {path} for both (chunk, file) {other} and "
                    f"{(chunk, file)}"
                )


def check_episode_rows(
    meta: DatasetMetadata, table: pa.Table, episode: int, path: Path | str, tolerance_s: float
) -> None:
    """An episode's rows, as read from ``path`` in file order (Note [What is checked, and when])."""
    row = meta.episode_row(episode)
    begin, end = int(meta.dataset_from_index[row]), int(meta.dataset_to_index[row])
    length = end - begin
    index = table.column("index").to_numpy()
    if not np.array_equal(index, np.arange(begin, end)):
        raise ValueError(
            f"{path}: episode {episode}: the index column should run {begin}..{end - 1} in order (as "
            f"dataset_from_index/dataset_to_index say); found {_describe(index, np.arange(begin, end))}"
        )
    expected = {"episode_index": np.full(length, episode), "frame_index": np.arange(length)}
    for name, want in expected.items():
        if name in table.column_names:
            got = table.column(name).to_numpy()
            if not np.array_equal(got, want):
                raise ValueError(
                    f"{path}: episode {episode}: {name} should be {_describe(want)}, found "
                    f"{_describe(got, want)}"
                )
    if "task_index" in table.column_names:
        tasks = table.column("task_index").to_numpy(zero_copy_only=False)
        bad = ~((tasks >= 0) & (tasks < len(meta.task_names)))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{path}: episode {episode} frame {i}: task_index {tasks[i].item()!r} is not a task of "
                f"meta/tasks.parquet (0..{len(meta.task_names) - 1})"
            )
    for name, ft in meta.features.items():
        if ft.get("dtype") in ("video", "image", "string") or name in ("task",):
            continue
        if name not in table.column_names:
            raise ValueError(
                f"{path}: no column for feature {name!r} of info.json (dtype {ft.get('dtype')!r}); "
                f"columns: {table.column_names}"
            )
        _check_row_size(table.column(name), ft.get("shape"), name, path)
    if not meta.video_keys:
        return  # the timestamp only places video frames
    if "timestamp" not in table.column_names:
        raise ValueError(f"{path}: no 'timestamp' column (it places each row's video frames)")
    ts = table.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
    error = np.abs(ts - np.arange(length) / meta.fps)
    slack = max(tolerance_s, 1e-6 * length / meta.fps)  # float32 timestamps of long episodes
    if not np.all(error <= slack):
        i = int(np.argmax(~(error <= slack)))
        raise ValueError(
            f"{path}: episode {episode} frame {i}: timestamp {float(ts[i])!r} is not frame_index / fps = "
            f"{i / meta.fps!r} (within tolerance_s={tolerance_s}): its video frames would be another "
            "frame's"
        )
    for key, loc in meta.videos.items():
        first, last = float(loc.from_timestamp[row]), float(loc.to_timestamp[row])
        if not first + ts[-1] < last:
            raise ValueError(
                f"{path}: episode {episode}: its last frame at from_timestamp + timestamp = "
                f"{first + ts[-1]} s lies outside [{first}, {last}) of videos/{key}/ in the episodes metadata"
            )


def _check_row_size(column: pa.ChunkedArray, shape: Any, name: str, path: Path | str) -> None:
    if not shape or not len(column):
        return
    kind = column.type
    size = 1
    while pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_large_list(kind):
        if pa.types.is_fixed_size_list(kind):
            size *= kind.list_size
            kind = kind.value_type
            continue
        first = column.chunk(0)[0] if column.num_chunks else None
        size *= len(first) if first is not None and first.is_valid else 0
        kind = kind.value_type
    if size != math.prod(shape):
        raise ValueError(
            f"{path}: feature {name!r} has shape {list(shape)} in info.json but its rows hold {size} values"
        )


def _describe(values: np.ndarray, expected: np.ndarray | None = None) -> str:
    """``values`` in short; with ``expected``, also where they first differ from it."""
    if len(values) > 6:
        head, tail = ", ".join(map(str, values[:3])), ", ".join(map(str, values[-2:]))
        text = f"[{head}, ..., {tail}] ({len(values)} rows)"
    else:
        text = str(values.tolist())
    if expected is not None and len(values) == len(expected):
        differs = values != expected
        if differs.any():
            i = int(np.argmax(differs))
            text += f", first different at row {i}: {values[i].item()!r} instead of {expected[i].item()!r}"
    return text


def check_segment_frames(
    meta: DatasetMetadata, count: int, file_end_s: Callable[[], float], episode: int, key: str, url: str
) -> None:
    """A remote file holds the episode's ``length`` frames in its [from, to): ``count`` frames lie
    there (``Segment.frames``); ``file_end_s()`` is the file's last frame time, for the message."""
    row = meta.episode_row(episode)
    loc = meta.videos[key]
    first, last = float(loc.from_timestamp[row]), float(loc.to_timestamp[row])
    length = int(meta.length[row])
    if count < length:
        end = file_end_s()
        raise ValueError(
            f"{url}: episode {episode} has {length} frames but the file holds {count} in its "
            f"[{first}, {last}) s (the file's frames end at {end:.4f} s): "
            "truncated file or wrong from/to_timestamp"
        )


class VideoChecks:
    """Once per camera and per local file: frame size vs info.json, file length vs the episodes.

    Not thread-safe on its own; ``check_file`` runs in the decoding thread of one consumer.
    """

    def __init__(self, meta: DatasetMetadata, decoder: Any) -> None:
        self._meta = meta
        self._decoder = decoder  # a DecoderCache: stream_info(path) opens the decoder the decode uses
        self._cameras: set[str] = set()
        self._files: set[str] = set()
        self._ends: dict[str, dict[tuple[int, int], float]] = {}

    def check_file(self, key: str, episode: int, source: Any) -> None:
        """Checks ``source`` (a local path or a ByteSource of ``episode``'s ``key``) once."""
        local = isinstance(source, str)
        if key in self._cameras and (not local or source in self._files):
            return
        info = self._decoder.stream_info(source)
        name = source if local else getattr(source, "name", str(source))
        if key not in self._cameras:
            self._check_size(key, info, name)
            self._cameras.add(key)
        if local:
            self._check_length(key, episode, info, name)
            self._files.add(source)

    def _check_size(self, key: str, info: dict[str, Any], name: str) -> None:
        shape = self._meta.features[key].get("shape")
        if not shape:
            return
        names = list(self._meta.features[key].get("names") or [])
        if "height" in names and "width" in names:
            height, width = shape[names.index("height")], shape[names.index("width")]
        elif shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
            height, width = shape[1], shape[2]  # channels first
        else:
            height, width = shape[0], shape[1]
        if (int(info["height"]), int(info["width"])) != (int(height), int(width)):
            raise ValueError(
                f"{name}: frames are {info['height']}x{info['width']} (height x width) but info.json "
                f"gives feature {key!r} the shape {list(shape)}"
            )

    def _check_length(self, key: str, episode: int, info: dict[str, Any], name: str) -> None:
        meta = self._meta
        ends = self._ends.get(key)
        if ends is None:  # the latest to_timestamp per (chunk, file) of this camera, O(episodes) once
            loc = meta.videos[key]
            ends = {}
            for chunk, file, end in zip(
                loc.chunk_index.tolist(), loc.file_index.tolist(), loc.to_timestamp.tolist(), strict=True
            ):
                ends[(chunk, file)] = max(ends.get((chunk, file), 0.0), end)
            self._ends[key] = ends
        row = meta.episode_row(episode)
        loc = meta.videos[key]
        end = ends[(int(loc.chunk_index[row]), int(loc.file_index[row]))]
        duration = float(info.get("duration_s") or 0.0)
        frames = int(info.get("num_frames") or 0)
        covered = max(duration, frames / meta.fps)
        if end > covered + 0.5 / meta.fps:
            raise ValueError(
                f"{name}: the file holds {frames} frames ({duration:.4f} s) but its episodes reach "
                f"to_timestamp {end} s in the episodes metadata: truncated file or wrong to_timestamp"
            )
