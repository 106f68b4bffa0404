"""Pixel content of synthetic camera frames: a textured, moving scene carrying a readable identity.

Every frame shows which (episode, frame, camera) it is, written as 48 big black/white cells, so a
test can decode any image back to its identity after lossy coding. Frames are produced directly
as yuv420p planes (what the encoders consume), so no colour conversion runs at write time.

Note [Pixel identity]
~~~~~~~~~~~~~~~~~~~~~
The frame is cut into square cells of side ``s = max(8, min(H, W) // 16)`` (even), row-major from
the top-left corner. The first 48 cells carry one bit each:

    bits  0..17  episode_index  (< 2**18)
    bits 18..35  frame_index    (< 2**18, index of the frame inside its episode)
    bits 36..39  camera_index   (< 16)
    bits 40..47  CRC-8 (low byte of zlib.crc32) of the 40-bit payload

A bit is a cell whose luma is bright (~200) or dark (~50) with neutral chroma, plus a faint
texture so the cell is not flat. Odd frames store the complement of the 48-bit word, so every cell
flips between consecutive frames; the reader tries the word and its complement and keeps the one
whose checksum holds. (With static cells, fast encoder presets sometimes leave a changed cell
uncoded in an inter frame; flipping all cells makes that much rarer, see Note [SVT-AV1 preset].)
Reading takes the mean of the three RGB channels over the central half of each cell and
thresholds it at 128: the margin (~75 levels) survives crf 30 coding, chroma subsampling and any
BT.601/709 matrix or range mix-up. A checksum mismatch raises, so a
wrong or corrupted frame can never be read as a plausible identity.

The rest of the frame is a seeded blocky/sinusoidal texture that scrolls two pixels per frame
(episodes start at different offsets), so the encoder sees motion it can predict and the files
have a realistic, non-trivial bitrate.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

IDENTITY_BITS = 48
EPISODE_BITS = 18
FRAME_BITS = 18
CAMERA_BITS = 4
MAX_EPISODES = 1 << EPISODE_BITS
MAX_FRAMES_PER_EPISODE = 1 << FRAME_BITS
MAX_CAMERAS = 1 << CAMERA_BITS

_BRIGHT = 190
_DARK = 40
_SCROLL_PX_PER_FRAME = 2


class Identity(NamedTuple):
    """What a synthetic frame says about itself."""

    episode_index: int
    frame_index: int
    camera_index: int


def cell_size(height: int, width: int) -> int:
    """Side in pixels of one identity cell for a frame of this size (always even)."""
    return max(8, (min(height, width) // 16) // 2 * 2)


def check_frame_size(height: int, width: int) -> None:
    """Raise ValueError unless frames of this size can be encoded as yuv420p and carry an identity."""
    if height <= 0 or width <= 0 or height % 2 or width % 2:
        raise ValueError(f"frame size must be positive and even (yuv420p), got height={height} width={width}")
    s = cell_size(height, width)
    if (height // s) * (width // s) < IDENTITY_BITS:
        raise ValueError(
            f"frame {height}x{width} is too small to carry the {IDENTITY_BITS}-cell identity "
            f"(cells of {s} px); use at least 48x64"
        )


def _checksum(payload: int) -> int:
    return zlib.crc32(payload.to_bytes(5, "little")) & 0xFF


def _identity_bits(episode_index: int, frame_index: int, camera_index: int) -> np.ndarray:
    if not 0 <= episode_index < MAX_EPISODES:
        raise ValueError(f"episode_index {episode_index} does not fit the identity (< {MAX_EPISODES})")
    if not 0 <= frame_index < MAX_FRAMES_PER_EPISODE:
        raise ValueError(f"frame_index {frame_index} does not fit the identity (< {MAX_FRAMES_PER_EPISODE})")
    if not 0 <= camera_index < MAX_CAMERAS:
        raise ValueError(f"camera_index {camera_index} does not fit the identity (< {MAX_CAMERAS})")
    payload = episode_index | (frame_index << EPISODE_BITS) | (camera_index << (EPISODE_BITS + FRAME_BITS))
    word = payload | (_checksum(payload) << 40)
    return ((word >> np.arange(IDENTITY_BITS, dtype=np.uint64)) & 1).astype(bool)


class CameraScene:
    """Seeded texture of one camera; renders yuv420p frames with their identity painted in.

    Deterministic: the same (seed, camera_index, height, width) always renders the same pixels.
    Not thread-safe to share across threads while rendering (it reuses one output buffer).
    """

    def __init__(self, *, seed: int, camera_index: int, height: int, width: int) -> None:
        check_frame_size(height, width)
        if not 0 <= camera_index < MAX_CAMERAS:
            raise ValueError(f"camera_index must be in [0, {MAX_CAMERAS}), got {camera_index}")
        self.height, self.width, self.camera_index = height, width, camera_index
        self._cell = cell_size(height, width)
        rng = np.random.default_rng([seed, camera_index, 0x5EED])
        span = 2 * width  # the canvas is twice as wide as the frame; frames scroll through it
        self._luma = _texture(rng, height, span, low=24, high=232)
        self._chroma_u = _texture(rng, height // 2, span // 2, low=80, high=176)
        self._chroma_v = _texture(rng, height // 2, span // 2, low=80, high=176)
        self._out = np.empty((height * 3 // 2, width), dtype=np.uint8)
        cols = width // self._cell
        self._cells = [divmod(i, cols) for i in range(IDENTITY_BITS)]  # (row, col) of each bit

    def render(self, episode_index: int, frame_index: int) -> np.ndarray:
        """Frame as a (H*3/2, W) uint8 yuv420p array (Y, U, V planes). Reused buffer: copy to keep."""
        h, w, s = self.height, self.width, self._cell
        offset = ((episode_index * 37 + frame_index * _SCROLL_PX_PER_FRAME) % w) // 2 * 2
        y = self._out[:h]
        u = self._out[h : h + h // 4].reshape(h // 2, w // 2)
        v = self._out[h + h // 4 :].reshape(h // 2, w // 2)
        y[:] = self._luma[:, offset : offset + w]
        u[:] = self._chroma_u[:, offset // 2 : offset // 2 + w // 2]
        v[:] = self._chroma_v[:, offset // 2 : offset // 2 + w // 2]
        bits = _identity_bits(episode_index, frame_index, self.camera_index)
        if frame_index % 2:
            bits = ~bits
        half = s // 2
        for bit, (r, c) in zip(bits, self._cells, strict=True):
            cell = y[r * s : (r + 1) * s, c * s : (c + 1) * s]
            np.right_shift(cell, 3, out=cell)
            cell += _BRIGHT if bit else _DARK
            u[r * half : (r + 1) * half, c * half : (c + 1) * half] = 128
            v[r * half : (r + 1) * half, c * half : (c + 1) * half] = 128
        return self._out

    def render_rgb(self, episode_index: int, frame_index: int) -> np.ndarray:
        """Frame as (3, H, W) uint8 RGB, converted from the yuv420p source with BT.601 limited range."""
        return self.rgb_of(self.render(episode_index, frame_index))

    def rgb_of(self, frame_yuv420p: np.ndarray, step: int = 1) -> np.ndarray:
        """RGB (3, H/step, W/step) of a frame this scene rendered; see ``yuv420p_to_rgb``."""
        return yuv420p_to_rgb(frame_yuv420p, self.height, self.width, step)


def _texture(rng: np.random.Generator, height: int, width: int, *, low: int, high: int) -> np.ndarray:
    """Blocky random field plus a diagonal sinusoid, values in [low, high]."""
    block = 16
    coarse = rng.uniform(0.0, 1.0, size=(-(-height // block), -(-width // block)))
    field = np.kron(coarse, np.ones((block, block)))[:height, :width]
    yy, xx = np.mgrid[0:height, 0:width]
    fx, fy, phase = rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05), rng.uniform(0, 2 * np.pi)
    field = 0.6 * field + 0.4 * (0.5 + 0.5 * np.sin(fx * xx + fy * yy + phase))
    return (low + field * (high - low)).astype(np.uint8)


def yuv420p_to_rgb(frame: np.ndarray, height: int, width: int, step: int = 1) -> np.ndarray:
    """(H*3/2, W) yuv420p → (3, ceil(H/step), ceil(W/step)) uint8 RGB, BT.601 limited range.

    That is what swscale assumes for an untagged stream. ``step`` keeps every step-th pixel (stats).
    """
    rows, cols = np.arange(0, height, step), np.arange(0, width, step)
    u_plane = frame[height : height + height // 4].reshape(height // 2, width // 2)
    v_plane = frame[height + height // 4 :].reshape(height // 2, width // 2)
    y = frame[:height][np.ix_(rows, cols)].astype(np.float32) - 16.0
    u = u_plane[np.ix_(rows // 2, cols // 2)].astype(np.float32) - 128.0
    v = v_plane[np.ix_(rows // 2, cols // 2)].astype(np.float32) - 128.0
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.392 * u - 0.813 * v
    b = 1.164 * y + 2.017 * u
    return np.clip(np.stack([r, g, b]) + 0.5, 0, 255).astype(np.uint8)


def read_full_identity(image_chw: np.ndarray) -> Identity:
    """Decode (episode_index, frame_index, camera_index) from a (3, H, W) uint8 RGB image.

    Accepts anything ``np.asarray`` takes (a CPU torch tensor too). Raises ValueError when the
    image has the wrong shape or its cells do not form a valid identity (checksum mismatch).
    """
    image = np.asarray(image_chw)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB image, got shape {tuple(image.shape)}")
    _, h, w = image.shape
    check_frame_size(h, w)
    s = cell_size(h, w)
    cols = w // s
    lo, hi = s // 4, s - s // 4
    word = 0
    for i in range(IDENTITY_BITS):
        r, c = divmod(i, cols)
        cell = image[:, r * s + lo : r * s + hi, c * s + lo : c * s + hi]
        if float(cell.mean()) > 128.0:
            word |= 1 << i
    payload, check = word & ((1 << 40) - 1), word >> 40
    if _checksum(payload) != check:
        word ^= (1 << 48) - 1
        payload, check = word & ((1 << 40) - 1), word >> 40
    if _checksum(payload) != check:
        raise ValueError("image carries no valid synthetic identity (checksum mismatch)")
    mask = (1 << EPISODE_BITS) - 1
    return Identity(
        episode_index=payload & mask,
        frame_index=(payload >> EPISODE_BITS) & ((1 << FRAME_BITS) - 1),
        camera_index=payload >> (EPISODE_BITS + FRAME_BITS),
    )


def read_identity(image_chw: np.ndarray) -> tuple[int, int]:
    """(episode_index, frame_index) of a decoded (3, H, W) uint8 RGB frame; see Note [Pixel identity]."""
    ident = read_full_identity(image_chw)
    return ident.episode_index, ident.frame_index
