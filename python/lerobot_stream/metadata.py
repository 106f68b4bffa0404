"""LeRobot v3 dataset metadata: ``meta/info.json``, the episodes parquet files, tasks and stats.

Reads a dataset root once (in the main process) into plain numpy arrays that are cheap to pickle
into DataLoader workers. The root is a local directory or a URL (``lerobot_stream.remote.location``); remote
files are read with range requests, never downloaded whole. Every error names the file and what is
wrong with it.

Layout (LeRobot codebase v3.x)::

    meta/info.json                                  fps, features, data_path / video_path templates
    meta/episodes/chunk-XXX/file-YYY.parquet        one row per episode: length, dataset_from_index,
                                                    data/{chunk,file}_index, videos/<key>/{chunk_index,
                                                    file_index, from_timestamp, to_timestamp}, tasks
    meta/tasks.parquet                              task string -> task_index
    meta/stats.json                                 optional per-feature statistics
    data/chunk-XXX/file-YYY.parquet                 tabular rows of many episodes
    videos/<key>/chunk-XXX/file-YYY.mp4             frames of many episodes, back to back
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lerobot_stream.remote.location import DatasetLocation, resolve_location
from lerobot_stream.remote.retry import RetryPolicy
from lerobot_stream.validation import check_episodes, check_info

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"

_EPISODE_COLUMNS = ("episode_index", "length", "dataset_from_index", "dataset_to_index")
_DATA_COLUMNS = ("data/chunk_index", "data/file_index")
_VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


class InfoDict(dict):
    """``meta/info.json`` as a dict that also reads like lerobot's ``DatasetInfo`` (``info.fps``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def default_root(repo_id: str) -> Path:
    """Where lerobot keeps ``repo_id`` locally: ``$HF_LEROBOT_HOME/<repo_id>``."""
    home = os.environ.get("HF_LEROBOT_HOME")
    if home is None:
        hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
        home = os.path.join(hf_home, "lerobot")
    return Path(home) / repo_id


@dataclass(frozen=True)
class VideoLocation:
    """Where one camera's frames of every episode live (arrays indexed by episode row)."""

    chunk_index: np.ndarray
    file_index: np.ndarray
    from_timestamp: np.ndarray
    to_timestamp: np.ndarray


