"""Runs inside the lerobot 0.6.1 environment (.venv-oracle, see scripts/install_lerobot_oracle.sh).

Never imported by the lerobot-stream process: ``tests/oracle.py`` runs it as
``<oracle python> tests/oracle_worker.py REQUEST.json`` and reads back what it wrote. It uses lerobot
exactly as published (no patches, no shims), offline.

Requests (JSON):
    {"action": "items", "root": DIR, "queries": [{"indices": [...], "options": {...}}, ...], "out": FILE}
        For each query, ``LeRobotDataset("local/oracle", root=DIR, **options)[i]`` for each index,
        saved with ``torch.save`` as a list of lists (a failing index or constructor saves
        ``{"__error__": "<Type>: <message>"}`` in its place).
        Options: delta_timestamps, tolerance_s, video_backend (default "pyav"), return_uint8,
        depth_output_unit, episodes, image_transform (a name from ``oracle_transforms``).
    {"action": "write", "root": DIR, "kind": "images" | "depth_video", "episodes": [lengths...],
     "height": H, "width": W, "fps": F, "seed": S, "out": FILE}
        Records a dataset with lerobot's own writer (``LeRobotDataset.create`` + ``add_frame`` +
        ``save_episode`` + ``finalize``): "images" stores an RGB camera and two depth cameras (uint16
        millimetres and float32 metres) as ``image`` features (``use_videos=False``); "depth_video"
        stores an RGB video camera and a depth video camera (12-bit HEVC). ``out`` gets the raw frames
        given to ``add_frame`` (npz), so tests can check what any reader returns against the source.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="lrs-oracle-hf-"))

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_transforms


def items(request: dict[str, Any]) -> None:
    """One list of samples (or an error) per query, all from one interpreter start."""
    torch.save([_query(request["root"], q) for q in request["queries"]], request["out"])


def _query(root: str, query: dict[str, Any]) -> Any:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    options = dict(query.get("options") or {})
    transform = options.pop("image_transform", None)
    options.setdefault("video_backend", "pyav")
    try:
        ds = LeRobotDataset(
            "local/oracle",
            root=Path(root),
            image_transforms=oracle_transforms.TRANSFORMS[transform] if transform else None,
            **options,
        )
    except Exception as err:  # the caller asserts on the error
        return {"__error__": f"{type(err).__name__}: {err}"}
    out: list[Any] = []
    for index in query["indices"]:
        try:
            out.append(ds[int(index)])
        except Exception as err:  # the caller asserts on the error
            out.append({"__error__": f"{type(err).__name__}: {err}"})
    return out


def _frames(
    kind: str, seed: int, episode: int, length: int, height: int, width: int
) -> dict[str, np.ndarray]:
    """Deterministic camera frames of one episode: textured RGB and smooth depth with noise."""
    rng = np.random.default_rng([seed, episode])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = rng.integers(0, 256, size=(length, height, width, 3), dtype=np.uint8)
    ramp = 300.0 + 40.0 * xx + 25.0 * yy
    depth_mm = np.stack(
        [ramp + 150.0 * t + rng.normal(0, 20, size=(height, width)) for t in range(length)]
    ).clip(1, 60000)
    frames = {"rgb": rgb, "depth_mm": depth_mm.astype(np.uint16)[..., None]}
    if kind == "images":
        frames["depth_m"] = (depth_mm / 1000.0).astype(np.float32)[..., None]
    return frames


def write(request: dict[str, Any]) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    kind, height, width = request["kind"], int(request["height"]), int(request["width"])
    storage = "image" if kind == "images" else "video"
    camera = {"dtype": storage, "names": ["height", "width", "channels"]}
    features: dict[str, Any] = {
        "observation.state": {"dtype": "float32", "shape": (4,), "names": [f"j{i}" for i in range(4)]},
        "action": {"dtype": "float32", "shape": (4,), "names": [f"j{i}" for i in range(4)]},
        "observation.images.rgb": {**camera, "shape": (height, width, 3), "info": {"is_depth_map": False}},
        "observation.images.depth_mm": {
            **camera,
            "shape": (height, width, 1),
            "info": {"is_depth_map": True},
        },
    }
    if kind == "images":
        features["observation.images.depth_m"] = {
            **camera,
            "shape": (height, width, 1),
            "info": {"is_depth_map": True},
        }
    ds = LeRobotDataset.create(
        "local/oracle-writer",
        fps=int(request["fps"]),
        features=features,
        root=Path(request["root"]),
        use_videos=storage == "video",
    )
    saved: dict[str, np.ndarray] = {}
    for episode, length in enumerate(request["episodes"]):
        frames = _frames(kind, int(request["seed"]), episode, int(length), height, width)
        rng = np.random.default_rng([int(request["seed"]), episode, 1])
        state = rng.normal(size=(int(length), 4)).astype(np.float32)
        for i in range(int(length)):
            frame = {f"observation.images.{k}": v[i] for k, v in frames.items()}
            frame.update(
                {"observation.state": state[i], "action": state[i] * 2, "task": f"task {episode % 2}"}
            )
            ds.add_frame(frame)
        ds.save_episode()
        for k, v in frames.items():
            saved[f"{k}/{episode}"] = v
    ds.finalize()
    np.savez_compressed(request["out"], **saved)


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    try:
        {"items": items, "write": write}[request["action"]](request)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
