"""The real lerobot 0.6.1, run in its own interpreter, as the reference for value-parity tests.

``scripts/install_lerobot_oracle.sh`` installs lerobot 0.6.1 as published into ``.venv-oracle/``
(Python >= 3.12, torch < 2.12; ``$LRS_ORACLE_VENV`` moves it). Nothing of lerobot is imported here:
each call runs ``tests/oracle_worker.py`` in that interpreter, which writes lerobot's samples with
``torch.save`` (or records a dataset with lerobot's own writer), and this module reads them back.

    lerobot_items(root, indices, **options)  ->  [LeRobotDataset(root=root, **options)[i], ...]
    lerobot_write(root, kind, ...)           ->  a dataset recorded by LeRobotDataset.create/add_frame
    require_lerobot()                        ->  pytest.skip, with the reason, when it cannot run

An index that fails in lerobot comes back as :class:`LerobotError` (``type_name``, ``message``); a
constructor that fails raises it. Each call starts the interpreter (about 5 s): ask for many indices
at once. Results are cached per (root, indices, options) for the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

LEROBOT_VERSION = "0.6.1"
REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "oracle_worker.py"
_TIMEOUT_S = 900


class LerobotError(Exception):
    """lerobot raised ``type_name`` with ``message`` (in the oracle's interpreter)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


def oracle_python() -> Path:
    """The oracle environment's interpreter (``$LRS_ORACLE_VENV`` or ``<repo>/.venv-oracle``)."""
    venv = Path(os.environ.get("LRS_ORACLE_VENV") or REPO / ".venv-oracle")
    return venv / "bin" / "python"


@cache
def lerobot_import_error() -> str | None:
    """None when the oracle environment runs lerobot 0.6.1, else why not."""
    if os.environ.get("LRS_ORACLE") == "0":
        return "LRS_ORACLE=0: the lerobot oracle is not installed"
    python = oracle_python()
    if not python.exists():
        return f"no lerobot oracle at {python.parent.parent}: run scripts/install_lerobot_oracle.sh"
    probe = "import lerobot; print(lerobot.__version__)"
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, env=subprocess_env(), timeout=_TIMEOUT_S
    )
    if done.returncode != 0:
        return f"lerobot does not import in {python}: {done.stderr.strip().splitlines()[-1:]}"
    version = done.stdout.strip()
    if version != LEROBOT_VERSION:
        return f"lerobot {version} in {python}, the oracle is pinned to {LEROBOT_VERSION}"
    return None


def require_lerobot() -> None:
    """Skip the calling test, with the reason, when the oracle cannot run."""
    import pytest

    error = lerobot_import_error()
    if error is not None:
        pytest.skip(error)


def lerobot_items(root: str | Path, indices: list[int] | range, **options: Any) -> list[Any]:
    """``LeRobotDataset("local/oracle", root=root, video_backend="pyav", **options)[i]`` for each index.

    ``options``: delta_timestamps, tolerance_s, return_uint8, depth_output_unit, episodes,
    video_backend, image_transform (a name from ``oracle_transforms.TRANSFORMS``). A failing index
    returns a :class:`LerobotError` in its place; a failing constructor raises it.
    """
    return lerobot_queries(root, [(indices, options)])[0]


def lerobot_queries(root: str | Path, queries: list[tuple[list[int] | range, dict[str, Any]]]) -> list[Any]:
    """Several :func:`lerobot_items` calls (``(indices, options)`` each) in one oracle run."""
    key = json.dumps(
        {"root": str(root), "queries": [{"indices": [int(i) for i in ix], "options": o} for ix, o in queries]}
    )
    results = []
    for result in _items_cached(key):
        if isinstance(result, LerobotError):
            raise result
        results.append(result)
    return results


@cache
def _items_cached(key: str) -> tuple[Any, ...]:
    request = json.loads(key)
    with tempfile.TemporaryDirectory(prefix="lrs-oracle-") as tmp:
        out = Path(tmp) / "items.pt"
        _run({**request, "action": "items", "out": str(out)}, Path(tmp))
        loaded = torch.load(out, weights_only=True)
    return tuple(_unpack(result) for result in loaded)


def _unpack(result: Any) -> Any:
    if isinstance(result, dict):  # the constructor failed
        return _error(result["__error__"])
    return [_error(x["__error__"]) if "__error__" in x else x for x in result]


def lerobot_item(root: str | Path, index: int, **options: Any) -> dict[str, Any]:
    """One sample (see :func:`lerobot_items`); raises what lerobot raised."""
    item = lerobot_items(root, [index], **options)[0]
    if isinstance(item, LerobotError):
        raise item
    return item


def lerobot_write(
    root: str | Path,
    kind: str,
    episodes: list[int],
    *,
    height: int = 24,
    width: int = 32,
    fps: int = 10,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Records a dataset at ``root`` with lerobot's own writer (see ``oracle_worker.py`` for ``kind``).

    Returns the raw frames that were recorded, ``{"<camera>/<episode>": [T, H, W, C] array}``.
    """
    request = {
        "action": "write",
        "root": str(root),
        "kind": kind,
        "episodes": list(episodes),
        "height": height,
        "width": width,
        "fps": fps,
        "seed": seed,
    }
    with tempfile.TemporaryDirectory(prefix="lrs-oracle-") as tmp:
        out = Path(tmp) / "frames.npz"
        _run({**request, "out": str(out)}, Path(tmp))
        with np.load(out) as frames:
            return {name: frames[name] for name in frames.files}


def subprocess_env() -> dict[str, str]:
    """The environment an oracle process runs in: this one, less Python/venv variables, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(request: dict[str, Any], tmp: Path) -> None:
    error = lerobot_import_error()
    if error is not None:
        raise RuntimeError(error)
    path = tmp / "request.json"
    path.write_text(json.dumps(request))
    done = subprocess.run(
        [str(oracle_python()), str(WORKER), str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the lerobot oracle failed on {request['action']}:\n{done.stderr[-4000:]}")


def _error(text: str) -> LerobotError:
    type_name, _, message = text.partition(": ")
    return LerobotError(type_name, message)
