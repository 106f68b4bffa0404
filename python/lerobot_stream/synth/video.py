"""Camera video files: real PyAV encodes of several episodes per mp4, rolling over by size.

Note [Episodes packed in one mp4]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
lerobot 0.6.x encodes each episode to its own mp4 and appends it to the camera's current file with
a stream-copy concat, so inside a file episodes are contiguous at 1/fps, each one is an
independent coded sequence starting on a keyframe, and the file keeps the first episode's codec
header. We do the same without temporary files: each episode is encoded by a fresh encoder into an
in-memory mp4, then its packets are copied into the current file with pts/dts shifted by the
frames already there. An episode's ``from_timestamp`` is ``frames_before_it_in_this_file / fps``
and its ``to_timestamp`` is ``from_timestamp + length / fps``, which is what lerobot stores (it
reads them back as the previous file's stream duration).

lerobot writes the ``moov`` box (the sample table) before the media (``movflags=faststart``), and so
do we; ``faststart=False`` leaves it after the media, as a plain mux does (for readers that must
handle both). ``mid_gop_every=n`` (n >= 1) departs from lerobot on purpose: one encoder per file
encodes its episodes as one stream, with a keyframe forced at each episode's first frame except for
every n-th episode of the file, which then starts mid-GOP (its first frame is not a keyframe unless
the GOP happens to end there); remote readers must fetch such an episode from the keyframe before
it. Roll-over then follows the bytes muxed so far.

Size caps follow lerobot's rule: if the file's size plus the episode's encoded size reaches the
cap, the episode starts the next file instead (sizes are the per-episode mp4 sizes, so the choice
is deterministic). A file always holds at least one episode; a tiny cap gives one episode per
file. Chunk folders hold at most ``chunks_size`` files.

Known problem: once, on a machine loaded ~6x over its 2 cores, libsvtav1 (SVT-AV1 4.1 in PyAV 18)
blocked forever inside ``svt_av1_enc_send_picture`` (all its threads idle on futexes) about 20
episodes into a 480x640 write; identical reruns (200 encoders at 480x640, 300 at 64x96) did not
reproduce it. If a write stalls with no CPU use, rerun it; ``encoder_threads`` pins SVT's ``lp``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
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
    # libav encoder options merged last (lerobot's ``extra_options``, recorded in info.json)
    extra_options: Mapping[str, str] = field(default_factory=dict)

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
        opts.update(self.extra_options)
        return opts

    def info_fields(self) -> dict[str, object]:
        """``video.*`` encoder fields lerobot records in info.json (besides the probed stream fields)."""
        return {
            "video.g": self.gop,
            "video.crf": self.crf,
            "video.preset": self.effective_preset,
            "video.fast_decode": 0,
            "video.video_backend": "pyav",
            "video.extra_options": dict(self.extra_options),
        }


@dataclass(frozen=True)
class EpisodeVideo:
    """Where one episode of one camera landed."""

    slot: FileSlot
    from_timestamp: float
    to_timestamp: float


class CameraVideoWriter:
    """Writes one camera's episodes, in order, into ``videos/<key>/chunk-XXX/file-XXX.mp4``.

    Owns the open output container of the current file. Not thread-safe.
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
        pix_fmt: str = "yuv420p",
        faststart: bool = True,
        mid_gop_every: int = 0,
    ) -> None:
        self._root, self._key, self._settings, self._pix_fmt = root, video_key, settings, pix_fmt
        if mid_gop_every < 0:
            raise ValueError(f"mid_gop_every must be >= 0, got {mid_gop_every}")
        self._faststart, self._mid_gop_every = faststart, mid_gop_every
        self._episodes_in_file = 0
        self._fps, self._height, self._width = fps, height, width
        self._cap_bytes = file_size_in_mb * 1024 * 1024
        self._chunks_size = chunks_size
        self._slot: FileSlot | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._frames_in_file = 0
        self._bytes_in_file = 0
        self.paths: list[Path] = []

    def __enter__(self) -> CameraVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_episode(self, frames_yuv420p: Iterable[np.ndarray], length: int) -> EpisodeVideo:
        """Append one episode of ``length`` frames; say where it went.

        Frames are arrays in the writer's ``pix_fmt``: (H*3/2, W) uint8 for yuv420p, (H, W) uint16
        codes for gray12le (depth).
        """
        if length <= 0:
            raise ValueError(f"{self._key}: an episode needs at least one frame")
        if self._mid_gop_every:
            return self._encode_into_file(frames_yuv420p, length)
        episode_mp4 = self._encode_episode(frames_yuv420p, length)
        size = episode_mp4.getbuffer().nbytes
        if self._container is None or self._bytes_in_file + size >= self._cap_bytes:
            self._open_next_file()
        start = self._frames_in_file
        self._append(episode_mp4)
        self._frames_in_file += length
        self._bytes_in_file += size
        assert self._slot is not None
        return EpisodeVideo(self._slot, start / self._fps, (start + length) / self._fps)

    def close(self) -> None:
        """Finalise the current file (idempotent)."""
        if self._container is not None:
            if self._mid_gop_every and self._stream is not None:
                self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = self._stream = None

    def _encode_into_file(self, frames_yuv420p: Iterable[np.ndarray], length: int) -> EpisodeVideo:
        """``mid_gop_every``: encode the episode with the file's running encoder (see the Note)."""
        if self._container is None or self._bytes_in_file >= self._cap_bytes:
            self._open_next_file()
            options = self._settings.options()
            if self._settings.codec != "av1":
                options["forced-idr"] = "1"  # a forced I frame is a keyframe (IDR) in the index
            stream = self._container.add_stream(  # type: ignore[union-attr]
                self._settings.encoder_name, rate=self._fps, options=options
            )
            stream.width, stream.height, stream.pix_fmt = self._width, self._height, self._pix_fmt
            self._stream = stream
        assert self._container is not None and self._stream is not None
        start = self._frames_in_file
        force_key = self._episodes_in_file % self._mid_gop_every != 0
        self._episodes_in_file += 1
        count = 0
        for i, plane in enumerate(frames_yuv420p):
            frame = av.VideoFrame.from_ndarray(plane, format=self._pix_fmt)
            frame.pts = start + i
            if i == 0 and force_key:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in self._stream.encode(frame):
                self._bytes_in_file += packet.size
                self._container.mux(packet)
            count += 1
        if count != length:
            raise ValueError(f"{self._key}: episode announced {length} frames but gave {count}")
        self._frames_in_file += length
        assert self._slot is not None
        return EpisodeVideo(self._slot, start / self._fps, (start + length) / self._fps)

    def _encode_episode(self, frames_yuv420p: Iterable[np.ndarray], length: int) -> io.BytesIO:
        """Encode the episode on its own, into an in-memory mp4 (lerobot's per-episode temporary file)."""
        buffer = io.BytesIO()
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints banners to stderr unless told otherwise
        with av.open(buffer, "w", format="mp4") as container:
            stream = container.add_stream(
                self._settings.encoder_name, rate=self._fps, options=self._settings.options()
            )
            stream.width, stream.height, stream.pix_fmt = self._width, self._height, self._pix_fmt
            count = 0
            for i, plane in enumerate(frames_yuv420p):
                frame = av.VideoFrame.from_ndarray(plane, format=self._pix_fmt)
                frame.pts = i
                container.mux(stream.encode(frame))
                count += 1
            container.mux(stream.encode(None))
        if count != length:
            raise ValueError(f"{self._key}: episode announced {length} frames but gave {count}")
        buffer.seek(0)
        return buffer

    def _append(self, episode_mp4: io.BytesIO) -> None:
        """Stream-copy an episode's packets after the end of the current file (lerobot's concat)."""
        assert self._container is not None
        with av.open(episode_mp4, "r", format="mp4") as source:
            source_stream = source.streams.video[0]
            if self._stream is None:
                self._stream = self._container.add_stream_from_template(template=source_stream, opaque=True)
                self._stream.time_base = source_stream.time_base
            offset = Fraction(self._frames_in_file, self._fps) / source_stream.time_base
            if offset.denominator != 1:
                raise ValueError(
                    f"{self._key}: time base {source_stream.time_base} is not a multiple of 1/{self._fps}"
                )
            for packet in source.demux(source_stream):
                if packet.dts is None:
                    continue
                packet.pts += int(offset)
                packet.dts += int(offset)
                packet.stream = self._stream
                self._container.mux(packet)

    def _open_next_file(self) -> None:
        self.close()
        self._slot = FileSlot() if self._slot is None else self._slot.next(self._chunks_size)
        path = self._root / VIDEO_PATH.format(
            video_key=self._key, chunk_index=self._slot.chunk_index, file_index=self._slot.file_index
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"movflags": "faststart"} if self._faststart else {}
        self._container = av.open(str(path), "w", options=options)
        self._frames_in_file = self._bytes_in_file = self._episodes_in_file = 0
        self.paths.append(path)


def probe_video_info(
    path: Path, settings: EncoderSettings, depth_fields: dict[str, object] | None = None
) -> dict[str, object]:
    """The ``info`` dict lerobot stores for a video feature, probed from a written file.

    ``depth_fields``: for a depth camera, what lerobot adds (``is_depth_map``, the quantizer).
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info: dict[str, object] = {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.fps": int(stream.base_rate),
            "video.channels": 3 if depth_fields is None else 1,
            "has_audio": len(container.streams.audio) > 0,
        }
    info.update(settings.info_fields())
    info["is_depth_map"] = False
    if depth_fields is not None:
        info.update(depth_fields)
    return info
