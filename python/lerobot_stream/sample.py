"""Builds one sample, equal to lerobot's ``LeRobotDataset[i]``, from an episode's rows in RAM.

Given a whole episode's tabular rows and a frame of it, the builder assembles the row's columns,
the ``delta_timestamps`` windows (exact slices of the episode, clamped at its edges, with
``<key>_is_pad``), decodes the camera frames (decode-on-exit, through one decoder cache; image
features: ``lerobot_stream.images``; depth maps: ``lerobot_stream.depth``), applies
``image_transforms`` and adds the ``task`` string.

Note [Video frame timestamps]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A v3 video file holds many episodes back to back. A frame's time in its file is the episode's own
``videos/<key>/from_timestamp`` plus the row's ``timestamp`` (which restarts at 0 every episode),
exactly as lerobot's map-style reader computes it. lerobot 0.6's streaming reader used
``index / fps`` instead, a dataset-wide time that is wrong from the second video file on.
Window frames use the ``timestamp`` of the clamped rows, so padded positions repeat the edge frame.

With no decoder (``video_decode_device="cuda"``, or the CPU decode stage), the builder emits each
camera's frame requests under ``VIDEO_REQUESTS_KEY`` instead of frames, and the training process's
decode stage fills them in (Note [Decode stage requests] in ``lerobot_stream.decode_stage``).

One builder per consumer; not thread-safe (it decodes cameras in parallel on its own threads).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from lerobot_stream import _core
from lerobot_stream.decode_stage import VIDEO_REQUESTS_KEY
from lerobot_stream.decoding import DecoderCache
from lerobot_stream.depth import DepthFeatures
from lerobot_stream.images import ImageFeatures
from lerobot_stream.metadata import DatasetMetadata
from lerobot_stream.tabular import EpisodeRows
from lerobot_stream.video_files import EpisodeVideoFiles


class SampleBuilder:
    """Turns (episode rows, frame) into a lerobot sample dict; see Note [Video frame timestamps]."""

    def __init__(
        self,
        meta: DatasetMetadata,
        decoder: DecoderCache | None,
        videos: EpisodeVideoFiles,
        *,
        delta_indices: dict[str, np.ndarray] | None,
        tolerance_s: float,
        return_uint8: bool,
        image_transforms: Callable | None,
        depth_output_unit: str = "mm",
    ) -> None:
        self._meta = meta
        self._decoder = decoder
        self._videos = videos
        self._delta_indices = delta_indices or {}
        self._tolerance_s = tolerance_s
        self._return_uint8 = return_uint8
        self._image_transforms = image_transforms
        self._video_keys = meta.video_keys
        self._transform_keys = [k for k in meta.camera_keys if k not in set(meta.depth_keys)]
        self._pool: ThreadPoolExecutor | None = None
        self._images = ImageFeatures(meta.image_keys)
        self._depth = DepthFeatures(meta, depth_output_unit)
        self.frames_requested = 0

    def close(self) -> None:
        """Stops the camera-decoding threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._images.close()

    def build(self, rows: EpisodeRows, frame: int) -> dict[str, Any]:
        """The sample of ``rows``' frame ``frame`` (0-based within the episode)."""
        item: dict[str, Any] = rows.row(frame)
        windows: dict[str, np.ndarray] = {}
        for key, offsets in self._delta_indices.items():
            indices, is_pad = _core.window_indices(rows.length, frame, offsets)
            windows[key] = np.asarray(indices, dtype=np.int64)
            item[f"{key}_is_pad"] = torch.from_numpy(np.asarray(is_pad, dtype=np.bool_))
        for key, indices in windows.items():
            column = rows.columns.get(key)
            if isinstance(column, torch.Tensor):
                item[key] = column[torch.from_numpy(indices)]
        item.update(self._images.decode(rows, frame, windows))
        if self._video_keys:
            item = {**self._decode_videos(rows, frame, windows), **item}
        if self._image_transforms is not None:
            for key in self._transform_keys:
                if key in item:
                    item[key] = self._image_transforms(item[key])
        self._depth.convert_images(item)
        item["task"] = self._meta.task_names[int(item["task_index"])]
        return item

    def _decode_videos(self, rows: EpisodeRows, frame: int, windows: dict[str, np.ndarray]) -> dict[str, Any]:
        meta = self._meta
        row = meta.episode_row(rows.episode_index)
        timestamps = rows.columns["timestamp"]
        requests = []
        for key in self._video_keys:
            indices = windows.get(key)
            local = (
                [timestamps[frame].item()]
                if indices is None
                else timestamps[torch.from_numpy(indices)].tolist()
            )
            offset = float(meta.videos[key].from_timestamp[row])
            requests.append((key, rows.episode_index, [offset + ts for ts in local]))
        self.frames_requested += sum(len(ts) for _, _, ts in requests)
        if self._decoder is None:  # the decode stage decodes them (Note [Decode stage requests])
            return {VIDEO_REQUESTS_KEY: {key: self._request(key, ep, ts) for key, ep, ts in requests}}
        if len(requests) == 1:
            return dict([self._decode_one(*requests[0])])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="lrs-decode")
        return dict(self._pool.map(lambda r: self._decode_one(*r), requests))

    def _request(self, key: str, episode_index: int, timestamps: list[float]) -> dict[str, Any]:
        path = self._meta.data_location.join(self._meta.get_video_file_path(episode_index, key))
        return {"path": str(path), "timestamps": torch.tensor(timestamps, dtype=torch.float64)}

    def _decode_one(self, key: str, episode_index: int, timestamps: list[float]) -> tuple[str, torch.Tensor]:
        with self._videos.local(episode_index, key) as path:  # waits for a remote file's download
            if key in self._depth.quantization:
                depth = self._depth.decode_video(self._decoder, key, path, timestamps, self._tolerance_s)
                return key, depth.squeeze(0)
            frames = self._decoder.get_frames_at(path, timestamps, self._tolerance_s)
        if not self._return_uint8:
            frames = frames / 255  # one kernel; bitwise equal to lerobot's frames.type(float32) / 255
        return key, frames.squeeze(0)
