"""Small test clips encoded with PyAV (real AV1/H.264/HEVC), shared by the decode and GPU tests.

Frames carry a gradient, a moving checkerboard and colour edges, so conversion differences show.
H.264 and HEVC clips have B-frames (libx264 ``bf=2``, libx265's ultrafast preset: up to 4).

Pre-made media (``LRS_TEST_MEDIA=DIR``): clips and datasets (``conftest.make_dataset``) are looked
up in DIR first and, when missing there, made with PyAV and stored there. A GPU machine without
PyAV (or a package registry) runs the GPU tests on media made here: ``scripts/gpu_prep.sh`` fills
the directory and ``scripts/gpu_check.sh`` points the tests at it. PyAV is imported only to encode.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

FPS = 20

ENCODERS = {
    "av1": ("libsvtav1", {"g": "2", "crf": "30", "preset": "12"}),
    "h264": ("libx264", {"g": "8", "crf": "18", "preset": "ultrafast", "bf": "2"}),
    "hevc": ("libx265", {"g": "8", "crf": "20", "preset": "ultrafast", "x265-params": "log-level=none"}),
}


def textured_frame(index: int, height: int, width: int) -> np.ndarray:
    """Gradient + coloured blocks that move with the frame index (RGB HWC uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x * 255 // max(width - 1, 1) + index * 5) % 256
    image[..., 1] = (y * 255 // max(height - 1, 1)) % 256
    image[..., 2] = ((x // 16 + y // 16 + index) % 2) * 200 + 20
    return image


def media_dir() -> Path | None:
    """``$LRS_TEST_MEDIA`` (pre-made clips and datasets), or None."""
    value = os.environ.get("LRS_TEST_MEDIA")
    return Path(value) if value else None


def media_key(kind: str, params: dict[str, Any]) -> str:
    """A stable name for media made from ``params`` (same parameters, same name, on any machine)."""
    return f"{kind}-{hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]}"


def write_clip(
    path: Path,
    codec: str,
    *,
    num_frames: int,
    pix_fmt: str = "yuv420p",
    height: int = 64,
    width: int = 96,
    fps: int = FPS,
    edit_list: tuple[int, int] = (0, 0),
    faststart: bool = False,
) -> Path:
    """Encodes ``num_frames`` textured frames to ``path`` with ``codec`` (a key of ``ENCODERS``), or
    copies the same clip from ``$LRS_TEST_MEDIA`` (see the module docs).

    ``edit_list=(lead, tail)`` leaves the first ``lead`` and the last ``tail`` frames (presentation
    order) outside the mp4 edit list, so demuxers flag their samples discard and decoders show
    ``num_frames - lead - tail`` frames, from time 0: the first ``lead`` frames are muxed with
    negative timestamps (the mp4 muxer then starts its edit list at time 0, after them, as for a
    cut stream), and the edit is shortened by ``tail`` frames (what FFmpeg 5.1's muxer writes for
    B-frame streams whose packets carry no duration). ``faststart`` puts the moov before the mdat
    (lerobot's layout); by default it follows the mdat.
    """

    params = {"codec": codec, "frames": num_frames, "pix_fmt": pix_fmt, "h": height, "w": width, "fps": fps}
    if edit_list != (0, 0) or faststart:
        params.update(edit_list=list(edit_list), faststart=faststart)
    media = media_dir()
    stored = media / "clips" / f"{media_key('clip', params)}.mp4" if media else None
    if stored is not None and stored.exists():
        shutil.copyfile(stored, path)
        return path
    _encode_clip(
        path, codec, num_frames=num_frames, pix_fmt=pix_fmt, height=height, width=width, fps=fps,
        edit_list=edit_list, faststart=faststart,
    )  # fmt: skip
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, stored)
    return path


def _encode_clip(
    path: Path,
    codec: str,
    *,
    num_frames: int,
    pix_fmt: str,
    height: int,
    width: int,
    fps: int,
    edit_list: tuple[int, int],
    faststart: bool,
) -> None:
    import av

    encoder, options = ENCODERS[codec]
    lead, tail = edit_list
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                if lead:
                    shift = int(Fraction(lead, fps) / packet.time_base)
                    packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                container.mux(packet)

        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(textured_frame(i, height, width), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            mux(stream.encode(frame))
        mux(stream.encode())
    if tail:
        _shorten_edit_list(path, Fraction(tail, fps))


def _shorten_edit_list(path: Path, seconds: Fraction) -> None:
    """Ends the single edit of the file's one track ``seconds`` earlier (edits the elst box in place)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    version = data[at + 4]
    (timescale,) = struct.unpack_from(">I", data, at + (24 if version == 1 else 16))
    at = data.find(b"elst")
    if at < 0 or data.find(b"elst", at + 4) >= 0:
        raise ValueError(f"{path}: expected one edit list, found {data.count(b'elst')}")
    version = data[at + 4]
    (count,) = struct.unpack_from(">I", data, at + 8)
    if count != 1:
        raise ValueError(f"{path}: expected one edit, found {count}")
    layout = ">Q" if version == 1 else ">I"
    (duration,) = struct.unpack_from(layout, data, at + 12)
    struct.pack_into(layout, data, at + 12, duration - round(seconds * timescale))
    path.write_bytes(bytes(data))


def pyav_frames(path: Path) -> dict[float, np.ndarray]:
    """Every frame decoded by PyAV, keyed by its presentation time, as RGB CHW uint8."""
    import av

    frames = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            key = round(float(frame.pts * stream.time_base), 6)
            frames[key] = frame.to_ndarray(format="rgb24").transpose(2, 0, 1)
    return frames
