"""Video decoding: one file's frames at given timestamps, as torch tensors, on the CPU or a GPU.

The decoders live in the C++ core (``lerobot_stream._core``); the device choice is made in one place
there (``decode/decoder_factory.h``) and this module is its Python face. Frames come back as one
contiguous tensor ``[T, 3, H, W]`` (RGB, CHW) that shares the decoder's buffer (DLPack, no copy), on
the decoder's device: ``torch.uint8``, or ``torch.float32`` in [0, 1] made in the same pass and
bitwise equal to ``uint8_frames / 255`` (lerobot's ``frames.type(torch.float32) / 255``; on a GPU,
the GPU's uint8 frames / 255). ``DecoderCache.decode_into`` writes frames into tensors the caller
allocated instead (e.g. the slots of a batch in shared memory, or GPU tensors for a CUDA cache),
decoding several files at once when ``parallelism`` allows (see :func:`decode_parallelism`): the one
way every backend writes caller memory (Note [Batch fill] in ``cpp/decode/batch_fill.h``).

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

Devices and backends (Note [CUDA backend choice] in ``cpp/decode/decoder_factory.h``):

- ``device="cpu"``: libav (dav1d for AV1), colour by swscale.
- ``device="cuda"`` / ``"cuda:N"``, with ``cuda_backend``:
  ``"nvdec"`` (NVDEC only; a stream this GPU's NVDEC cannot decode raises
  :class:`CudaUnavailableError` naming file, codec, GPU and reason), ``"cpu->cuda"`` (the hybrid
  path: CPU decode, planar YUV copied to the GPU, colour conversion there), or ``"auto"`` (default:
  NVDEC where it can, the hybrid path where NVDEC reports it cannot, e.g. AV1 on H100/H200, A100 and
  Turing). The backend taken is ``VideoDecoder.backend`` and is counted in the caches' and the decode
  stage's ``stats()``; each distinct reason for the hybrid path is logged once per process.

Without a usable GPU, asking for ``"cuda"`` raises :class:`CudaUnavailableError` with the reason
``lerobot_stream.cuda_info()`` gives (built without CUDA, no driver, no libnvcuvid, no device).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import torch

from lerobot_stream import _core

FrameTimestampError = _core.FrameTimestampError
"""Raised when no frame lies within ``tolerance_s`` of a requested timestamp (a ``ValueError``)."""

CudaUnavailableError = _core.CudaUnavailableError
"""Raised when a CUDA device is asked for but cannot be used here (a ``RuntimeError``); the message
carries the reason ``cuda_info()`` reports, or names file, codec, GPU and cause for a stream."""

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


CudaBackend = Literal["auto", "nvdec", "cpu->cuda"]
CUDA_BACKENDS: tuple[str, ...] = ("auto", "nvdec", "cpu->cuda")

_log = logging.getLogger("lerobot_stream")
_logged_notes: set[str] = set()


def check_device(device: str | torch.device) -> str:
    """``str(device)`` when it names a usable device (``"cpu"``, ``"cuda"``, ``"cuda:N"``); does not
    initialise CUDA in torch (safe before DataLoader workers fork).

    Raises:
        ValueError: not ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        CudaUnavailableError: CUDA asked for but not usable, with the reason ``cuda_info()`` gives.
    """
    text = str(device)
    try:
        _core.require_device(text)  # ValueError for a malformed name
    except CudaUnavailableError:
        if _core.built_with_cuda:
            raise  # the driver's own reason (no driver, no device N, ...)
        raise CudaUnavailableError(f"CUDA unavailable: {_core.cuda_info()['reason']}") from None
    return text


def resolve_device(device: str | torch.device) -> str:
    """``"cpu"`` or ``"cuda:N"`` for ``device``; checks that a CUDA device is usable.

    ``"cuda"`` without an index means torch's current device when torch has CUDA, else device 0.

    Raises:
        ValueError: not ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        CudaUnavailableError: CUDA asked for but not usable (the reason says why), or torch has no CUDA
            to receive GPU tensors.
    """
    text = str(device)
    if text == "cuda" and torch.cuda.is_available():
        text = f"cuda:{torch.cuda.current_device()}"
    check_device(text)
    if text != "cpu" and not torch.cuda.is_available():
        raise CudaUnavailableError(
            f"CUDA unavailable: {text} is usable, but torch {torch.__version__} has no CUDA to receive GPU "
            "tensors (install a CUDA build of torch)"
        )
    return text if text == "cpu" or ":" in text else f"{text}:0"


def check_cuda_backend(cuda_backend: str) -> str:
    """Returns ``cuda_backend`` when it is one of :data:`CUDA_BACKENDS`, else raises ValueError."""
    if cuda_backend not in CUDA_BACKENDS:
        raise ValueError(f"cuda_backend must be one of {list(CUDA_BACKENDS)}, got {cuda_backend!r}")
    return cuda_backend


def current_stream(device: str) -> int:
    """The CUDA stream handle torch is using on ``device`` (0 for the CPU): frames are handed to it."""
    if device == "cpu":
        return 0
    return int(torch.cuda.current_stream(torch.device(device)).cuda_stream)


def log_backend_notes(notes: Iterable[str]) -> None:
    """Logs each distinct backend note (why ``cuda_backend="auto"`` took the hybrid path) once per process."""
    for note in notes:
        if note and note not in _logged_notes:
            _logged_notes.add(note)
            _log.warning("lerobot_stream: %s", note)


FRAME_DTYPES = {torch.uint8: "uint8", torch.float32: "float32"}


def _dtype_name(dtype: torch.dtype) -> str:
    name = FRAME_DTYPES.get(dtype)
    if name is None:
        raise ValueError(f"dtype must be torch.uint8 or torch.float32, got {dtype}")
    return name


class VideoDecoder:
    """Decodes one video (AV1 via dav1d, H.264, HEVC; 8-bit 4:2:0/4:2:2/4:4:4 and more via swscale).

    Args:
        source: the video file (mp4 as LeRobot writes it), or a :class:`ByteSource` (one episode
            segment of a remote file, decoded on the file's clock).
        device: where frames are decoded and returned: ``"cpu"`` (libav), ``"cuda"`` or ``"cuda:N"``.
        threads: CPU decoder threads for this file (the CPU and ``"cpu->cuda"`` backends). Keep 1
            inside DataLoader workers (the workers are the parallelism); raise it for a single-process
            reader.
        cuda_backend: for ``device="cuda"``: ``"auto"``, ``"nvdec"`` or ``"cpu->cuda"`` (module docs).

    CUDA frames are handed to torch's current stream at each call (the stream waits for the decode;
    the host does not) and their memory returns to the decoder's pool on that stream when the tensor
    is freed: use them on that stream, or ``record_stream`` them for another.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, not a video, corrupt, or its codec is unsupported; a bad
            ``device`` or ``cuda_backend``. The message names the file (or the argument) and the reason.
        CudaUnavailableError: CUDA asked for and not usable, or no backend can decode the stream on
            this GPU (names file, codec, GPU and reason).
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        device: str | torch.device = "cpu",
        threads: int = 1,
        cuda_backend: CudaBackend = "auto",
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = libav's choice), got {threads}")
        check_cuda_backend(cuda_backend)
        self._device = resolve_device(device)
        self._decoder = _core.open_decoder(
            _core_source(source),
            device=self._device,
            threads=threads,
            cuda_backend=cuda_backend,
            stream=current_stream(self._device),
        )
        log_backend_notes([self._decoder.backend_note])

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``: where frames are decoded and returned."""
        return self._device

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
        """Which backend decodes this stream: ``"cpu"``, ``"nvdec"`` or ``"cpu->cuda"``."""
        return self._decoder.backend

    @property
    def backend_note(self) -> str:
        """Why ``cuda_backend="auto"`` chose this backend (NVDEC could not decode the stream), else ``""``."""
        return self._decoder.backend_note

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
        if self._device != "cpu":
            self._decoder.set_stream(current_stream(self._device))
        return self._decoder.get_frames_at([float(t) for t in timestamps], tolerance_s, _dtype_name(dtype))


class DecoderCache:
    """An LRU of open decoders keyed by file path or :attr:`ByteSource.key` (thread-safe), all on one device.

    Two ByteSources with the same ``key`` share one cached decoder: a key must name the same bytes.

    Args:
        capacity: most decoders kept open. The dataset sizes it to the episode pool's working set,
            ``min((episode_pool_size + 1) * num_cameras, 128)`` (see
            :func:`default_decoder_cache_capacity`).
        threads: CPU decoder threads per file.
        max_bytes: bound on the open decoders' estimated memory (reference frames and buffers);
            ``None`` bounds by count only. The least recently used decoders close beyond either bound.
        device, cuda_backend: as for :class:`VideoDecoder`. CUDA frames are handed to torch's default
            stream.
        stash_bytes: keep decoded frames that requests of this pass have not asked for yet (decoded on
            the way to another frame, or ahead to the end of a GOP before a seek), up to this many bytes
            of YUV frames over all decoders (Note [Frame stash] in ``cpp/av/frame_stash.h``); call
            :meth:`begin_pass` when a new pass over the frames starts. Frames are bitwise the same as
            without. ``None``: keep none. CPU only.
    """

    def __init__(
        self,
        capacity: int,
        *,
        threads: int = 1,
        max_bytes: int | None = None,
        device: str | torch.device = "cpu",
        cuda_backend: CudaBackend = "auto",
        stash_bytes: int | None = None,
    ) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1 or None, got {max_bytes}")
        check_cuda_backend(cuda_backend)
        self._device = resolve_device(device)
        self._stash = None if stash_bytes is None else _core.FrameStashBudget(stash_bytes)
        self._cache = _core.DecoderCache(
            capacity,
            threads=threads,
            max_bytes=max_bytes or 0,
            device=self._device,
            cuda_backend=cuda_backend,
            stash=self._stash,
        )

    @property
    def capacity(self) -> int:
        return self._cache.capacity

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``."""
        return self._device

    def get_frames_at(
        self,
        source: VideoSource,
        timestamps: Sequence[float],
        tolerance_s: float = 1e-4,
        *,
        dtype: torch.dtype = torch.uint8,
    ) -> torch.Tensor:
        """Like :meth:`VideoDecoder.get_frames_at`, through the cached decoder of ``source``."""
        frames = self._cache.get_frames_at(
            _core_source(source), [float(t) for t in timestamps], tolerance_s, _dtype_name(dtype)
        )
        if self._device != "cpu":
            log_backend_notes(self._cache.stats()["backend_notes"])
        return frames

    def get_gray12_frames_at(
        self, source: VideoSource, timestamps: Sequence[float], tolerance_s: float = 1e-4
    ) -> torch.Tensor:
        """A depth-map video's 12-bit codes (int16 ``[T, 1, H, W]``) nearest to ``timestamps``.

        What lerobot reads with PyAV's ``to_ndarray("gray12le")`` (``lerobot_stream.depth``). ``source``
        is a file path or a :class:`ByteSource` (an episode segment of a remote depth video). CPU only.
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

        Each output is a contiguous tensor ``[T, 3, H, W]`` (or ``[3, H, W]`` for one timestamp) on
        this cache's device (a CUDA cache writes on its GPU and hands the writes to torch's current
        stream there, without a host wait), all uint8 or all float32 (values as
        :meth:`VideoDecoder.get_frames_at` gives them), of the video's size (else ValueError naming
        the file). Requests for one file decode through one decoder call; up to ``parallelism`` files
        decode at once (GIL released).
        """
        self._cache.decode_into(
            [_core_source(s) for s in sources],
            [[float(t) for t in ts] for ts in timestamps],
            list(outputs),
            tolerance_s,
            max(int(parallelism), 1),
            current_stream(self._device),
        )
        if self._device != "cpu":
            log_backend_notes(self._cache.stats()["backend_notes"])

    def stream_info(self, source: VideoSource) -> dict[str, object]:
        """The stream facts of ``source`` (``VideoDecoder.info``), opening its decoder on a miss."""
        return self._cache.stream_info(_core_source(source))

    def begin_pass(self) -> None:
        """Starts a new pass over the frames (an epoch): with a stash, frames served before are kept
        again when decoded on the way. Without one, nothing."""
        if self._stash is not None:
            self._stash.begin_pass()

    def stats(self) -> dict[str, object]:
        """Counters: hits, misses, evictions, open_decoders, capacity, bytes, max_bytes (0 = unbounded),
        opened_by_backend (files opened per backend), backend_notes (why a rule chose a backend),
        ``decoder``: what every decoder of this cache did (see :data:`DECODER_STAT_KEYS`), and with a
        stash ``stash``: its ``max_bytes``, ``used_bytes`` and ``peak_bytes``."""
        stats = self._cache.stats()
        if self._stash is not None:
            stash = self._stash
            stats["stash"] = {
                "max_bytes": stash.max_bytes,
                "used_bytes": stash.used_bytes,
                "peak_bytes": stash.peak_bytes,
            }
        return stats

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
    "frames_from_stash",
    "frames_stashed",
    "frames_decoded_ahead",
    "seeks",
    "flushes",
    "forward_gop_skips",
    "packets_read",
    "decode_s",
    "keyframe_decode_s",
    "convert_s",
)
"""Decoder counters: frames asked for, decoded (of them keyframes), converted into outputs, served
without decoding; with a frame stash, requests served from it, frames kept in it and frames decoded
only to be kept (decode-ahead; part of the decoded); keyframe seeks and codec flushes (every seek
flushes, nothing else does); GOP boundaries crossed by decoding forward instead of seeking; packets
read; seconds reading and decoding (of them producing keyframes) and converting.
``frames_decoded / frames_requested`` is what one random access really decodes."""


