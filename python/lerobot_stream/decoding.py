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

A video is a local file (a path) or a :class:`ByteSource`: the fetched byte ranges of a remote mp4,
its header pieces (``ftyp`` + ``moov`` + the ``mdat`` box header, and a ``moov`` at the tail of a
file that is not faststart) plus one media range holding one episode's samples, from local files or
``bytes``. :func:`scan_sample_index` lists a remote file's samples (byte position, size, pts, dts,
keyframe) from its header alone, so the media range of an episode is: from the keyframe at or before
its first frame to the end of its last sample. A decoder over a ByteSource decodes that episode
segment only, on the file's own clock (the same timestamps and bitwise the same frames as the whole
file); a timestamp outside the segment raises :class:`FrameTimestampError` saying so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import torch

from lerobot_stream import _core

FrameTimestampError = _core.FrameTimestampError
"""Raised when no frame lies within ``tolerance_s`` of a requested timestamp (a ``ValueError``)."""

ByteSource = _core.ByteSource
"""Fetched byte ranges of a remote video file (see the module docstring).

``ByteSource(name, size, pieces, media_begin=-1, media_end=-1, start_pts=None)``: ``name`` is the
file's URL (every error names it), ``size`` its total bytes, ``pieces`` a list of
``(file_offset, length, backing, backing_offset)`` with ``backing`` a local file path (``str``) or the
bytes themselves (``bytes``, kept alive, not copied). Pieces inside ``[media_begin, media_end)`` are
the episode's media range (adjacent, covering it exactly); ``start_pts`` is the pts (stream time base)
of the keyframe sample at ``media_begin``. ``key`` (``"<name>#<media_begin>-<media_end>"``) identifies
the content for caches. Inconsistent pieces raise ``ValueError`` naming the URL; a missing backing
file ``FileNotFoundError``. When decoding, a read outside the fetched ranges, an index that disagrees
with the bytes, or a truncated segment raises ``ValueError`` naming the URL.
"""

VideoSource = str | os.PathLike[str] | ByteSource
"""What a decoder opens: a local file path, or a :class:`ByteSource`."""


def scan_sample_index(source: ByteSource) -> dict[str, Any]:
    """The video samples of a remote mp4 from its header pieces alone, in decode (file) order.

    Returns a dict of numpy arrays ``pos``, ``size``, ``pts``, ``dts`` (int64), ``key`` and
    ``discard`` (bool; a discarded sample lies outside the file's edit list: decoders need it as a
    reference but never show it), and ``time_base_num``, ``time_base_den``, ``codec``, ``width``,
    ``height``. These are libav's own timestamps (edit lists, B-frame reordering applied), so ranges
    computed from them agree with what the decoder reads. Unfetched bytes after the header read as
    zeros; a truncated header raises ``ValueError`` naming the URL. The GIL is released while
    scanning.
    """
    return _core.scan_sample_index(source)


def _core_source(source: VideoSource) -> str | ByteSource:
    return source if isinstance(source, ByteSource) else os.fspath(source)


Device = Literal["cpu"]
FRAME_DTYPES = {torch.uint8: "uint8", torch.float32: "float32"}


def _dtype_name(dtype: torch.dtype) -> str:
    name = FRAME_DTYPES.get(dtype)
    if name is None:
        raise ValueError(f"dtype must be torch.uint8 or torch.float32, got {dtype}")
    return name


class VideoDecoder:
    """Decodes one video (AV1 via dav1d, H.264, HEVC; 8-bit 4:2:0/4:2:2/4:4:4 and more via swscale).

    Args:
        source: the video file (mp4 as LeRobot writes it), or a :class:`ByteSource` holding one
            episode segment of a remote file (then only that segment's frames can be requested).
        device: where frames are decoded and returned. ``"cpu"`` uses libav.
        threads: decoder threads for this file. Keep 1 inside DataLoader workers (the workers are the
            parallelism); raise it for a single-process reader.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, not a video, corrupt, or its codec is unsupported; for a
            ByteSource also reads outside its fetched ranges, an index mismatch or a truncated
            segment. The message names the file (or URL) and the reason.
    """

    def __init__(self, source: VideoSource, *, device: Device = "cpu", threads: int = 1) -> None:
        if device != "cpu":
            raise ValueError(f"device must be 'cpu', got {device!r}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = libav's choice), got {threads}")
        self._decoder = _core.CpuVideoDecoder(_core_source(source), threads=threads)

    @property
    def info(self) -> dict[str, object]:
        """Stream facts: codec, pixel_format, color_space, color_range, width, height, fps, num_frames..."""
        return self._decoder.info

    @property
    def frame_times(self) -> list[float]:
        """Presentation time (s) of every frame, ascending (of a ByteSource: its segment's frames)."""
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
    """An LRU of open decoders keyed by file path or :attr:`ByteSource.key` (thread-safe).

    Two ByteSources with the same ``key`` share one cached decoder: a key must name the same bytes.

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
        source: VideoSource,
        timestamps: Sequence[float],
        tolerance_s: float = 1e-4,
        *,
        dtype: torch.dtype = torch.uint8,
    ) -> torch.Tensor:
        """Like :meth:`VideoDecoder.get_frames_at`, through the cached decoder of ``source``."""
        return self._cache.get_frames_at(
            _core_source(source), [float(t) for t in timestamps], tolerance_s, _dtype_name(dtype)
        )

    def get_gray12_frames_at(
        self, source: VideoSource, timestamps: Sequence[float], tolerance_s: float = 1e-4
    ) -> torch.Tensor:
        """A depth-map video's 12-bit codes (int16 ``[T, 1, H, W]``) nearest to ``timestamps``.

        What lerobot reads with PyAV's ``to_ndarray("gray12le")`` (``lerobot_stream.depth``). ``source``
        is a file path or a :class:`ByteSource` (an episode segment of a remote depth video).
        """
        return _core.get_gray12_frames_at(
            self._cache, _core_source(source), [float(t) for t in timestamps], tolerance_s
        )

    def decode_into(
        self,
        sources: Sequence[VideoSource],
        timestamps: Sequence[Sequence[float]],
        outputs: Sequence[torch.Tensor],
        tolerance_s: float = 1e-4,
        *,
        parallelism: int = 1,
    ) -> None:
        """Writes the frames of ``sources[i]`` nearest to ``timestamps[i]`` into ``outputs[i]``.

        Each output is a contiguous CPU tensor ``[T, 3, H, W]`` (or ``[3, H, W]`` for one timestamp),
        all uint8 or all float32 (values as :meth:`VideoDecoder.get_frames_at` gives them), of the
        video's size (else ValueError naming the file). Requests for one file decode through one
        decoder call; up to ``parallelism`` files decode at once (GIL released).
        """
        self._cache.decode_into(
            [_core_source(s) for s in sources],
            [[float(t) for t in ts] for ts in timestamps],
            list(outputs),
            tolerance_s,
            max(int(parallelism), 1),
        )

    def stream_info(self, source: VideoSource) -> dict[str, object]:
        """The stream facts of ``source`` (``VideoDecoder.info``), opening its decoder on a miss."""
        return self._cache.stream_info(_core_source(source))

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
