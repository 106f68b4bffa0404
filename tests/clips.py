"""Small test clips encoded with PyAV (real AV1/H.264/HEVC), shared by the decode and GPU tests.

Frames carry a gradient, a moving checkerboard and colour edges, so conversion differences show.

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
) -> Path:
    """Encodes ``num_frames`` textured frames to ``path`` with ``codec`` (a key of ``ENCODERS``), or
    copies the same clip from ``$LRS_TEST_MEDIA`` (see the module docs)."""
    params = {"codec": codec, "frames": num_frames, "pix_fmt": pix_fmt, "h": height, "w": width, "fps": fps}
    media = media_dir()
    stored = media / "clips" / f"{media_key('clip', params)}.mp4" if media else None
    if stored is not None and stored.exists():
        shutil.copyfile(stored, path)
        return path
    _encode_clip(path, codec, num_frames=num_frames, pix_fmt=pix_fmt, height=height, width=width, fps=fps)
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, stored)
    return path


def _encode_clip(
    path: Path, codec: str, *, num_frames: int, pix_fmt: str, height: int, width: int, fps: int
) -> None:
    import av

    encoder, options = ENCODERS[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(textured_frame(i, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


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
