"""Helpers for the StreamingLeRobotDataset tests: run real DataLoaders, compare batches, read truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from lerobot_stream import StreamingLeRobotDataset


def run_loader(
    ds: StreamingLeRobotDataset,
    *,
    batch_size: int,
    num_workers: int,
    passes: int = 1,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    drop_last: bool = False,
    stop_after: int | None = None,
    timeout: float = 0,
) -> list[dict[str, Any]]:
    """Batches of ``passes`` full passes (one per epoch) of a real DataLoader, at most ``stop_after``."""
    kwargs: dict[str, Any] = {}
    if num_workers:
        kwargs = {
            "persistent_workers": persistent_workers,
            "prefetch_factor": prefetch_factor or 2,
            "timeout": timeout,
        }
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last, **kwargs)
    out: list[dict[str, Any]] = []
    for _ in range(passes):
        for batch in loader:
            out.append(batch)
            if stop_after is not None and len(out) == stop_after:
                return out
    return out


def assert_batches_equal(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same number of batches, same keys, bitwise-equal tensors and equal strings, in order."""
    assert len(actual) == len(expected), f"{len(actual)} batches, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a.keys() == e.keys(), f"batch {i}: keys differ"
        for key in e:
            if isinstance(e[key], torch.Tensor):
                assert a[key].dtype == e[key].dtype and torch.equal(a[key], e[key]), (
                    f"batch {i}: {key} differs"
                )
            else:
                assert a[key] == e[key], f"batch {i}: {key} differs"


def assert_same_sample(expected: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    """One sample: same keys in the same order; tensors of the same dtype, shape and bits; equal strings."""
    assert list(actual) == list(expected), f"{where}: keys differ"
    for key, want in expected.items():
        got = actual[key]
        if isinstance(want, torch.Tensor):
            assert isinstance(got, torch.Tensor), f"{where} {key}: not a tensor"
            assert (got.dtype, tuple(got.shape)) == (want.dtype, tuple(want.shape)), f"{where} {key}"
            assert torch.equal(got, want), f"{where} {key}: values differ"
        else:
            assert got == want, f"{where} {key}"


def data_table(root: Path) -> pa.Table:
    """Every data row of a dataset, sorted by ``index`` (read independently with pyarrow)."""
    files = sorted((root / "data").glob("*/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("index")


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A column as a numpy array of shape [rows, *feature shape]."""
    return np.array(table.column(name).to_pylist())


def episodes_table(root: Path) -> pa.Table:
    """The episodes metadata rows, sorted by episode index."""
    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("episode_index")
