"""The LeRobot v3.0 on-disk layout: path templates, defaults and chunk/file numbering (lerobot 0.6.x).

Mirrors ``lerobot/datasets/utils.py``: ``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``,
``meta/episodes/chunk-XXX/file-XXX.parquet``, ``data/chunk-XXX/file-XXX.parquet`` and
``videos/<key>/chunk-XXX/file-XXX.mp4``. A chunk folder holds at most ``chunks_size`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"


@dataclass(frozen=True)
class FileSlot:
    """Where one file sits: chunk folder and file number inside it."""

    chunk_index: int = 0
    file_index: int = 0

    def next(self, chunks_size: int) -> FileSlot:
        """The slot after this one; a full chunk (``chunks_size`` files) rolls over to the next chunk."""
        if self.file_index == chunks_size - 1:
            return FileSlot(self.chunk_index + 1, 0)
        return FileSlot(self.chunk_index, self.file_index + 1)


def camera_key(camera_index: int) -> str:
    """Feature name of camera ``camera_index`` (``observation.images.cam<i>``)."""
    return f"observation.images.cam{camera_index}"


def depth_camera_key(camera_index: int) -> str:
    """Feature name of depth camera ``camera_index`` (``observation.images.depth<i>``)."""
    return f"observation.images.depth{camera_index}"
