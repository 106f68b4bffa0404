"""Depth cameras and image-feature frames, written as lerobot 0.6.1 writes them.

Depth cameras (``observation.images.depth<i>``) record uint16 millimetres. As videos they go through
lerobot's depth encoder: log-quantized to 12-bit codes with ``DepthEncoderConfig``'s defaults
(:func:`quantize_depth_mm`, lerobot's ``quantize_depth`` math in float32), encoded as gray12le with
lossless HEVC (libx265 ``lossless=1``); their ``info`` records ``is_depth_map``, ``depth_unit`` and
the quantizer (``video.depth_min`` ...), as ``get_video_info`` does. As ``image`` features they are
stored raw: an uncompressed TIFF (``I;16``) per frame, like lerobot's ``write_image`` for ``.tiff``.
RGB ``image`` features are PNG (Pillow, ``compress_level=6`` as lerobot uses for image features).

Depth content: a tilted plane plus ripples that move with the frame, 300–5000 mm, with the episode
and frame encoded in the top-left 4x4 block (``depth_identity``) so tests can check frame choice.
"""

from __future__ import annotations

import io
import math

import numpy as np

from .video import EncoderSettings

DEPTH_MIN_M = 0.01
DEPTH_MAX_M = 10.0
DEPTH_SHIFT_M = 3.5
DEPTH_QMAX = 4095
PNG_COMPRESS_LEVEL = 6
# lerobot's DepthEncoderConfig: HEVC, gray12le, lossless (x265 logging kept quiet here).
DEPTH_SETTINGS = EncoderSettings(codec="hevc", extra_options={"x265-params": "lossless=1:log-level=error"})


def quantize_depth_mm(depth_mm: np.ndarray) -> np.ndarray:
    """uint16 mm → 12-bit log codes, lerobot 0.6.1's ``quantize_depth`` (default parameters, mm input)."""
    depth = depth_mm.astype(np.float32)
    depth_min, depth_max = np.float32(DEPTH_MIN_M * 1000.0), np.float32(DEPTH_MAX_M * 1000.0)
    shift = np.float32(DEPTH_SHIFT_M * 1000.0)
    log_min = math.log(float(depth_min + shift))
    log_max = math.log(float(depth_max + shift))
    norm = (np.log(depth + shift) - log_min) / (log_max - log_min)
    return np.rint(norm * DEPTH_QMAX).clip(0, DEPTH_QMAX).astype(np.uint16)


def depth_info_fields() -> dict[str, object]:
    """What lerobot adds to a depth video feature's ``info`` besides the probed stream fields."""
    return {
        "is_depth_map": True,
        "depth_unit": "mm",
        "video.depth_min": DEPTH_MIN_M,
        "video.depth_max": DEPTH_MAX_M,
        "video.shift": DEPTH_SHIFT_M,
        "video.use_log": True,
    }


class DepthScene:
    """Deterministic depth frames (uint16 mm, ``[H, W]``) of one depth camera."""

    def __init__(self, *, seed: int, camera_index: int, height: int, width: int) -> None:
        rng = np.random.default_rng([seed, camera_index, 0xDE9])
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        self._plane = 600.0 + rng.uniform(2.0, 6.0) * xx + rng.uniform(2.0, 6.0) * yy
        self._xx, self._yy = xx, yy
        self._freq = rng.uniform(0.05, 0.2)

    def render(self, episode_index: int, frame_index: int) -> np.ndarray:
        """The frame's depth in mm; its top-left 4x4 block holds ``depth_identity``'s value."""
        ripple = 400.0 * np.sin(self._freq * (self._xx + self._yy) + 0.3 * frame_index + episode_index)
        depth = np.clip(self._plane + ripple, 300, 5000).astype(np.uint16)
        depth[:4, :4] = depth_identity(episode_index, frame_index)
        return depth


def depth_identity(episode_index: int, frame_index: int) -> int:
    """The mm value a synthetic depth frame carries in its top-left block (exact in image features)."""
    return 1000 + (episode_index * 97 + frame_index * 13) % 3000


def encode_png(rgb_chw: np.ndarray) -> bytes:
    """A (3, H, W) uint8 frame as the PNG bytes lerobot stores for an RGB ``image`` feature."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb_chw.transpose(1, 2, 0))).save(
        out, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )
    return out.getvalue()


def encode_depth_tiff(depth_mm: np.ndarray) -> bytes:
    """A (H, W) uint16 frame as the raw TIFF bytes lerobot stores for a depth ``image`` feature."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(depth_mm)).save(out, format="TIFF", compression="raw")
    return out.getvalue()
