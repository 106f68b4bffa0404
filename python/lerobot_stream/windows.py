"""``delta_timestamps`` validation and conversion to frame offsets, with lerobot's errors.

A window of a feature is the list of frames at ``round(delta * fps)`` offsets from the sample's
frame. Offsets falling outside the episode clamp to its edge and set ``<key>_is_pad`` (done by
``_core.window_indices``); this module only checks and converts the user's request.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pprint import pformat

import numpy as np


def check_delta_timestamps(
    delta_timestamps: Mapping[str, Sequence[float]],
    features: Mapping[str, object],
    fps: float,
    tolerance_s: float,
) -> None:
    """Raise ValueError like lerobot when a key is not a feature or an offset is not a multiple of 1/fps."""
    if not isinstance(delta_timestamps, Mapping):
        raise TypeError(
            f"delta_timestamps must be a dict of feature -> list of seconds, got {type(delta_timestamps)}"
        )
    invalid_keys = set(delta_timestamps) - set(features)
    if invalid_keys:
        raise ValueError(
            f"The following delta_timestamp keys do not correspond to dataset features: {invalid_keys}. "
            f"Available features are: {sorted(features)}"
        )
    for key, deltas in delta_timestamps.items():
        if isinstance(deltas, (str, bytes)) or not isinstance(deltas, Sequence) or len(deltas) == 0:
            raise ValueError(f"delta_timestamps[{key!r}] must be a non-empty list of seconds, got {deltas!r}")
        if not all(isinstance(ts, numbers.Real) and math.isfinite(ts) for ts in deltas):
            raise ValueError(f"delta_timestamps[{key!r}] must hold finite numbers of seconds, got {deltas!r}")
    outside_tolerance = {}
    for key, deltas in delta_timestamps.items():
        bad = [ts for ts in deltas if abs(ts * fps - round(ts * fps)) / fps > tolerance_s]
        if bad:
            outside_tolerance[key] = bad
    if outside_tolerance:
        raise ValueError(
            "The following delta_timestamps are found outside of tolerance range. "
            f"Please make sure they are multiples of 1/{fps} +/- tolerance and adjust "
            f"their values accordingly.\n{pformat(outside_tolerance)}"
        )


def delta_indices(delta_timestamps: Mapping[str, Sequence[float]], fps: float) -> dict[str, np.ndarray]:
    """Frame offsets (int64) per key: ``round(delta * fps)``, as lerobot's ``get_delta_indices``."""
    return {
        key: np.array([round(d * fps) for d in deltas], dtype=np.int64)
        for key, deltas in delta_timestamps.items()
    }
