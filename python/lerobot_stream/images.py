"""Camera features stored as images: PNG/JPEG/TIFF bytes in the data parquet, decoded on emit.

lerobot records a camera as an ``image`` feature when ``use_videos=False`` (the Hub's ``*_image``
datasets): each row holds the encoded frame in an HF ``datasets.Image`` column (an Arrow struct
``{bytes, path}``). The tabular reader keeps those bytes as they are (:class:`ImageColumn`); a frame is
decoded only when a sample that needs it is emitted.

Note [Image decoding]
~~~~~~~~~~~~~~~~~~~~~
lerobot's map-style dataset decodes these columns with HF ``datasets.Image.decode_example`` (Pillow:
``Image.open`` + ``load``, EXIF orientation applied) and converts them with ``pil_to_chw_tensor``:
16-bit gray (``I;16*``, raw depth in mm) becomes float32 ``[1, H, W]`` in native units, everything
else goes through torchvision's ``ToTensor`` (uint8 modes → float32 in [0, 1], CHW; ``F`` and ``I``
keep their values). We decode with the same library, Pillow, and copy that conversion op for op, so
the tensors are bitwise lerobot's for every mode and format it can store. Pillow, not libav: PNG is
lossless, so any decoder would do, but libav's JPEG IDCT and YCbCr→RGB are not libjpeg-turbo's (values
differ by a few levels), depth TIFFs need Pillow's ``F``/``I;16`` modes, and Pillow releases the GIL
while it decodes, so camera threads still decode in parallel. ``return_uint8`` does not apply to
image features, as in lerobot (it returns them as float32 either way).

A frame that does not decode raises ValueError naming the data file, the episode, the frame and the
key.
"""

from __future__ import annotations

import io
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch

if TYPE_CHECKING:
    from lerobot_stream.tabular import EpisodeRows

_UINT16_MODES = {"I;16", "I;16B", "I;16L"}
# torchvision's ToTensor: the numpy dtype each PIL mode is read as (uint8 for the others).
_MODE_DTYPES = {"I": np.int32, "I;16" if sys.byteorder == "little" else "I;16B": np.int16, "F": np.float32}


def is_image_column(array: pa.Array | pa.ChunkedArray) -> bool:
    """True for HF ``datasets.Image`` storage: a struct with a binary ``bytes`` field."""
    kind = array.type
    if not pa.types.is_struct(kind) or kind.get_field_index("bytes") < 0:
        return False
    return pa.types.is_binary(kind.field("bytes").type) or pa.types.is_large_binary(kind.field("bytes").type)


@dataclass
class ImageColumn:
    """One episode's encoded frames of one image feature (row ``i`` = the episode's frame ``i``).

    Holds the Arrow arrays of the data file (no copy, no decoding); ``frame(i)`` returns row ``i``'s
    bytes. ``source`` (the data file) and ``key`` name the column in error messages.
    """

    data: pa.Array
    paths: pa.Array
    source: str
    key: str

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> bytes:
        return self.frame(i)

    def frame(self, i: int) -> bytes:
        """The encoded image of row ``i``; ValueError when the row stores none."""
        value = self.data[i].as_py()
        if value is None:
            path = self.paths[i].as_py() if len(self.paths) else None
            where = f"only a file path ({path!r})" if path else "no image"
            raise ValueError(f"{self.source}: {self.key} row {i} holds {where}, not the image bytes")
        return value


def image_column(column: pa.ChunkedArray, source: Path | str, key: str) -> ImageColumn:
    """An ``ImageColumn`` over an HF ``datasets.Image`` column read from ``source``."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    paths = array.field("path") if kind.get_field_index("path") >= 0 else pa.array([], pa.string())
    return ImageColumn(data=array.field("bytes"), paths=paths, source=str(source), key=key)


def decode_image(data: bytes, where: str) -> torch.Tensor:
    """Decodes one encoded image like lerobot's map-style dataset does; see Note [Image decoding]."""
    from PIL import Image, ImageOps

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        if image.getexif().get(Image.ExifTags.Base.Orientation) is not None:
            image = ImageOps.exif_transpose(image)
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... on damaged input
        raise ValueError(f"{where}: cannot decode the image ({type(err).__name__}: {err})") from err
    return pil_to_chw_tensor(image)


def pil_to_chw_tensor(image: Any) -> torch.Tensor:
    """lerobot's ``pil_to_chw_tensor``: ``I;16`` → float32 ``[1, H, W]``; else torchvision ``ToTensor``."""
    if image.mode in _UINT16_MODES:
        return torch.from_numpy(np.array(image, dtype=np.float32))[None, ...]
    tensor = torch.from_numpy(np.array(image, _MODE_DTYPES.get(image.mode, np.uint8), copy=True))
    if image.mode == "1":
        tensor = 255 * tensor
    tensor = tensor.view(image.size[1], image.size[0], len(image.getbands()))
    tensor = tensor.permute((2, 0, 1)).contiguous()
    if tensor.dtype == torch.uint8:
        return tensor.to(dtype=torch.get_default_dtype()).div(255)
    return tensor


class ImageFeatures:
    """Decodes a sample's image features: one frame ``[C, H, W]``, or ``[T, C, H, W]`` for a window.

    One per consumer. With several image features, they decode on their own threads (Pillow releases
    the GIL); not thread-safe otherwise.
    """

    def __init__(self, keys: list[str]) -> None:
        self.keys = list(keys)
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stops the decoding threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def decode(
        self, rows: EpisodeRows, frame: int, windows: dict[str, np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """The decoded image features of ``rows``' frame ``frame`` (windows: the rows of each key)."""
        jobs = [(key, rows.columns[key], windows.get(key)) for key in self.keys if key in rows.columns]
        if len(jobs) <= 1:
            return dict(self._decode(rows.episode_index, frame, job) for job in jobs)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="lrs-image")
        return dict(self._pool.map(lambda job: self._decode(rows.episode_index, frame, job), jobs))

    @staticmethod
    def _decode(
        episode: int, frame: int, job: tuple[str, Any, np.ndarray | None]
    ) -> tuple[str, torch.Tensor]:
        key, column, indices = job
        if not isinstance(column, ImageColumn):
            raise ValueError(f"{key!r} is an image feature but its data column holds no image bytes")
        if indices is None:
            return key, _decode_row(column, episode, frame)
        rows = [int(i) for i in indices]
        decoded = {i: _decode_row(column, episode, i) for i in dict.fromkeys(rows)}  # padding repeats rows
        return key, torch.stack([decoded[i] for i in rows])


def _decode_row(column: ImageColumn, episode: int, i: int) -> torch.Tensor:
    return decode_image(column.frame(i), f"{column.source}: episode {episode} frame {i} {column.key!r}")
