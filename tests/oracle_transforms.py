"""Image transforms known by name to both sides of a parity test (this process and the lerobot oracle).

A callable cannot cross into the oracle's interpreter, so tests name one of these and each side builds
the same function. Pure torch, so both torch versions compute the same bits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def flip_and_darken(frames: torch.Tensor) -> torch.Tensor:
    """Horizontal flip, then x0.5: changes values and layout, so a skipped or doubled call shows."""
    return frames.flip(-1) * 0.5


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"flip_and_darken": flip_and_darken}
