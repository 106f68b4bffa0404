"""Transcoding contracts: frame-exact (same frames, same pts per file), samples equal the source's
(tabular exactly, images by pixel identity and within lossy tolerance), lerobot reads the result,
clear errors."""

from __future__ import annotations

import json
import re
import shutil
from fractions import Fraction
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


def frame_times(path: Path) -> tuple[str, list[Fraction]]:
    """The decoder's name and every decoded frame's presentation time, in decode output order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.pts * stream.time_base for frame in container.decode(stream)]
        return stream.codec_context.name, times


def reorders_frames(path: Path) -> bool:
    """Whether any packet is stored out of presentation order (B-frames: dts != pts)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return any(p.dts != p.pts for p in container.demux(stream) if p.size)


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
    fps = json.loads((src / "meta" / "info.json").read_text())["fps"]
    for rel in files:
        _, before = frame_times(src / rel)
        decoder, after = frame_times(dst / rel)
        assert after == before, rel
        assert after == [Fraction(i, fps) for i in range(len(after))], rel  # 0, 1/fps, ... in order
        assert decoder == codec["video.codec"]
        assert not reorders_frames(dst / rel), rel
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
    indices = [0, len(ours) // 2, len(ours) - 1]
    for index, theirs in zip(indices, oracle.lerobot_items(dst, indices, return_uint8=True), strict=True):
        mine = next(s for s in ours if int(s["index"]) == index)
        for key in ("observation.images.cam0", "observation.images.cam1"):
            np.testing.assert_array_equal(theirs[key].numpy(), mine[key].numpy())
        assert int(theirs["frame_index"]) == int(mine["frame_index"])


def test_bad_input_gives_clear_errors(
    make_dataset: MakeDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_dataset()
    with pytest.raises(ValueError, match="not a LeRobot v3 dataset"):
        transcode_dataset(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="codec must be one of"):
        transcode_dataset(src, tmp_path / "out", codec="av1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"crf must be in \[0, 51\]"):
        transcode_dataset(src, tmp_path / "out", codec="h264", crf=60)
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="exists"):
        transcode_dataset(src, tmp_path / "exists")
    assert main([str(src), str(tmp_path / "exists")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    old = tmp_path / "old"
    shutil.copytree(src, old)
    info = json.loads((old / "meta" / "info.json").read_text())
    info["codebase_version"] = "v2.1"
    (old / "meta" / "info.json").write_text(json.dumps(info))
    assert main([str(old), str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out2").exists()
    depth = tmp_path / "depth"
    shutil.copytree(src, depth)
    info = json.loads((depth / "meta" / "info.json").read_text())
    info["features"]["observation.images.cam1"]["info"]["is_depth_map"] = True
    (depth / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"'observation\.images\.cam1' is a depth map"):
        transcode_dataset(depth, tmp_path / "out3")
    assert not (tmp_path / "out3").exists() and not list(tmp_path.glob(".*tmp*"))

    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    victim = sorted(broken.rglob("*.mp4"))[1]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(ValueError, match=re.escape(str(victim))):
        transcode_dataset(broken, tmp_path / "out4", workers=2)
    assert not (tmp_path / "out4").exists() and not list(tmp_path.glob(".*tmp*"))


def test_overwrite_replaces_the_destination(make_dataset: MakeDataset, tmp_path: Path) -> None:
    src = make_dataset()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "stale.txt").write_text("old")
    assert main([str(src), str(dst), "--codec", "h264", "--overwrite"]) == 0
    assert not (dst / "stale.txt").exists()
    info = json.loads((dst / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.cam0"]["info"]["video.codec"] == "h264"
