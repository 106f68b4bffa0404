"""Independent port of what lerobot's map-style ``LeRobotDataset[i]`` returns, for value-parity tests.

Read from the lerobot **0.6.1** wheel on PyPI (``lerobot-0.6.1-py3-none-any.whl``):
``lerobot/datasets/dataset_reader.py`` (``DatasetReader.get_item`` and helpers),
``lerobot/datasets/feature_utils.py`` (``check_delta_timestamps``, ``get_delta_indices``,
``get_hf_features_from_features``), ``lerobot/datasets/io_utils.py`` (``load_nested_dataset``,
``load_tasks``, ``load_episodes``, ``hf_transform_to_torch``), ``lerobot/datasets/dataset_metadata.py``
(``get_video_file_path``) and ``lerobot/datasets/video_utils.py`` (``decode_video_frames_pyav``).
Each piece below cites the lerobot function it mirrors.

It reads the v3 files with pyarrow + PyAV + torch only (no ``datasets``, ``pandas`` or lerobot), so it
runs wherever the test suite runs. Scope: video and numeric features, ``video_backend="pyav"``,
``return_uint8`` on or off, all episodes (no ``episodes=`` filter), no image transforms, no depth maps,
no ``dtype: image`` features (those raise ``NotImplementedError``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pyarrow as pa
import pyarrow.parquet as pq
import torch

LEROBOT_VERSION_PORTED = "0.6.1"


class FrameTimestampError(ValueError):
    """Mirrors ``lerobot.datasets.video_utils.FrameTimestampError``."""


def check_delta_timestamps(delta_timestamps: dict[str, list[float]], fps: int, tolerance_s: float) -> None:
    """Mirrors ``feature_utils.check_delta_timestamps`` (raise_value_error=True)."""
    outside = {
        key: [ts for ts in deltas if not abs(ts * fps - round(ts * fps)) / fps <= tolerance_s]
        for key, deltas in delta_timestamps.items()
    }
    outside = {key: bad for key, bad in outside.items() if bad}
    if outside:
        raise ValueError(f"delta_timestamps outside of tolerance of multiples of 1/{fps}: {outside}")


def get_delta_indices(delta_timestamps: dict[str, list[float]], fps: int) -> dict[str, list[int]]:
    """Mirrors ``feature_utils.get_delta_indices``: ``round(delta * fps)`` per delta."""
    return {key: [round(d * fps) for d in deltas] for key, deltas in delta_timestamps.items()}


def _read_parquet_dir(directory: Path) -> pa.Table:
    # io_utils.load_nested_dataset: sorted(pq_dir.glob("*/*.parquet")), concatenated in that order.
    paths = sorted(directory.glob("*/*.parquet"))
    if not paths:
        raise FileNotFoundError(f"Provided directory does not contain any parquet file: {directory}")
    return pa.concat_tables([pq.read_table(p) for p in paths], promote_options="default")


def _to_torch(value: Any) -> Any:
    # io_utils.hf_transform_to_torch: python values from `datasets` -> torch.tensor(x); strings kept.
    # torch.tensor on python floats gives float32 (default dtype), ints int64, bools bool.
    return value if isinstance(value, str) else torch.tensor(value)


class ReferenceLeRobotDataset:
    """Map-style reader returning exactly what lerobot 0.6.1 ``LeRobotDataset[i]`` returns.

    Args:
        root: dataset root (holds ``meta/``, ``data/``, ``videos/``).
        delta_timestamps: per-key relative times in seconds, as in lerobot.
        tolerance_s: allowed distance between a queried time and the decoded frame, as in lerobot.
        return_uint8: return video frames as uint8 instead of float32 in [0, 1].
    """

    def __init__(
        self,
        root: str | Path,
        delta_timestamps: dict[str, list[float]] | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
    ) -> None:
        self.root = Path(root)
        # io_utils.load_info
        info = json.loads((self.root / "meta" / "info.json").read_text())
        self.fps: int = info["fps"]
        self.features: dict[str, dict] = info["features"]
        self.video_path: str = info["video_path"]
        # dataset_metadata.video_keys: features with dtype "video", in info order.
        self.video_keys = [k for k, ft in self.features.items() if ft["dtype"] == "video"]
        if any(ft["dtype"] == "image" for ft in self.features.values()):
            raise NotImplementedError("reference_lerobot does not port dtype 'image' features")
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8

        # io_utils.load_episodes: rows of meta/episodes/*/*.parquet, "stats/" columns dropped;
        # DatasetReader indexes them by row position (self._meta.episodes[ep_idx]).
        episodes = _read_parquet_dir(self.root / "meta" / "episodes")
        keep = [c for c in episodes.column_names if not c.startswith("stats/")]
        self.episodes: list[dict[str, Any]] = episodes.select(keep).to_pylist()

        # io_utils.load_tasks: pandas frame indexed by task string; get_item uses tasks.iloc[i].name.
        self.tasks: list[Any] = self._load_task_names(self.root / "meta" / "tasks.parquet")

        # DatasetReader._load_hf_dataset: data/*/*.parquet with the non-video features
        # (feature_utils.get_hf_features_from_features), row i = hf_dataset[i].
        self.data_keys = [k for k, ft in self.features.items() if ft["dtype"] != "video"]
        table = _read_parquet_dir(self.root / "data")
        self._columns: dict[str, list[Any]] = {k: table.column(k).to_pylist() for k in self.data_keys}
        self.num_frames = table.num_rows

        # DatasetReader.__init__: delta indices only when delta_timestamps is given.
        self.delta_indices: dict[str, list[int]] | None = None
        if delta_timestamps is not None:
            check_delta_timestamps(delta_timestamps, self.fps, tolerance_s)
            self.delta_indices = get_delta_indices(delta_timestamps, self.fps)

    @staticmethod
    def _load_task_names(path: Path) -> list[Any]:
        table = pq.read_table(path)
        index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
        names = [c for c in index_columns if isinstance(c, str)]
        if names:
            return table.column(names[0]).to_pylist()
        if "task" in table.column_names:
            return table.column("task").to_pylist()
        raise ValueError(f"{path}: no task names (neither a pandas index nor a 'task' column)")

    def __len__(self) -> int:
        return self.num_frames

    def _row(self, idx: int) -> dict[str, Any]:
        # hf_dataset[idx] with set_transform(hf_transform_to_torch), keys in feature order.
        return {k: _to_torch(self._columns[k][idx]) for k in self.data_keys}

    def _get_query_indices(self, abs_idx: int, ep_idx: int) -> tuple[dict[str, list[int]], dict]:
        # DatasetReader._get_query_indices: clamp into [ep_start, ep_end - 1], pad mask outside.
        assert self.delta_indices is not None
        ep = self.episodes[ep_idx]
        ep_start, ep_end = ep["dataset_from_index"], ep["dataset_to_index"]
        query_indices = {
            key: [max(ep_start, min(ep_end - 1, abs_idx + d)) for d in deltas]
            for key, deltas in self.delta_indices.items()
        }
        padding = {
            f"{key}_is_pad": torch.BoolTensor(
                [(abs_idx + d < ep_start) | (abs_idx + d >= ep_end) for d in deltas]
            )
            for key, deltas in self.delta_indices.items()
        }
        return query_indices, padding

    def _query_hf_dataset(self, query_indices: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        # DatasetReader._query_hf_dataset: non-video keys, absolute index used as row position.
        return {
            key: torch.stack([_to_torch(self._columns[key][i]) for i in q_idx])
            for key, q_idx in query_indices.items()
            if key not in self.video_keys
        }

    def _get_query_timestamps(
        self, current_ts: float, query_indices: dict[str, list[int]] | None
    ) -> dict[str, list[float]]:
        # DatasetReader._get_query_timestamps: the stored (float32) timestamps of the clamped rows.
        out = {}
        for key in self.video_keys:
            if query_indices is not None and key in query_indices:
                stamps = [_to_torch(self._columns["timestamp"][i]) for i in query_indices[key]]
                out[key] = torch.stack(stamps).tolist()
            else:
                out[key] = [current_ts]
        return out

    def video_file(self, ep_idx: int, vid_key: str) -> Path:
        """Mirrors ``LeRobotDatasetMetadata.get_video_file_path`` (joined to the root)."""
        ep = self.episodes[ep_idx]
        rel = self.video_path.format(
            video_key=vid_key,
            chunk_index=ep[f"videos/{vid_key}/chunk_index"],
            file_index=ep[f"videos/{vid_key}/file_index"],
        )
        return self.root / rel

    def _query_videos(self, query_timestamps: dict[str, list[float]], ep_idx: int) -> dict[str, torch.Tensor]:
        # DatasetReader._query_videos: shift by the episode's from_timestamp in its own video file.
        ep = self.episodes[ep_idx]
        out = {}
        for vid_key, query_ts in query_timestamps.items():
            from_timestamp = ep[f"videos/{vid_key}/from_timestamp"]
            shifted = [from_timestamp + ts for ts in query_ts]
            frames = decode_video_frames_pyav(
                self.video_file(ep_idx, vid_key), shifted, self.tolerance_s, self.return_uint8
            )
            out[vid_key] = frames.squeeze(0)
        return out

    def __getitem__(self, idx: int) -> dict[str, Any]:
        # DatasetReader.get_item
        item: dict[str, Any] = self._row(idx)
        ep_idx = item["episode_index"].item()
        abs_idx = item["index"].item()

        query_indices = None
        if self.delta_indices is not None:
            query_indices, padding = self._get_query_indices(abs_idx, ep_idx)
            query_result = self._query_hf_dataset(query_indices)
            item = {**item, **padding}
            for key, val in query_result.items():
                item[key] = val

        if self.video_keys:
            current_ts = item["timestamp"].item()
            query_timestamps = self._get_query_timestamps(current_ts, query_indices)
            item = {**self._query_videos(query_timestamps, ep_idx), **item}

        item["task"] = self.tasks[item["task_index"].item()]
        return item


def decode_video_frames_pyav(
    video_path: str | Path, timestamps: Sequence[float], tolerance_s: float, return_uint8: bool = False
) -> torch.Tensor:
    """Mirrors ``video_utils.decode_video_frames_pyav`` (RGB, no depth): (T, C, H, W) frames."""
    video_path = str(video_path)
    first_ts, last_ts = min(timestamps), max(timestamps)
    loaded_frames: list[torch.Tensor] = []
    loaded_ts: list[float] = []
    with av.open(video_path) as container:
        stream = container.streams.video[0]
        time_base: Fraction = stream.time_base
        # Seek to the keyframe at or before first_ts, with a one-tick margin, as lerobot does.
        container.seek(round(first_ts / time_base) - 1, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            current_ts = float(frame.pts * time_base)
            arr = frame.to_ndarray(format="rgb24")
            loaded_frames.append(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
            loaded_ts.append(current_ts)
            if current_ts >= last_ts:
                break
    if not loaded_frames:
        raise FrameTimestampError(
            f"No frames could be decoded from {video_path} in the timestamp range [{first_ts}, {last_ts}]."
        )
    # Nearest loaded frame per query, distances in float32 exactly as lerobot computes them.
    query_ts = torch.tensor(list(timestamps))
    loaded_ts_t = torch.tensor(loaded_ts)
    dist = torch.cdist(query_ts[:, None], loaded_ts_t[:, None], p=1)
    min_, argmin_ = dist.min(1)
    is_within_tol = min_ < tolerance_s
    if not is_within_tol.all():
        raise FrameTimestampError(
            f"One or several query timestamps unexpectedly violate the tolerance "
            f"({min_[~is_within_tol]} > {tolerance_s=}).\nqueried timestamps: {query_ts}"
            f"\nloaded timestamps: {loaded_ts_t}\nvideo: {video_path}\nbackend: pyav"
        )
    closest_frames = torch.stack([loaded_frames[i] for i in argmin_])
    if return_uint8:
        return closest_frames
    return closest_frames.type(torch.float32) / 255
