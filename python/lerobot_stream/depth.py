"""Depth-map cameras: lerobot 0.6.1's dequantization of depth videos and unit conversion of depth images.

A depth feature is one whose ``info`` has ``is_depth_map`` (lerobot's rule, ``DatasetMetadata.depth_keys``).

Note [Depth maps]
~~~~~~~~~~~~~~~~~
Videos. lerobot quantizes depth (metres or millimetres) to 12-bit codes ``q`` in ``[0, 4095]`` —
logarithmic by default: ``q = rint((log(d + shift) - log(d_min + shift)) / (log(d_max + shift) -
log(d_min + shift)) * 4095)`` — and stores them as a gray12le HEVC video (lossless x265). The
parameters are recorded in the feature's ``info`` as ``video.depth_min``, ``video.depth_max``,
``video.shift``, ``video.use_log`` (defaults 0.01 m, 10.0 m, 3.5 m, True when absent). On read it
decodes the codes (``to_ndarray("gray12le")``, see Note [Depth-map videos] in cpp/av/gray_frames.h)
and dequantizes them with torch, in place, on the whole ``[T, 1, H, W]`` window of a key: ``d =
clamp(exp(q * scale + offset) - shift, d_min, d_max)`` in metres, then ``round(d * 1000)`` clamped to
``[0, 65535]`` for millimetres, always float32 ``[T, 1, H, W]``. :func:`dequantize_depth` is that
code, op for op and on the same tensor shapes, so the values are bitwise lerobot's (torch's
vectorised ``exp`` gives the same bits for the same layout).

Images. A depth ``image`` feature stores raw frames (uint16 mm as ``I;16`` PNG/TIFF, or float32 m as
``F`` TIFF); they decode to float32 ``[1, H, W]`` in their recorded ``info.depth_unit`` and are
multiplied (m → mm) or divided (mm → m) by 1000 when ``depth_output_unit`` differs. A feature with
no recorded unit is returned as is (lerobot warns once).

Neither ``image_transforms`` nor ``return_uint8`` apply to depth keys, as in lerobot.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:
    from lerobot_stream.decoding import DecoderCache
    from lerobot_stream.metadata import DatasetMetadata

DepthUnit = Literal["m", "mm"]
DEPTH_UNITS: tuple[str, ...] = ("m", "mm")
DEPTH_QMAX = 4095  # 12-bit codes
MM_PER_METRE = 1000.0
_UINT16_MAX = 65535
# lerobot.configs.video's DepthEncoderConfig defaults (metres).
DEFAULT_DEPTH_MIN = 0.01
DEFAULT_DEPTH_MAX = 10.0
DEFAULT_DEPTH_SHIFT = 3.5
DEFAULT_DEPTH_USE_LOG = True


@dataclass(frozen=True)
class DepthQuantization:
    """A depth video's quantizer, read from its feature ``info`` (``video.depth_min`` ...), in metres."""

    depth_min: float = DEFAULT_DEPTH_MIN
    depth_max: float = DEFAULT_DEPTH_MAX
    shift: float = DEFAULT_DEPTH_SHIFT
    use_log: bool = DEFAULT_DEPTH_USE_LOG

    @classmethod
    def from_info(cls, info: dict[str, Any] | None, where: str) -> DepthQuantization:
        """The quantizer of a feature ``info`` dict; missing fields take lerobot's defaults."""
        info = info or {}
        values: dict[str, Any] = {}
        for name in ("depth_min", "depth_max", "shift", "use_log"):
            value = info.get(f"video.{name}")
            if value is not None:
                values[name] = value
        quant = cls(**values)
        if quant.use_log and quant.depth_min + quant.shift <= 0:
            raise ValueError(
                f"{where}: depth_min + shift must be positive for logarithmic quantization, got "
                f"depth_min={quant.depth_min} + shift={quant.shift}"
            )
        if not quant.depth_max > quant.depth_min:
            raise ValueError(
                f"{where}: depth_max ({quant.depth_max}) must exceed depth_min ({quant.depth_min})"
            )
        return quant


