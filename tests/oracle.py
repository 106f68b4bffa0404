"""The real lerobot 0.6.1 ``LeRobotDataset[i]``, as a reference for value-parity tests.

``scripts/install_lerobot_oracle.sh`` installs lerobot 0.6.1 on Python 3.11 (see that script for how);
this module imports it after ``lerobot_stream._lerobot_compat.prepare_lerobot_import`` (two run-time
shims that touch nothing on lerobot's read path):

* ``torchvision._meta_registrations`` is replaced by an empty module before torchvision is imported:
  PyPI's torchvision is a CUDA build whose compiled ops do not load next to torch+cpu, and its
  import-time fake-kernel registrations for those ops (used only by ``torch.compile``) would fail.
* ``av.option`` (gone in PyAV >= 16) is given a placeholder ``Option`` class: lerobot uses it only in
  annotations of its encoder-option checks, evaluated when ``pyav_utils`` is imported.

Use :func:`lerobot_item` to get a sample, and :func:`require_lerobot` (or the ``lerobot_oracle``
fixture pattern in ``test_reference_lerobot.py``) to skip, with the reason, where lerobot is missing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from lerobot_stream._lerobot_compat import prepare_lerobot_import

LEROBOT_VERSION = "0.6.1"


@cache
def _import_lerobot() -> tuple[Any, str | None]:
    """Returns (LeRobotDataset class or None, why not)."""
    try:
        prepare_lerobot_import()
        import lerobot

        version = getattr(lerobot, "__version__", None)
        if version is None:
            from lerobot.__version__ import __version__ as version
        if version != LEROBOT_VERSION:
            return None, f"lerobot {version} installed, the oracle is pinned to {LEROBOT_VERSION}"
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    except Exception as e:
        return None, (
            f"lerobot {LEROBOT_VERSION} is not importable ({type(e).__name__}: {e}); "
            "run scripts/install_lerobot_oracle.sh"
        )
    return LeRobotDataset, None


def lerobot_import_error() -> str | None:
    """None when the real lerobot can be used, else why it cannot."""
    return _import_lerobot()[1]


def require_lerobot() -> None:
    """Skip the calling test, with the reason, when the real lerobot cannot be imported."""
    import pytest

    error = lerobot_import_error()
    if error is not None:
        pytest.skip(error)


@cache
def lerobot_dataset(
    root: str | Path,
    delta_timestamps_json: str | None = None,
    tolerance_s: float = 1e-4,
    video_backend: str = "pyav",
    return_uint8: bool = False,
) -> Any:
    """A cached real ``LeRobotDataset`` over the local v3 dataset at ``root`` (read-only use)."""
    cls, error = _import_lerobot()
    if cls is None:
        raise RuntimeError(error)
    delta = json.loads(delta_timestamps_json) if delta_timestamps_json is not None else None
    return cls(
        "local/oracle",
        root=Path(root),
        delta_timestamps=delta,
        tolerance_s=tolerance_s,
        video_backend=video_backend,
        return_uint8=return_uint8,
    )


def lerobot_item(
    root: str | Path,
    index: int,
    delta_timestamps: dict[str, list[float]] | None = None,
    tolerance_s: float = 1e-4,
    video_backend: str = "pyav",
    return_uint8: bool = False,
) -> dict[str, Any]:
    """What lerobot 0.6.1 ``LeRobotDataset(root=root, ...)[index]`` returns."""
    delta_json = json.dumps(delta_timestamps) if delta_timestamps is not None else None
    ds = lerobot_dataset(str(root), delta_json, tolerance_s, video_backend, return_uint8)
    return ds[index]
