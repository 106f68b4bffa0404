"""Camera video files: real PyAV encodes of several episodes per mp4, rolling over by size.

Note [Episodes packed in one mp4]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
lerobot 0.6.x encodes each episode to its own mp4 and appends it to the camera's current file with
a stream-copy concat, so inside a file episodes are contiguous at 1/fps and each one starts on a
keyframe. We get the same file with one encoder per output file: frames get pts = running frame
count (time base 1/fps) and the first frame of every episode is forced to be a keyframe. An
episode's ``from_timestamp`` is then ``frames_before_it_in_this_file / fps`` and its
``to_timestamp`` is ``from_timestamp + length / fps``, exactly what lerobot stores (it reads them
back as the previous file's stream duration).

Size caps follow lerobot's rule: before an episode is appended, if the file's size plus the
episode's estimated size (bytes per frame so far × length) reaches the cap, the episode starts the
next file instead. A file therefore always holds at least one episode, and a tiny cap gives one
episode per file. Chunk folders hold at most ``chunks_size`` files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

from .layout import VIDEO_PATH, FileSlot

CodecName = Literal["av1", "h264", "hevc"]
CODECS: dict[str, str] = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}
DEFAULT_GOP = 2
DEFAULT_CRF = 30
# lerobot's SVT-AV1 preset is 12; Note [SVT-AV1 preset] in synth/__init__.py says why ours is 10.
DEFAULT_SVTAV1_PRESET = 10


@dataclass(frozen=True)
class EncoderSettings:
    """How camera videos are encoded (lerobot's ``VideoEncoderConfig`` fields we use)."""

    codec: CodecName = "av1"
    gop: int = DEFAULT_GOP
    crf: int = DEFAULT_CRF
    preset: int | str | None = (
        None  # None: DEFAULT_SVTAV1_PRESET for av1, the encoder's own default otherwise
    )
    encoder_threads: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        if self.gop < 1:
            raise ValueError(f"gop must be >= 1, got {self.gop}")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"crf must be in [0, 63], got {self.crf}")

    @property
    def encoder_name(self) -> str:
        """The libav encoder that writes this codec."""
        return CODECS[self.codec]

    @property
    def effective_preset(self) -> int | str | None:
        """Preset passed to the encoder (None: encoder default)."""
        if self.preset is None and self.codec == "av1":
            return DEFAULT_SVTAV1_PRESET
        return self.preset

    def options(self) -> dict[str, str]:
        """libav encoder options, mirroring lerobot's ``VideoEncoderConfig.get_codec_options``."""
        opts = {"g": str(self.gop), "crf": str(self.crf)}
        if self.effective_preset is not None:
            opts["preset"] = str(self.effective_preset)
        if self.codec == "av1":
            params = ["fast-decode=0"]
            if self.encoder_threads is not None:
                params.append(f"lp={self.encoder_threads}")
            opts["svtav1-params"] = ":".join(params)
        else:
            if self.encoder_threads is not None:
                opts["threads"] = str(self.encoder_threads)
            if self.codec == "hevc":
                opts["x265-params"] = "log-level=error"
        return opts

    def info_fields(self) -> dict[str, object]:
        """``video.*`` encoder fields lerobot records in info.json (besides the probed stream fields)."""
        return {
            "video.g": self.gop,
            "video.crf": self.crf,
            "video.preset": self.effective_preset,
            "video.fast_decode": 0,
            "video.video_backend": "pyav",
            "video.extra_options": {},
        }


@dataclass(frozen=True)
class EpisodeVideo:
    """Where one episode of one camera landed."""

    slot: FileSlot
    from_timestamp: float
    to_timestamp: float


class CameraVideoWriter:
    """Writes one camera's episodes, in order, into ``videos/<key>/chunk-XXX/file-XXX.mp4``.

    Owns the open output container and encoder of the current file. Not thread-safe.
    Use as a context manager or call ``close()``; ``close()`` finalises the last file.
    """

    def __init__(
        self,
        root: Path,
        video_key: str,
        *,
        settings: EncoderSettings,
        fps: int,
        height: int,
        width: int,
        file_size_in_mb: float,
        chunks_size: int,
    ) -> None:
        self._root, self._key, self._settings = root, video_key, settings
        self._fps, self._height, self._width = fps, height, width
        self._cap_bytes = file_size_in_mb * 1024 * 1024
        self._chunks_size = chunks_size
        self._slot: FileSlot | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._frames_in_file = 0
        self._bytes_muxed = 0
        self._packets_muxed = 0
        self.paths: list[Path] = []

    def __enter__(self) -> CameraVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_episode(self, frames_yuv420p: Iterable[np.ndarray], length: int) -> EpisodeVideo:
        """Append one episode of ``length`` frames ((H*3/2, W) uint8 yuv420p arrays); say where it went."""
        if length <= 0:
            raise ValueError(f"{self._key}: an episode needs at least one frame")
        if self._container is None or self._would_overflow(length):
            self._open_next_file()
        assert self._stream is not None and self._container is not None
        start = self._frames_in_file
        count = 0
        for i, plane in enumerate(frames_yuv420p):
            count += 1
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts = start + i
            if i == 0:
                frame.pict_type = av.video.frame.PictureType.I
            self._mux(self._stream.encode(frame))
        if count != length:
            raise ValueError(f"{self._key}: episode announced {length} frames but gave {count}")
        self._frames_in_file += length
        assert self._slot is not None
        return EpisodeVideo(self._slot, start / self._fps, (start + length) / self._fps)

    def close(self) -> None:
        """Flush the encoder and finalise the current file (idempotent)."""
        if self._container is None:
            return
        try:
            assert self._stream is not None
            self._mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = self._stream = None

    def _would_overflow(self, length: int) -> bool:
        if self._packets_muxed == 0:
            return False
        per_frame = self._bytes_muxed / self._packets_muxed
        pending = self._frames_in_file - self._packets_muxed  # frames still inside the encoder
        return self._bytes_muxed + per_frame * (pending + length) >= self._cap_bytes

    def _open_next_file(self) -> None:
        self.close()
        self._slot = FileSlot() if self._slot is None else self._slot.next(self._chunks_size)
        path = self._root / VIDEO_PATH.format(
            video_key=self._key, chunk_index=self._slot.chunk_index, file_index=self._slot.file_index
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints banners to stderr unless told otherwise
        container = av.open(str(path), "w")
        try:
            stream = container.add_stream(
                self._settings.encoder_name, rate=self._fps, options=self._settings.options()
            )
            stream.width, stream.height, stream.pix_fmt = self._width, self._height, "yuv420p"
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._frames_in_file = self._bytes_muxed = self._packets_muxed = 0
        self.paths.append(path)

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            self._bytes_muxed += packet.size
            self._packets_muxed += 1
            self._container.mux(packet)


def probe_video_info(path: Path, settings: EncoderSettings) -> dict[str, object]:
    """The ``info`` dict lerobot stores for a video feature, probed from a written file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info: dict[str, object] = {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.fps": int(stream.base_rate),
            "video.channels": 3,
            "has_audio": len(container.streams.audio) > 0,
        }
    info.update(settings.info_fields())
    info["is_depth_map"] = False
    return info