@dataclass
class DatasetMetadata:
    """Everything the loader needs to know about a LeRobot v3 dataset, read from ``root/meta``.

    Mirrors the parts of lerobot's ``LeRobotDatasetMetadata`` that users touch: ``info``, ``fps``,
    ``features``, ``video_keys``, ``image_keys``, ``camera_keys``, ``total_episodes``,
    ``total_frames``, ``tasks`` (a pandas DataFrame indexed by task, when pandas is installed),
    ``stats`` and ``episodes`` (rows as dicts).

    Episode arrays (``episode_index``, ``length``, ``dataset_from_index``, ...) are sorted by
    episode index; ``episode_row(ep)`` maps an episode index to its position in them.
    """

    root: Path | str
    repo_id: str
    info: InfoDict
    task_names: list[str]
    stats: dict[str, Any] | None
    episode_index: np.ndarray
    length: np.ndarray
    dataset_from_index: np.ndarray
    dataset_to_index: np.ndarray
    data_chunk_index: np.ndarray
    data_file_index: np.ndarray
    videos: dict[str, VideoLocation]
    _episode_table: pa.Table = field(repr=False)
    _row_of_episode: dict[int, int] = field(repr=False)
    location: DatasetLocation = field(repr=False, default=None)  # type: ignore[assignment]
    # Where ``data/`` and ``videos/`` live: ``location`` unless ``data_files_root`` moved them.
    data_location: DatasetLocation = field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.data_location is None:
            self.data_location = self.location

    # --- lerobot-compatible properties -------------------------------------------------------
    @property
    def fps(self) -> int:
        """Frames per second of every stream."""
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict]:
        """Feature name -> {dtype, shape, names, ...} from info.json."""
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        """Camera features stored as videos."""
        return [k for k, ft in self.features.items() if ft.get("dtype") == "video"]

    @property
    def image_keys(self) -> list[str]:
        """Camera features stored as images inside the data parquet files."""
        return [k for k, ft in self.features.items() if ft.get("dtype") == "image"]

    @property
    def camera_keys(self) -> list[str]:
        """All camera features, videos and images, in info.json order."""
        return [k for k, ft in self.features.items() if ft.get("dtype") in ("video", "image")]

    @property
    def depth_keys(self) -> list[str]:
        """Camera features marked as depth maps (videos or images), lerobot's ``is_depth_map`` rule."""

        def is_depth(ft: dict) -> bool:
            info = ft.get("info") or {}
            video_info = ft.get("video_info") or {}
            return bool(
                info.get("is_depth_map")
                or info.get("video.is_depth_map")
                or video_info.get("video.is_depth_map")
            )

        return [k for k, ft in self.features.items() if is_depth(ft)]

    @property
    def total_episodes(self) -> int:
        """Number of episodes in the dataset (all of them, not a selection)."""
        return len(self.episode_index)

    @property
    def total_frames(self) -> int:
        """Number of frames in the dataset (all episodes)."""
        return int(self.length.sum())

    @property
    def total_tasks(self) -> int:
        """Number of distinct tasks."""
        return len(self.task_names)

    @property
    def data_path(self) -> str:
        """Format string of the data parquet files (``chunk_index``, ``file_index``)."""
        return self.info.get("data_path") or DEFAULT_DATA_PATH

    @property
    def video_path(self) -> str:
        """Format string of the video files (``video_key``, ``chunk_index``, ``file_index``)."""
        return self.info.get("video_path") or DEFAULT_VIDEO_PATH

    @property
    def tasks(self) -> Any:
        """Tasks as lerobot has them: a pandas DataFrame indexed by task with a ``task_index`` column."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("meta.tasks needs pandas; use meta.task_names (task_index -> task)") from err
        frame = pd.DataFrame({"task_index": range(len(self.task_names))}, index=self.task_names)
        frame.index.name = "task"
        return frame

    @property
    def episodes(self) -> list[dict[str, Any]]:
        """Episode rows (without ``stats/`` columns) as dicts, sorted by episode index."""
        return self._episode_table.to_pylist()

    # --- lookups ------------------------------------------------------------------------------
    def episode_row(self, episode_index: int) -> int:
        """Position of ``episode_index`` in the episode arrays; ValueError if it is not in the dataset."""
        try:
            return self._row_of_episode[int(episode_index)]
        except KeyError:
            raise ValueError(
                f"Episode {episode_index} is not in dataset {self.repo_id!r} ({self.root}): it has "
                f"{self.total_episodes} episodes with indices "
                f"{int(self.episode_index.min())}..{int(self.episode_index.max())}"
            ) from None

    def get_data_file_path(self, episode_index: int) -> Path:
        """Relative path of the parquet file holding ``episode_index``'s rows."""
        row = self.episode_row(episode_index)
        return Path(
            self.data_path.format(
                chunk_index=int(self.data_chunk_index[row]), file_index=int(self.data_file_index[row])
            )
        )

    def get_video_file_path(self, episode_index: int, video_key: str) -> Path:
        """Relative path of the video file holding ``episode_index``'s frames of ``video_key``."""
        row = self.episode_row(episode_index)
        loc = self.videos[video_key]
        return Path(
            self.video_path.format(
                video_key=video_key,
                chunk_index=int(loc.chunk_index[row]),
                file_index=int(loc.file_index[row]),
            )
        )


def load_metadata(
    repo_id: str,
    root: str | Path | None,
    revision: str | None = None,
    data_files_root: str | Path | None = None,
    policy: RetryPolicy | None = None,
) -> DatasetMetadata:
    """Reads a LeRobot v3 dataset's metadata, local or remote; clear errors naming the file on bad input.

    ``data_files_root`` (a local directory or an fsspec URL) is where ``data/`` and ``videos/`` are
    read from when they do not sit next to ``meta/`` (the reference design's bucket layout);
    metadata always comes from ``root`` / ``repo_id``. ``policy``: retries of remote reads (a
    server that stays unreachable raises ``ServerUnreachableError``, a missing file
    FileNotFoundError).
    """
    location = resolve_location(repo_id, root, revision, policy)
    data_location = location
    if data_files_root is not None:
        data_location = resolve_location(repo_id, data_files_root, revision, policy)
        if isinstance(data_location.root, Path) and not data_location.root.is_dir():
            raise FileNotFoundError(
                f"data_files_root {data_location.root} does not exist: it should hold the dataset's data/ "
                "and videos/ folders (a local directory or a URL: http(s)://, hf://, s3://)"
            )
    root_path = location.root
    if isinstance(root_path, Path) and not root_path.is_dir():
        raise FileNotFoundError(
            f"Dataset root {root_path} does not exist (repo_id={repo_id!r}). Pass root= pointing at a "
            "LeRobot v3 dataset (with meta/info.json), or a URL (http(s)://, hf://datasets/, s3://)."
        )
    info = _load_info(location, INFO_PATH)
    table = _load_episodes(location, int(info.get("chunks_size") or 1000))
    episodes_dir = location.join(EPISODES_DIR)
    video_keys = [k for k, ft in info["features"].items() if ft.get("dtype") == "video"]
    _require_columns(
        table,
        [*_EPISODE_COLUMNS, *_DATA_COLUMNS, *(f"videos/{k}/{c}" for k in video_keys for c in _VIDEO_COLUMNS)],
        episodes_dir,
    )
    table = table.sort_by("episode_index")

    def column(name: str, dtype: type) -> np.ndarray:
        return table.column(name).to_numpy().astype(dtype)

    episode_index = column("episode_index", np.int64)
    if len(np.unique(episode_index)) != len(episode_index):
        raise ValueError(f"{episodes_dir}: episode_index has duplicates")
    length = column("length", np.int64)
    from_index = column("dataset_from_index", np.int64)
    to_index = column("dataset_to_index", np.int64)
    bad = np.nonzero(to_index - from_index != length)[0]
    if len(bad):
        ep = int(episode_index[bad[0]])
        raise ValueError(
            f"{episodes_dir}: episode {ep} has length {int(length[bad[0]])} but "
            f"dataset_to_index - dataset_from_index = {int(to_index[bad[0]] - from_index[bad[0]])}"
        )
    videos = {
        k: VideoLocation(
            chunk_index=column(f"videos/{k}/chunk_index", np.int64),
            file_index=column(f"videos/{k}/file_index", np.int64),
            from_timestamp=column(f"videos/{k}/from_timestamp", np.float64),
            to_timestamp=column(f"videos/{k}/to_timestamp", np.float64),
        )
        for k in video_keys
    }
    meta = DatasetMetadata(
        root=root_path,
        repo_id=repo_id,
        info=info,
        task_names=_load_tasks(location, TASKS_PATH),
        stats=_load_stats(location, STATS_PATH),
        episode_index=episode_index,
        length=length,
        dataset_from_index=from_index,
        dataset_to_index=to_index,
        data_chunk_index=column("data/chunk_index", np.int64),
        data_file_index=column("data/file_index", np.int64),
        videos=videos,
        _episode_table=table,
        _row_of_episode={int(ep): row for row, ep in enumerate(episode_index)},
        location=location,
        data_location=data_location,
    )
    check_episodes(meta, episodes_dir)  # Note [What is checked, and when] in lerobot_stream.validation
    return meta