def check_depth_unit(unit: str) -> None:
    """ValueError unless ``unit`` is ``"m"`` or ``"mm"`` (lerobot's ``depth_output_unit`` values)."""
    if unit not in DEPTH_UNITS:
        raise ValueError(f"depth_output_unit must be 'm' or 'mm', got {unit!r}")


def dequantize_depth(codes: torch.Tensor, quant: DepthQuantization, output_unit: DepthUnit) -> torch.Tensor:
    """12-bit codes ``[..., 1, H, W]`` → float32 depth ``[..., 1, H, W]`` in ``output_unit``.

    lerobot 0.6.1's ``dequantize_depth`` torch path, op for op (see Note [Depth maps]).
    """
    check_depth_unit(output_unit)
    depth_min, depth_max, shift = float(quant.depth_min), float(quant.depth_max), float(quant.shift)
    if quant.use_log:
        log_min = math.log(depth_min + shift)
        log_max = math.log(depth_max + shift)
        scale = (log_max - log_min) / DEPTH_QMAX
        offset = log_min
    else:
        scale = (depth_max - depth_min) / DEPTH_QMAX
        offset = depth_min
    if codes.ndim >= 3:
        codes = codes.squeeze(-3) if codes.shape[-3] == 1 else codes.squeeze(-1)
    buf = codes.to(dtype=torch.float32, copy=True)
    buf.mul_(scale).add_(offset)
    if quant.use_log:
        buf.exp_().sub_(shift)
    buf.clamp_(depth_min, depth_max)
    buf.unsqueeze_(-3)
    if output_unit == "m":
        return buf
    return buf.mul_(MM_PER_METRE).round_().clamp_(0.0, _UINT16_MAX)


def convert_depth_image(
    values: torch.Tensor, stored_unit: str | None, output_unit: DepthUnit
) -> torch.Tensor:
    """A decoded depth image (float32, in ``stored_unit``) in ``output_unit``; as is without a unit."""
    if stored_unit is None or stored_unit == output_unit:
        return values
    return values * MM_PER_METRE if stored_unit == "m" else values / MM_PER_METRE


def warn_missing_units(keys: list[str], output_unit: str) -> None:
    """lerobot's warning for depth features with no recorded ``info.depth_unit``."""
    if keys:
        warnings.warn(
            f"Depth feature(s) {keys} have no recorded 'depth_unit' in their info: they are returned as "
            f"stored, with no conversion to depth_output_unit={output_unit!r}.",
            UserWarning,
            stacklevel=3,
        )


class DepthFeatures:
    """A dataset's depth cameras, read as lerobot reads them (Note [Depth maps]); thread-safe.

    ``video_keys``: depth videos (decode with :meth:`decode_video`); ``image_units``: depth image
    features and their recorded unit (convert with :meth:`convert_images`).
    """

    def __init__(self, meta: DatasetMetadata, output_unit: str) -> None:
        check_depth_unit(output_unit)
        self.output_unit: DepthUnit = output_unit  # type: ignore[assignment]
        depth = set(meta.depth_keys)
        self.quantization = {
            key: DepthQuantization.from_info(meta.features[key].get("info"), f"{meta.root} feature {key!r}")
            for key in meta.video_keys
            if key in depth
        }
        self.image_units: dict[str, str | None] = {
            key: (meta.features[key].get("info") or {}).get("depth_unit")
            for key in meta.image_keys
            if key in depth
        }

    @property
    def video_keys(self) -> set[str]:
        """Depth features stored as videos."""
        return set(self.quantization)

    def decode_video(
        self, cache: DecoderCache, key: str, path: str, timestamps: list[float], tolerance_s: float
    ) -> torch.Tensor:
        """Depth ``[T, 1, H, W]`` float32 in ``output_unit`` of ``path``'s frames nearest ``timestamps``."""
        codes = cache.get_gray12_frames_at(path, timestamps, tolerance_s)
        return dequantize_depth(codes, self.quantization[key], self.output_unit)

    def convert_images(self, item: dict[str, Any]) -> None:
        """Depth image features of ``item`` to ``output_unit``, in place."""
        for key, unit in self.image_units.items():
            if key in item:
                item[key] = convert_depth_image(item[key], unit, self.output_unit)
