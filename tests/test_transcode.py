"""Transcoding contracts: frame-exact (same frames, same pts per file), samples equal the source's
(tabular exactly, images by pixel identity and within lossy tolerance), lerobot reads the result,
clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import oracle
from conftest import MakeDataset
from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.synth import read_identity
from lerobot_stream.transcode import main, transcode_dataset

# HEVC/H.264 at their default CRF re-encode already lossy AV1 frames: mean |Δ| per image stays small.
MEAN_ABS_TOLERANCE = 6 / 255


def frame_times(path: Path) -> tuple[str, list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = sorted(round(float(p.pts * stream.time_base), 6) for p in container.demux(stream) if p.size)
        return stream.codec_context.name, times


def samples(root: Path) -> list[dict]:
    ds = StreamingLeRobotDataset("local/t", root=root, shuffle=False, num_workers=0, return_uint8=True)
    return list(ds)


@pytest.fixture(scope="module", params=["hevc", "h264"])
def transcoded(
    request: pytest.FixtureRequest, make_dataset: MakeDataset, tmp_path_factory
) -> tuple[Path, Path]:
    src = make_dataset()
    dst = tmp_path_factory.mktemp("transcoded") / request.param
    transcode_dataset(src, dst, codec=request.param, workers=2)
    return src, dst


def test_every_file_keeps_its_frames_and_timestamps(transcoded: tuple[Path, Path]) -> None:
    src, dst = transcoded
    files = sorted(p.relative_to(src) for p in src.rglob("*.mp4"))
    assert files == sorted(p.relative_to(dst) for p in dst.rglob("*.mp4"))
    codec = json.loads((dst / "meta" / "info.json").read_text())["features"]["observation.images.cam0"][
        "info"
    ]
    for rel in files:
        _, before = frame_times(src / rel)
        decoder, after = frame_times(dst / rel)
        assert after == before, rel
        assert decoder == codec["video.codec"]
    assert (dst / "meta" / "episodes").exists() and not list(dst.parent.glob(".*tmp*"))


def test_samples_equal_the_source(transcoded: tuple[Path, Path]) -> None:
    src, dst = transcoded
    before, after = samples(src), samples(dst)
    assert len(after) == len(before) > 0
    cameras = [k for k in before[0] if k.startswith("observation.images.")]
    for a, b in zip(before, after, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key in cameras:
                assert b[key].shape == a[key].shape and b[key].dtype == a[key].dtype
                assert read_identity(b[key].numpy())[:2] == read_identity(a[key].numpy())[:2]
                diff = (b[key].float() - a[key].float()).abs().mean() / 255
                assert diff < MEAN_ABS_TOLERANCE, (key, int(a["index"]), float(diff))
            elif isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


def test_lerobot_reads_the_transcoded_dataset(transcoded: tuple[Path, Path]) -> None:
    oracle.require_lerobot()
    _, dst = transcoded
    ours = samples(dst)
    for index in (0, len(ours) // 2, len(ours) - 1):
        theirs = oracle.lerobot_item(dst, index, return_uint8=True)
        mine = next(s for s in ours if int(s["index"]) == index)
        for key in ("observation.images.cam0", "observation.images.cam1"):
            np.testing.assert_array_equal(theirs[key].numpy(), mine[key].numpy())
        assert int(theirs["frame_index"]) == int(mine["frame_index"])


def test_bad_input_gives_clear_errors(make_dataset: MakeDataset, tmp_path: Path) -> None:
    src = make_dataset()
    with pytest.raises(ValueError, match="not a LeRobot v3 dataset"):
        transcode_dataset(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="codec must be one of"):
        transcode_dataset(src, tmp_path / "out", codec="av1")  # type: ignore[arg-type]
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="exists"):
        transcode_dataset(src, tmp_path / "exists")
    old = tmp_path / "old"
    shutil.copytree(src, old)
    info = json.loads((old / "meta" / "info.json").read_text())
    info["codebase_version"] = "v2.1"
    (old / "meta" / "info.json").write_text(json.dumps(info))
    assert main([str(old), str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out2").exists()
