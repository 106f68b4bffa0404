"""Per-episode and dataset statistics in lerobot 0.6.x's format (``compute_stats.py``).

Every feature gets ``min, max, mean, std, count, q01, q10, q50, q90, q99``. Numeric features are
reduced over frames (a scalar feature keeps shape (1,)); camera features are reduced over sampled
frames and pixels per channel, scaled to [0, 1], shape (3, 1, 1), ``count`` = frames sampled.
Quantiles are exact here (lerobot estimates them from histograms; values agree to the bin width).
Dataset stats aggregate episodes as lerobot does: count-weighted means and quantiles, pooled
variance, global min/max.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)

Stats = dict[str, np.ndarray]


def sample_indices(length: int) -> list[int]:
    """Frames of an episode that lerobot samples for image stats (``sample_indices``)."""
    num = max(min(100, length), min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, num)).astype(int).tolist()


def image_downsample_step(height: int, width: int) -> int:
    """Pixel stride lerobot uses before image stats (``auto_downsample_height_width``)."""
    if max(height, width) < 300:
        return 1
    return int(width / 150) if width > height else int(height / 150)


def _stats_of_rows(rows: np.ndarray, count: int) -> Stats:
    """Stats over axis 0 of a (N, D) float array."""
    rows = rows.astype(np.float64, copy=False)
    stats: Stats = {
        "min": rows.min(axis=0),
        "max": rows.max(axis=0),
        "mean": rows.mean(axis=0),
        "std": rows.std(axis=0),
        "count": np.array([count], dtype=np.int64),
    }
    if rows.shape[0] < 2:
        quantiles = [stats["mean"].copy() for _ in QUANTILES]
    else:
        quantiles = list(np.quantile(rows, QUANTILES, axis=0))
    stats.update(zip(QUANTILE_KEYS, quantiles, strict=True))
    return stats


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats of a (N,) or (N, D) numeric feature over its N frames."""
    rows = values.reshape(len(values), -1)
    return _stats_of_rows(rows, len(values))


def image_stats(images_chw: np.ndarray, scale: float = 255.0) -> Stats:
    """Stats of (N, C, h, w) sampled frames: per channel, divided by ``scale``, shape (C, 1, 1).

    ``scale`` is 255 for RGB (stats in [0, 1]) and 1 for depth maps (native units), as in lerobot.
    """
    n, c = images_chw.shape[:2]
    pixels = images_chw.transpose(0, 2, 3, 1).reshape(-1, c)
    stats = _stats_of_rows(pixels, n)
    return {k: v if k == "count" else (v / scale).reshape(c, 1, 1) for k, v in stats.items()}


def aggregate(stats_list: list[Stats]) -> Stats:
    """Dataset stats of one feature from its per-episode stats (lerobot ``aggregate_feature_stats``)."""
    means = np.stack([s["mean"] for s in stats_list])
    variances = np.stack([s["std"] ** 2 for s in stats_list])
    counts = np.stack([s["count"] for s in stats_list]).astype(np.float64)
    total = counts.sum(axis=0)
    while counts.ndim < means.ndim:
        counts = np.expand_dims(counts, axis=-1)
    mean = (means * counts).sum(axis=0) / total
    variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
    out: Stats = {
        "min": np.min(np.stack([s["min"] for s in stats_list]), axis=0),
        "max": np.max(np.stack([s["max"] for s in stats_list]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total.astype(np.int64),
    }
    for key in QUANTILE_KEYS:
        out[key] = (np.stack([s[key] for s in stats_list]) * counts).sum(axis=0) / total
    return out
