"""Shared pytest fixtures: real synthetic LeRobot v3 datasets, written once per session and cached.

``make_dataset(**overrides) -> Path`` writes a dataset with ``lerobot_stream.synth.write_dataset``
(``TINY_DATASET`` defaults overridden by keyword) the first time a given set of arguments is asked
for, and returns the cached path afterwards. Treat the returned folder as read-only: copy it
(``shutil.copytree``) before damaging or extending it. With ``LRS_TEST_MEDIA=DIR`` datasets are
taken from (or stored in) DIR, like the clips of ``tests/clips.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# 8 episodes of 10–30 frames, 2 cameras of 64x96, AV1: a video cap of 0.01 MB packs 2–3 episodes
# per mp4 and gives each camera at least 3 files (so the 2nd and 3rd file of every camera exist).
TINY_DATASET: dict[str, Any] = {
    "num_episodes": 8,
    "num_cameras": 2,
    "height": 64,
    "width": 96,
    "codec": "av1",
    "fps": 30,
    "seed": 0,
    "min_length": 10,
    "max_length": 30,
    "video_files_size_in_mb": 0.01,
}

# The remote-ranges layout (issue 12): 2 cameras x 10+ H.264 files of 20+ short episodes each; every
# 4th episode of a file starts mid-GOP (mid_gop_every), the others on a keyframe as lerobot writes
# them; 96x128 frames at crf 16 so that video bytes outweigh the mp4 headers (~16 bytes per frame).
RANGES_DATASET: dict[str, Any] = {
    "num_episodes": 260,
    "height": 96,
    "width": 128,
    "codec": "h264",
    "gop": 4,
    "crf": 16,
    "min_length": 6,
    "max_length": 12,
    "video_files_size_in_mb": 0.07,
    "data_files_size_in_mb": 0.1,
    "mid_gop_every": 4,
}

MakeDataset = Callable[..., Path]


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory: pytest.TempPathFactory) -> MakeDataset:
    """Factory: ``make_dataset(**overrides)`` → root of a cached synthetic dataset (read-only)."""
    from clips import media_dir, media_key

    base = tmp_path_factory.mktemp("datasets")
    media = media_dir()
    cache: dict[str, Path] = {}

    def make(**overrides: Any) -> Path:
        kwargs = {**TINY_DATASET, **overrides}
        if "episode_lengths" in kwargs and kwargs["episode_lengths"] is not None:
            kwargs["episode_lengths"] = list(kwargs["episode_lengths"])
            kwargs["num_episodes"] = overrides.get("num_episodes", len(kwargs["episode_lengths"]))
        key = hashlib.sha1(json.dumps(kwargs, sort_keys=True).encode()).hexdigest()[:16]
        if key not in cache:
            stored = media / "datasets" / media_key("dataset", kwargs) if media else None
            if stored is not None and (stored / "meta" / "info.json").exists():
                cache[key] = stored
            else:
                from lerobot_stream.synth import write_dataset

                cache[key] = write_dataset(base / key, **kwargs)
                if stored is not None:
                    shutil.copytree(cache[key], stored, dirs_exist_ok=True)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_dataset(make_dataset: MakeDataset) -> Path:
    """The default tiny dataset (``TINY_DATASET``)."""
    return make_dataset()


@pytest.fixture(scope="session")
def ranges_dataset(make_dataset: MakeDataset) -> Path:
    """The remote-ranges layout (``RANGES_DATASET``)."""
    return make_dataset(**RANGES_DATASET)


@pytest.fixture
def tiny_dataset_kwargs() -> dict[str, Any]:
    """The ``write_dataset`` keyword arguments of ``tiny_dataset`` (a fresh copy)."""
    return dict(TINY_DATASET)


@pytest.fixture(scope="module")
def served_tiny(make_dataset: MakeDataset, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(local root, nginx server, its URL) of the tiny dataset served by nginx on 127.0.0.1."""
    from servers import NginxServer

    root = make_dataset()
    www = tmp_path_factory.mktemp("www")
    shutil.copytree(root, www / "tiny")
    with NginxServer(www) as server:
        yield root, server, f"{server.url}/tiny"
