"""Video decoding: one file's frames at given timestamps, as torch tensors.

The decoders live in the C++ core (``lerobot_stream._core``); this module picks one by device
and documents the contract. Frames come back as one contiguous tensor ``[T, 3, H, W]`` (RGB, CHW)
that shares the decoder's buffer (DLPack, no copy): ``torch.uint8``, or ``torch.float32`` in
[0, 1] made in the same pass and bitwise equal to ``uint8_frames / 255`` (lerobot's
``frames.type(torch.float32) / 255``). ``DecoderCache.decode_into`` writes frames into tensors the
caller allocated instead (e.g. the slots of a batch in shared memory), decoding several files at
once when ``parallelism`` allows (see :func:`decode_parallelism`).

Frame choice follows LeRobot: each timestamp (seconds, on the video file's own clock) maps to the
nearest frame, and a gap of ``tolerance_s`` or more raises :class:`FrameTimestampError` naming the
file, the timestamp and the nearest frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import torch

from lerobot_stream import _core

FrameTimestampError = _core.FrameTimestampError
"""Raised when no frame lies within ``tolerance_s`` of a requested timestamp (a ``ValueError``)."""

Device = Literal["cpu"]
FRAME_DTYPES = {torch.uint8: "uint8", torch.float32: "float32"}


def _dtype_name(dtype: torch.dtype) -> str:
    name = FRAME_DTYPES.get(dtype)
    if name is None:
        raise ValueError(f"dtype must be torch.uint8 or torch.float32, got {dtype}")
    return name


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

    def stats(self) -> dict[str, float]:
        """What random access cost so far (see :data:`DECODER_STAT_KEYS`)."""
        return self._decoder.stats()

    def get_frames_at(
        self, timestamps: Sequence[float], tolerance_s: float = 1e-4, *, dtype: torch.dtype = torch.uint8
    ) -> torch.Tensor:
        """The frames nearest to ``timestamps`` (s), in request order, as ``[T, 3, H, W]``.

        ``dtype=torch.float32`` gives values in [0, 1], bitwise equal to the uint8 frames / 255. The
        GIL is released while decoding, so several threads can decode different files at once.
        """
        return self._decoder.get_frames_at([float(t) for t in timestamps], tolerance_s, _dtype_name(dtype))


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
        self,
        path: str,
        timestamps: Sequence[float],
        tolerance_s: float = 1e-4,
        *,
        dtype: torch.dtype = torch.uint8,
    ) -> torch.Tensor:
        """Like :meth:`VideoDecoder.get_frames_at`, through the cached decoder of ``path``."""
        return self._cache.get_frames_at(
            str(path), [float(t) for t in timestamps], tolerance_s, _dtype_name(dtype)
        )

    def decode_into(
        self,
        paths: Sequence[str],
        timestamps: Sequence[Sequence[float]],
        outputs: Sequence[torch.Tensor],
        tolerance_s: float = 1e-4,
        *,
        parallelism: int = 1,
    ) -> None:
        """Writes the frames of ``paths[i]`` nearest to ``timestamps[i]`` into ``outputs[i]``.

        Each output is a contiguous CPU tensor ``[T, 3, H, W]`` (or ``[3, H, W]`` for one timestamp),
        all uint8 or all float32 (values as :meth:`VideoDecoder.get_frames_at` gives them), of the
        video's size (else ValueError naming the file). Requests for one file decode through one
        decoder call; up to ``parallelism`` files decode at once (GIL released).
        """
        self._cache.decode_into(
            [str(p) for p in paths],
            [[float(t) for t in ts] for ts in timestamps],
            list(outputs),
            tolerance_s,
            max(int(parallelism), 1),
        )

    def stream_info(self, path: str) -> dict[str, object]:
        """The stream facts of ``path`` (``VideoDecoder.info``), opening its decoder on a miss."""
        return self._cache.stream_info(str(path))

    def stats(self) -> dict[str, object]:
        """Counters: hits, misses, evictions, open_decoders, capacity, bytes, max_bytes (0 = unbounded),
        and ``decoder``: what every decoder of this cache did (see :data:`DECODER_STAT_KEYS`)."""
        return self._cache.stats()

    def clear(self) -> None:
        """Closes every cached decoder."""
        self._cache.clear()


def default_decoder_cache_capacity(episode_pool_size: int, num_cameras: int) -> int:
    """``min((episode_pool_size + 1) * num_cameras, 128)``: the pool's working set of open files."""
    return _core.default_decoder_cache_capacity(episode_pool_size, num_cameras)


DECODER_STAT_KEYS = (
    "frames_requested",
    "frames_decoded",
    "keyframes_decoded",
    "frames_converted",
    "frames_reused",
    "seeks",
    "flushes",
    "forward_gop_skips",
    "packets_read",
    "decode_s",
    "keyframe_decode_s",
    "convert_s",
)
"""Decoder counters: frames asked for, decoded (of them keyframes), converted into outputs, served
without decoding; keyframe seeks and codec flushes (every seek flushes, nothing else does); GOP
boundaries crossed by decoding forward instead of seeking; packets read; seconds reading and decoding
(of them producing keyframes) and converting. ``frames_decoded / frames_requested`` is what one random
access really decodes."""


def decode_parallelism(num_files: int, consumers: int = 1) -> int:
    """Threads one consumer should decode ``num_files`` files with (Note [Decode parallelism] in the core).

    The cores this process may run on (``os.sched_getaffinity``) are shared by ``consumers`` decoding
    processes (DataLoader workers times local ranks): one consumer gets ``cores // consumers`` of
    them, at least 1 and at most one per file, so a saturated machine never gets extra threads.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(num_files), cores // max(int(consumers), 1)))
