"""Video decoding: one file's frames at given timestamps, as torch tensors.

The decoders live in the C++ core (``lerobot_stream._core``); this module picks one by device
and documents the contract. Frames come back as one contiguous ``torch.uint8`` tensor
``[T, 3, H, W]`` (RGB, CHW) that shares the decoder's buffer (DLPack, no copy).

Frame choice follows LeRobot: each timestamp (seconds, on the video file's own clock) maps to the
nearest frame, and a gap of ``tolerance_s`` or more raises :class:`FrameTimestampError` naming the
file, the timestamp and the nearest frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from lerobot_stream import _core

FrameTimestampError = _core.FrameTimestampError
"""Raised when no frame lies within ``tolerance_s`` of a requested timestamp (a ``ValueError``)."""

Device = Literal["cpu"]


class VideoDecoder:
    """Decodes one video file (AV1 via dav1d, H.264, HEVC; 8-bit 4:2:0/4:2:2/4:4:4 and more via swscale).

    Args:
        path: the video file (mp4 as LeRobot writes it).
        device: where frames are decoded and returned. ``"cpu"`` uses libav.
        threads: decoder threads for this file. Keep 1 inside DataLoader workers (the workers are the
            parallelism); raise it for a single-process reader.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, not a video, corrupt, or its codec is unsupported; the message
            names the file and the reason.
    """

    def __init__(self, path: str, *, device: Device = "cpu", threads: int = 1) -> None:
        if device != "cpu":
            raise ValueError(f"device must be 'cpu', got {device!r}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = libav's choice), got {threads}")
        self._decoder = _core.CpuVideoDecoder(str(path), threads=threads)

    @property
    def info(self) -> dict[str, object]:
        """Stream facts: codec, pixel_format, color_space, color_range, width, height, fps, num_frames..."""
        return self._decoder.info

    @property
    def frame_times(self) -> list[float]:
        """Presentation time (s) of every frame, ascending."""
        return self._decoder.frame_times

    @property
    def backend(self) -> str:
        """Which backend decodes this stream: ``"cpu"``."""
        return self._decoder.backend

    def stats(self) -> dict[str, int]:
        """Counters: frames_requested, frames_decoded, seeks, packets_read."""
        return self._decoder.stats()

    def get_frames_at(self, timestamps: Sequence[float], tolerance_s: float = 1e-4) -> torch.Tensor:
        """The frames nearest to ``timestamps`` (s), in request order, as uint8 ``[T, 3, H, W]``.

        The GIL is released while decoding, so several threads can decode different files at once.
        """
        return self._decoder.get_frames_at([float(t) for t in timestamps], tolerance_s)


class DecoderCache:
    """An LRU of open decoders keyed by file path (thread-safe).

    Args:
        capacity: most decoders kept open. The dataset sizes it to the episode pool's working set,
            ``min((episode_pool_size + 1) * num_cameras, 128)`` (see
            :func:`default_decoder_cache_capacity`).
        threads: decoder threads per file.
        max_bytes: bound on the open decoders' estimated memory (reference frames and buffers);
            ``None`` bounds by count only. The least recently used decoders close beyond either bound.
    """

    def __init__(self, capacity: int, *, threads: int = 1, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1 or None, got {max_bytes}")
        self._cache = _core.DecoderCache(capacity, threads=threads, max_bytes=max_bytes or 0)

    @property
    def capacity(self) -> int:
        return self._cache.capacity

    def get_frames_at(
        self, path: str, timestamps: Sequence[float], tolerance_s: float = 1e-4
    ) -> torch.Tensor:
        """Like :meth:`VideoDecoder.get_frames_at`, through the cached decoder of ``path``."""
        return self._cache.get_frames_at(str(path), [float(t) for t in timestamps], tolerance_s)

    def get_gray12_frames_at(
        self, path: str, timestamps: Sequence[float], tolerance_s: float = 1e-4
    ) -> torch.Tensor:
        """A depth-map video's 12-bit codes (int16 ``[T, 1, H, W]``) nearest to ``timestamps``.

        What lerobot reads with PyAV's ``to_ndarray("gray12le")`` (``lerobot_stream.depth``).
        """
        return _core.get_gray12_frames_at(self._cache, str(path), [float(t) for t in timestamps], tolerance_s)

    def stats(self) -> dict[str, int]:
        """Counters: hits, misses, evictions, open_decoders, capacity, bytes, max_bytes (0 = unbounded)."""
        return self._cache.stats()

    def clear(self) -> None:
        """Closes every cached decoder."""
        self._cache.clear()


def default_decoder_cache_capacity(episode_pool_size: int, num_cameras: int) -> int:
    """``min((episode_pool_size + 1) * num_cameras, 128)``: the pool's working set of open files."""
    return _core.default_decoder_cache_capacity(episode_pool_size, num_cameras)
