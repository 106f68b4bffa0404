"""``write_dataset``: generate a complete LeRobot v3.0 dataset with real video encodes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from .cameras import CameraStorage, SyntheticCamera
from .content import MAX_CAMERAS, MAX_EPISODES, MAX_FRAMES_PER_EPISODE, check_frame_size
from .layout import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    VIDEO_PATH,
    camera_key,
    depth_camera_key,
)
from .stats import Stats, aggregate, image_downsample_step, numeric_stats
from .tables import (
    INDEX_FEATURES,
    DataFileWriter,
    data_schema,
    write_episodes_metadata,
    write_info,
    write_stats,
    write_tasks,
)
from .video import CodecName, EncoderSettings


@dataclass(frozen=True)
class WriteReport:
    """What ``write_dataset`` produced (also printed by the CLI)."""

    root: Path
    total_episodes: int
    total_frames: int
    video_files: int
    data_files: int
    seconds: float


def write_dataset(root: str | Path, **options: Any) -> Path:
    """Write a synthetic LeRobot v3.0 dataset to ``root`` and return ``root``.

    Shape of the dataset:
        num_episodes, num_cameras (features ``observation.images.cam<i>``), height × width frames at
        ``fps``; episode lengths are ``episode_lengths`` or drawn uniformly in
        [min_length, max_length]; ``num_tasks`` task strings assigned round-robin to episodes;
        ``observation.state`` and ``action`` float32 vectors of ``state_dim``.
    Files (lerobot's knobs and defaults):
        data_files_size_in_mb, video_files_size_in_mb (caps that roll files over; fractions of a
        MB are allowed so tests can force several files), chunks_size (files per chunk folder).
    Cameras:
        camera_storage ``"video"`` (mp4 files) or ``"image"`` (PNG/TIFF bytes in the data parquet,
        lerobot's ``use_videos=False``); depth_cameras: how many depth cameras
        (``observation.images.depth<i>``, uint16 mm; videos are 12-bit lossless HEVC as lerobot
        encodes them, see ``synth/depth.py``).
    Encoding (RGB videos):
        codec ``"av1"`` (libsvtav1), ``"h264"`` (libx264) or ``"hevc"`` (libx265), yuv420p,
        ``gop`` (keyframe interval), ``crf``, ``preset`` (None: 10 for SVT-AV1, the encoder's
        default otherwise), ``encoder_threads`` (None: the encoder decides).
        ``faststart`` (default True, as lerobot): the mp4 sample table before the media.
        ``mid_gop_every`` (default 0: off, lerobot's layout): n >= 1 encodes each video file with one
        encoder, a keyframe forced at every episode's start except every n-th episode of the file,
        which starts mid-GOP (for readers that fetch episodes by byte range; see Note [Episodes
        packed in one mp4]).
    Everything is deterministic given ``seed`` (encoders may differ across thread counts).
    ``root`` must not exist or be empty unless ``overwrite`` is set (then it is replaced).

    Takes the keyword arguments of :func:`write_dataset_with_report`, which also reports file
    counts and the time taken.
    """
    return write_dataset_with_report(root, **options).root


def write_dataset_with_report(
    root: str | Path,
    *,
    num_episodes: int,
    num_cameras: int = 2,
    depth_cameras: int = 0,
    camera_storage: CameraStorage = "video",
    height: int = 480,
    width: int = 640,
    codec: CodecName = "av1",
    fps: int = 30,
    seed: int = 0,
    episode_lengths: Sequence[int] | None = None,
    min_length: int = 30,
    max_length: int = 120,
    num_tasks: int = 1,
    state_dim: int = 6,
    robot_type: str = "synthetic",
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    chunks_size: int = DEFAULT_CHUNK_SIZE,
    gop: int = 2,
    crf: int = 30,
    preset: int | str | None = None,
    encoder_threads: int | None = None,
    faststart: bool = True,
    mid_gop_every: int = 0,
    overwrite: bool = False,
) -> WriteReport:
    """Writes the dataset (see :func:`write_dataset`) and reports file counts and the time taken."""
    started = time.perf_counter()
    root = Path(root)
    settings = EncoderSettings(codec=codec, gop=gop, crf=crf, preset=preset, encoder_threads=encoder_threads)
    lengths = _episode_lengths(num_episodes, episode_lengths, min_length, max_length, seed)
    _check_args(num_cameras, height, width, fps, num_tasks, state_dim, chunks_size)
    if not 0 <= depth_cameras <= MAX_CAMERAS or num_cameras + depth_cameras > MAX_CAMERAS:
        raise ValueError(f"depth_cameras must be in [0, {MAX_CAMERAS - num_cameras}], got {depth_cameras}")
    for name, cap in (
        ("data_files_size_in_mb", data_files_size_in_mb),
        ("video_files_size_in_mb", video_files_size_in_mb),
    ):
        if not cap > 0:
            raise ValueError(f"{name} must be positive, got {cap}")
    _prepare_root(root, overwrite)

    cameras = [
        SyntheticCamera(
            root,
            camera_key(i) if i < num_cameras else depth_camera_key(i - num_cameras),
            camera_index=i,
            depth=i >= num_cameras,
            storage=camera_storage,
            seed=seed,
            height=height,
            width=width,
            fps=fps,
            settings=settings,
            video_files_size_in_mb=video_files_size_in_mb,
            chunks_size=chunks_size,
            stats_step=image_downsample_step(height, width),
            faststart=faststart,
            mid_gop_every=mid_gop_every,
        )
        for i in range(num_cameras + depth_cameras)
    ]
    features = _features(cameras, state_dim)
    tasks = [f"synthetic task {i}" for i in range(num_tasks)]
    data_writer = DataFileWriter(
        root, data_schema(features), file_size_in_mb=data_files_size_in_mb, chunks_size=chunks_size
    )
    rows: list[dict[str, Any]] = []
    episode_stats: list[dict[str, Stats]] = []
    previous_level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        first_index = 0
        for episode_index, length in enumerate(lengths):
            task_index = episode_index % num_tasks
            columns: dict[str, Any] = _episode_columns(
                episode_index, length, first_index, task_index, fps, state_dim, seed
            )
            written = {camera.key: camera.write_episode(episode_index, length) for camera in cameras}
            columns.update({k: w.column for k, w in written.items() if w.column is not None})
            data_slot = data_writer.write_episode(columns)
            row: dict[str, Any] = {
                "episode_index": episode_index,
                "tasks": [tasks[task_index]],
                "length": length,
                "data/chunk_index": data_slot.chunk_index,
                "data/file_index": data_slot.file_index,
                "dataset_from_index": first_index,
                "dataset_to_index": first_index + length,
            }
            stats: dict[str, Stats] = {}
            for key, camera in written.items():
                row.update(camera.row)
                stats[key] = camera.stats
            for key in features:
                if key in columns and key not in written:
                    stats[key] = numeric_stats(columns[key])
            stats = {key: stats[key] for key in features}  # lerobot's column order: features order
            for key, feature_stats in stats.items():
                for stat, value in feature_stats.items():
                    row[f"stats/{key}/{stat}"] = value
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            rows.append(row)
            episode_stats.append(stats)
            first_index += length
    finally:
        data_writer.close()
        video_infos = {camera.key: camera.close() for camera in cameras}
        av.logging.set_level(previous_level)

    for key, info in video_infos.items():
        if info is not None:
            features[key]["info"] = info
    write_episodes_metadata(root, rows)
    write_tasks(root, tasks)
    write_stats(root, {key: aggregate([s[key] for s in episode_stats]) for key in features})
    total_frames = int(sum(lengths))
    write_info(
        root,
        {
            "codebase_version": CODEBASE_VERSION,
            "fps": fps,
            "features": features,
            "total_episodes": num_episodes,
            "total_frames": total_frames,
            "total_tasks": num_tasks,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb,
            "video_files_size_in_mb": video_files_size_in_mb,
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "robot_type": robot_type,
            "splits": {"train": f"0:{num_episodes}"},
        },
    )
    return WriteReport(
        root=root,
        total_episodes=num_episodes,
        total_frames=total_frames,
        video_files=sum(len(camera.video_files) for camera in cameras),
        data_files=len(data_writer.paths),
        seconds=time.perf_counter() - started,
    )


def _episode_lengths(
    num_episodes: int, lengths: Sequence[int] | None, min_length: int, max_length: int, seed: int
) -> list[int]:
    if num_episodes < 1 or num_episodes > MAX_EPISODES:
        raise ValueError(f"num_episodes must be in [1, {MAX_EPISODES}], got {num_episodes}")
    if lengths is not None:
        lengths = [int(n) for n in lengths]
        if len(lengths) != num_episodes:
            raise ValueError(f"episode_lengths has {len(lengths)} entries but num_episodes is {num_episodes}")
    else:
        if not 1 <= min_length <= max_length:
            raise ValueError(
                f"need 1 <= min_length <= max_length, got min_length={min_length} max_length={max_length}"
            )
        rng = np.random.default_rng([seed, 0x1E6])
        lengths = rng.integers(min_length, max_length + 1, size=num_episodes).tolist()
    bad = [n for n in lengths if not 1 <= n < MAX_FRAMES_PER_EPISODE]
    if bad:
        raise ValueError(f"episode lengths must be in [1, {MAX_FRAMES_PER_EPISODE}), got {bad[:5]}")
    return lengths


def _check_args(
    num_cameras: int, height: int, width: int, fps: int, num_tasks: int, state_dim: int, chunks_size: int
) -> None:
    if not 1 <= num_cameras <= MAX_CAMERAS:
        raise ValueError(f"num_cameras must be in [1, {MAX_CAMERAS}], got {num_cameras}")
    check_frame_size(height, width)
    for name, value in (
        ("fps", fps),
        ("num_tasks", num_tasks),
        ("state_dim", state_dim),
        ("chunks_size", chunks_size),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _prepare_root(root: Path, overwrite: bool) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not overwrite:
            raise FileExistsError(
                f"{root} already exists and is not empty (pass overwrite=True to replace it)"
            )
        if root.is_dir():
            shutil.rmtree(root)
        else:
            root.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _features(cameras: list[SyntheticCamera], state_dim: int) -> dict[str, dict[str, Any]]:
    motors = [f"motor_{i}.pos" for i in range(state_dim)]
    features: dict[str, dict[str, Any]] = {
        "action": {"dtype": "float32", "shape": [state_dim], "names": motors},
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": motors},
    }
    for camera in cameras:
        # A video's info is filled from the written file, as lerobot's update_video_info does.
        features[camera.key] = camera.feature()
    features.update({k: dict(v) for k, v in INDEX_FEATURES.items()})
    return features


def joint_positions(
    episode_index: int, frame_indices: np.ndarray, fps: int, state_dim: int, seed: int
) -> np.ndarray:
    """Synthetic joint trajectory of an episode at the given frames: (len, state_dim) float32 sinusoids."""
    rng = np.random.default_rng([seed, episode_index, 0x57A7E])
    freq = rng.uniform(0.1, 1.0, size=state_dim)
    phase = rng.uniform(0.0, 2 * np.pi, size=state_dim)
    amplitude = rng.uniform(0.5, 90.0, size=state_dim)
    t = frame_indices[:, None].astype(np.float64) / fps
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def _episode_columns(
    episode_index: int, length: int, first_index: int, task_index: int, fps: int, state_dim: int, seed: int
) -> dict[str, np.ndarray]:
    frame_index = np.arange(length, dtype=np.int64)
    return {
        "action": joint_positions(episode_index, frame_index + 1, fps, state_dim, seed),
        "observation.state": joint_positions(episode_index, frame_index, fps, state_dim, seed),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(length, episode_index, dtype=np.int64),
        "index": np.arange(first_index, first_index + length, dtype=np.int64),
        "task_index": np.full(length, task_index, dtype=np.int64),
    }