def _decoded_bytes_per_pixel(pix_fmt: str) -> float:
    """Bytes per pixel of a decoded frame in ``pix_fmt`` (all planes); 3 when it is not known."""
    deep = 2 if pix_fmt.endswith(("10le", "12le", "16le", "10be", "12be")) else 1
    formats = (("yuv420", 1.5), ("yuvj420", 1.5), ("nv12", 1.5), ("yuv422", 2.0), ("gray", 1.0))
    for prefix, per_pixel in formats:
        if pix_fmt.startswith(prefix):
            return per_pixel * deep
    return 3.0 * deep


def frame_stash_bytes_for(pool_frames: int, cameras: Sequence[Mapping[str, Any]]) -> int:
    """The frame stash budget that gives one consumer the whole gain (Note [Frame stash]).

    With uniform random order the stash holds up to about a quarter of a large pool's frames of each
    camera at mid-pass, and more of a pool of few or rotating episodes (a third of a 3-episode pool in
    the tests); this is a third of ``pool_frames`` for every camera (``cameras``: the video features'
    ``info`` dicts, ``video.height``, ``video.width``, ``video.pix_fmt``) in its decoded pixel format
    (4:2:0 is 1.5 bytes a pixel, 10/12-bit twice that, unknown formats 3). E.g. 2 cameras of 480x640
    yuv420p and 1,800 pooled frames: 0.51 GiB.
    """
    per_frame = sum(
        int(cam["video.height"])
        * int(cam["video.width"])
        * _decoded_bytes_per_pixel(str(cam.get("video.pix_fmt", "")))
        for cam in cameras
    )
    return max(1, math.ceil(pool_frames / 3 * per_frame))


def decode_parallelism(num_files: int, consumers: int = 1) -> int:
    """Threads one consumer should decode ``num_files`` files with (Note [Decode parallelism] in the core).

    The cores this process may run on (``os.sched_getaffinity``) are shared by ``consumers`` decoding
    processes (DataLoader workers times local ranks): one consumer gets ``cores // consumers`` of
    them, at least 1 and at most one per file, so a saturated machine never gets extra threads.
    """
    return max(1, min(int(num_files), usable_cores() // max(int(consumers), 1)))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; all cores where that is unknown)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
