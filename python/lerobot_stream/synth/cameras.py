"""One synthetic camera of a dataset being written: RGB or depth, stored as a video or as images.

``SyntheticCamera.write_episode`` renders an episode's frames and stores them where lerobot 0.6.1
would: videos go to the camera's mp4 files (``CameraVideoWriter``, Note [Episodes packed in one mp4]),
``image`` features become a column of encoded frames in the data parquet (lerobot's
``use_videos=False``). It returns what the episode row and the data file need plus the episode's
stats. Depth cameras: see ``synth/depth.py``. Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .content import CameraScene
from .depth import (
    DEPTH_SETTINGS,
    DepthScene,
    depth_info_fields,
    encode_depth_tiff,
    encode_png,
    quantize_depth_mm,
)
from .layout import VIDEO_PATH
from .stats import Stats, image_stats, sample_indices
from .video import CameraVideoWriter, EncoderSettings, probe_video_info

CameraStorage = Literal["video", "image"]
CAMERA_STORAGES = ("video", "image")


@dataclass
class EpisodeCamera:
    """What one episode of one camera produced."""

    row: dict[str, Any] = field(default_factory=dict)  # videos/<key>/... episode metadata columns
    column: list[dict[str, Any]] | None = None  # image features: the data parquet column
    stats: Stats = field(default_factory=dict)


class SyntheticCamera:
    """Renders and stores one camera (``key``) of a synthetic dataset."""

    def __init__(
        self,
        root: Path,
        key: str,
        *,
        camera_index: int,
        depth: bool,
        storage: CameraStorage,
        seed: int,
        height: int,
        width: int,
        fps: int,
        settings: EncoderSettings,
        video_files_size_in_mb: float,
        chunks_size: int,
        stats_step: int,
        faststart: bool = True,
        mid_gop_every: int = 0,
    ) -> None:
        if storage not in CAMERA_STORAGES:
            raise ValueError(f"camera storage must be one of {CAMERA_STORAGES}, got {storage!r}")
        self.key, self.depth, self.storage = key, depth, storage
        self._root, self._height, self._width, self._step = root, height, width, stats_step
        self._settings = DEPTH_SETTINGS if depth else settings
        self._rgb = (
            None if depth else CameraScene(seed=seed, camera_index=camera_index, height=height, width=width)
        )
        self._depth = (
            DepthScene(seed=seed, camera_index=camera_index, height=height, width=width) if depth else None
        )
        self._video: CameraVideoWriter | None = None
        if storage == "video":
            self._video = CameraVideoWriter(
                root,
                key,
                settings=self._settings,
                fps=fps,
                height=height,
                width=width,
                file_size_in_mb=video_files_size_in_mb,
                chunks_size=chunks_size,
                pix_fmt="gray12le" if depth else "yuv420p",
                faststart=faststart,
                mid_gop_every=mid_gop_every,
            )

    @property
    def video_files(self) -> list[Path]:
        """The mp4 files written so far (none for image features)."""
        return [] if self._video is None else self._video.paths

    def feature(self) -> dict[str, Any]:
        """The camera's entry in ``info.json``'s features (a video's ``info`` is filled by ``close``)."""
        info: dict[str, Any] | None = None
        if self.storage == "image":
            info = {"is_depth_map": True, "depth_unit": "mm"} if self.depth else {"is_depth_map": False}
        return {
            "dtype": self.storage,
            "shape": [self._height, self._width, 1 if self.depth else 3],
            "names": ["height", "width", "channels"],
            "info": info,
        }

    def write_episode(self, episode_index: int, length: int) -> EpisodeCamera:
        """Render and store one episode; return its metadata, data column (images) and stats."""
        samples: list[np.ndarray] = []
        wanted = set(sample_indices(length))
        out = EpisodeCamera()
        frames = self._frames(episode_index, length, wanted, samples)
        if self._video is not None:
            placed = self._video.write_episode(frames, length)
            out.row = {
                f"videos/{self.key}/chunk_index": placed.slot.chunk_index,
                f"videos/{self.key}/file_index": placed.slot.file_index,
                f"videos/{self.key}/from_timestamp": placed.from_timestamp,
                f"videos/{self.key}/to_timestamp": placed.to_timestamp,
            }
        else:
            suffix = "tiff" if self.depth else "png"
            out.column = [{"bytes": data, "path": f"frame-{i:06d}.{suffix}"} for i, data in enumerate(frames)]
        out.stats = image_stats(np.stack(samples), scale=1.0 if self.depth else 255.0)
        return out

    def close(self) -> dict[str, Any] | None:
        """Finalise the files; a video camera returns its probed ``info`` (lerobot's ``get_video_info``)."""
        if self._video is None:
            return None
        self._video.close()
        first = self._root / VIDEO_PATH.format(video_key=self.key, chunk_index=0, file_index=0)
        if not first.exists():
            return None
        return probe_video_info(first, self._settings, depth_info_fields() if self.depth else None)

    def _frames(
        self, episode: int, length: int, wanted: set[int], samples: list[np.ndarray]
    ) -> Iterator[Any]:
        """The episode's frames in the form its storage takes; sampled ones go to ``samples`` (stats)."""
        step = self._step
        for i in range(length):
            if self._depth is not None:
                depth = self._depth.render(episode, i)
                if i in wanted:
                    samples.append(depth[None, ::step, ::step].astype(np.float64))
                yield quantize_depth_mm(depth) if self._video is not None else encode_depth_tiff(depth)
            else:
                assert self._rgb is not None
                yuv = self._rgb.render(episode, i)
                if i in wanted:
                    samples.append(self._rgb.rgb_of(yuv, step))
                yield yuv if self._video is not None else encode_png(self._rgb.rgb_of(yuv))