def _load_info(location: DatasetLocation, rel: str) -> InfoDict:
    path = location.join(rel)
    raw = location.read_json(rel)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in ("codebase_version", "fps", "features") if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing required keys {missing}")
    version = str(raw["codebase_version"])
    if not version.startswith("v3."):
        raise ValueError(
            f"{path}: codebase_version {version!r} is not supported; lerobot-stream reads LeRobot "
            f"{CODEBASE_VERSION} datasets (convert older ones with lerobot's convert_dataset_v21_to_v30)"
        )
    fps = raw["fps"]
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise ValueError(f"{path}: fps must be a positive number, got {fps!r}")
    features = raw["features"]
    if not isinstance(features, dict) or not all(
        isinstance(ft, dict) and "dtype" in ft for ft in features.values()
    ):
        raise ValueError(f"{path}: features must map each name to an object with a 'dtype'")
    check_info(raw, path)
    for ft in features.values():
        if isinstance(ft.get("shape"), list):
            ft["shape"] = tuple(ft["shape"])
    return InfoDict(raw)


def _load_episodes(location: DatasetLocation, files_per_chunk: int) -> pa.Table:
    directory = location.join(EPISODES_DIR)
    paths = location.list_numbered_files(EPISODES_PATH, files_per_chunk)
    if not paths:
        raise FileNotFoundError(
            f"No episode metadata parquet files under {directory} (expected chunk-*/file-*.parquet)"
        )
    tables = []
    for rel in paths:
        tables.append(location.read_parquet(rel, lambda name: not name.startswith("stats/")))
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as err:
        raise ValueError(
            f"Episode metadata files under {directory} have incompatible schemas: {err}"
        ) from err


def _require_columns(table: pa.Table, columns: list[str], where: Path) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"Episode metadata under {where} lacks columns {missing}")


def _load_tasks(location: DatasetLocation, rel: str) -> list[str]:
    path = location.join(rel)
    table = location.read_parquet(rel)
    if "task_index" not in table.column_names:
        raise ValueError(f"{path}: no task_index column (columns: {table.column_names})")
    # pandas writes the task strings as the index: a 'task' or '__index_level_0__' column.
    name = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if name is None:
        raise ValueError(f"{path}: no task column (columns: {table.column_names})")
    indices = table.column("task_index").to_pylist()
    names = table.column(name).to_pylist()
    tasks: list[str | None] = [None] * len(indices)
    for index, task in zip(indices, names, strict=True):
        if index is None or not 0 <= index < len(indices):
            raise ValueError(f"{path}: task_index {index} out of range 0..{len(indices) - 1}")
        if tasks[index] is not None:
            raise ValueError(f"{path}: task_index {index} is given twice ({tasks[index]!r} and {task!r})")
        tasks[index] = task
    return [str(t) for t in tasks]


def _load_stats(location: DatasetLocation, rel: str) -> dict[str, Any] | None:
    try:
        raw = location.read_json(rel)
    except FileNotFoundError:
        return None
    return {
        key: {name: np.asarray(value) for name, value in entry.items()} if isinstance(entry, dict) else entry
        for key, entry in raw.items()
    }
