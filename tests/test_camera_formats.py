"""Image-feature cameras and depth maps: samples equal the real lerobot 0.6.1 ``LeRobotDataset[i]``.

Datasets come from two writers: lerobot's own (``LeRobotDataset.create`` + ``add_frame`` +
``save_episode`` in the oracle environment: RGB + uint16-mm + float32-m depth cameras as ``image``
features, and RGB + depth cameras as videos) and ours (``lerobot_stream.synth`` with
``camera_storage="image"`` / ``depth_cameras``). Every frame of every dataset is compared, keys in
order, dtype, shape and bits, under several option sets (windows over image and depth keys with
padding, ``depth_output_unit``, ``return_uint8``, ``image_transforms``). Also: the values are the
recorded frames (lossless paths exact, the 12-bit depth quantizer within its step), DataLoader
workers emit every frame once, and a damaged image raises a ValueError naming the data file, the
episode and the key, only when that frame is emitted.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import oracle
import oracle_transforms
from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.metadata import load_metadata
from lerobot_stream.synth.depth import depth_identity
from lerobot_stream.tabular import TabularReader
from streaming_helpers import assert_same_sample, run_loader

EPISODES = [6, 9, 5]
FPS = 10
OPTION_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "windows_m_transform": {
        "delta_timestamps": "camera_windows",
        "depth_output_unit": "m",
        "image_transform": "flip_and_darken",
    },
    "uint8_mm": {"return_uint8": True, "depth_output_unit": "mm"},
}


@pytest.fixture(scope="module")
def lerobot_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    oracle.require_lerobot()
    root = tmp_path_factory.mktemp("lerobot-written") / "images"
    return root, oracle.lerobot_write(root, "images", EPISODES, height=24, width=32, fps=FPS)


@pytest.fixture(scope="module")
def lerobot_depth_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    oracle.require_lerobot()
    root = tmp_path_factory.mktemp("lerobot-written") / "depth_video"
    # 96x128 depth frames: a 3-frame window is 36,864 values, above torch's parallel grain size.
    return root, oracle.lerobot_write(root, "depth_video", EPISODES, height=96, width=128, fps=FPS)


def synth_kwargs(storage: str) -> dict[str, Any]:
    return {
        "camera_storage": storage,
        "num_cameras": 1,
        "depth_cameras": 1,
        "height": 48,
        "width": 64,
        "fps": FPS,
        "episode_lengths": EPISODES,
    }


@pytest.fixture(
    scope="module", params=["lerobot_images", "lerobot_depth_video", "synth_image", "synth_video"]
)
def dataset_root(request: pytest.FixtureRequest, make_dataset: Any) -> Path:
    if request.param.startswith("lerobot"):
        return request.getfixturevalue(request.param)[0]
    oracle.require_lerobot()
    if request.param == "synth_jpeg":  # the Hub's *_image datasets often store JPEG
        dest = request.getfixturevalue("tmp_path_factory").mktemp("jpeg") / "synth_jpeg"
        return jpeg_copy(make_dataset(**synth_kwargs("image")), dest, "observation.images.cam0")
    return make_dataset(**synth_kwargs(request.param.removeprefix("synth_")))


def jpeg_copy(root: Path, dest: Path, key: str) -> Path:
    """A copy of ``root`` whose ``key`` frames are re-encoded as JPEG (quality 90, Pillow)."""
    from PIL import Image

    shutil.copytree(root, dest)
    for path in (dest / "data").glob("*/*.parquet"):
        table = pq.read_table(path)
        rows = table.column(key).to_pylist()
        for row in rows:
            out = io.BytesIO()
            Image.open(io.BytesIO(row["bytes"])).save(out, format="JPEG", quality=90)
            row["bytes"], row["path"] = out.getvalue(), row["path"].replace(".png", ".jpg")
        field = table.schema.get_field_index(key)
        pq.write_table(table.set_column(field, key, pa.array(rows, table.schema.field(key).type)), path)
    return dest


def resolve_options(root: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Option set → constructor kwargs shared by both sides (windows over every camera, padded)."""
    options = dict(options)
    if options.get("delta_timestamps") == "camera_windows":
        cameras = load_metadata("x", root).camera_keys
        options["delta_timestamps"] = {
            **{key: [-2 / FPS, 0.0, 3 / FPS][: 3 - i % 2] for i, key in enumerate(cameras)},
            "action": [-1 / FPS, 0.0, 1 / FPS],
        }
    return options


def our_samples(root: Path, **options: Any) -> dict[int, dict[str, Any]]:
    transform = options.pop("image_transform", None)
    if transform is not None:
        options["image_transforms"] = oracle_transforms.TRANSFORMS[transform]
    ds = StreamingLeRobotDataset("local/ours", root=root, shuffle=False, **options)
    return {int(s["index"]): s for s in ds}


@pytest.fixture(scope="module")
def lerobot_samples(dataset_root: Path) -> dict[str, list[Any]]:
    """lerobot's sample of every frame under each option set (one oracle run per dataset)."""
    frames = range(sum(EPISODES))
    queries = [(frames, resolve_options(dataset_root, OPTION_SETS[name])) for name in OPTION_SETS]
    return dict(zip(OPTION_SETS, oracle.lerobot_queries(dataset_root, queries), strict=True))


@pytest.mark.parametrize("option_set", sorted(OPTION_SETS))
def test_every_frame_matches_lerobot(dataset_root: Path, lerobot_samples: dict, option_set: str) -> None:
    options = resolve_options(dataset_root, OPTION_SETS[option_set])
    ours = our_samples(dataset_root, **options)
    assert sorted(ours) == list(range(sum(EPISODES)))
    meta = load_metadata("x", dataset_root)
    assert meta.image_keys or meta.depth_keys, "the dataset lost its point"
    for index, want in enumerate(lerobot_samples[option_set]):
        assert not isinstance(want, Exception), want
        assert_same_sample(want, ours[index], f"{dataset_root.name} frame {index}")
    if "delta_timestamps" in options:
        padded = [k for k in ours[0] if k.endswith("_is_pad") and bool(ours[0][k].any())]
        assert padded, "no window crossed the episode start: the test lost its point"


def test_lerobot_written_images_hold_the_recorded_frames(lerobot_images) -> None:
    root, recorded = lerobot_images
    for sample in StreamingLeRobotDataset("local/ours", root=root, shuffle=False, depth_output_unit="mm"):
        ep, i = int(sample["episode_index"]), int(sample["frame_index"])
        rgb = torch.from_numpy(recorded[f"rgb/{ep}"][i]).permute(2, 0, 1).float() / 255
        assert torch.equal(sample["observation.images.rgb"], rgb)
        depth_mm = torch.from_numpy(recorded[f"depth_mm/{ep}"][i].astype(np.float32)).permute(2, 0, 1)
        assert torch.equal(sample["observation.images.depth_mm"], depth_mm)
        depth_m = torch.from_numpy(recorded[f"depth_m/{ep}"][i]).permute(2, 0, 1)
        assert torch.equal(sample["observation.images.depth_m"], depth_m * 1000)  # stored in m, read in mm


def test_lerobot_written_depth_video_within_the_quantizer_step(lerobot_depth_video) -> None:
    root, recorded = lerobot_depth_video
    for sample in StreamingLeRobotDataset("local/ours", root=root, shuffle=False):
        ep, i = int(sample["episode_index"]), int(sample["frame_index"])
        truth = torch.from_numpy(recorded[f"depth_mm/{ep}"][i].astype(np.float32)).permute(2, 0, 1)
        got = sample["observation.images.depth_mm"]
        assert got.shape == truth.shape and got.dtype == torch.float32
        # Log quantization over 0.01..10 m in 4095 steps: a step is < 0.25 % of depth + shift.
        assert torch.all((got - truth).abs() <= 0.0025 * (truth + 3500) + 1)


def test_synth_depth_images_carry_their_identity(make_dataset: Any) -> None:
    root = make_dataset(**synth_kwargs("image"))
    seen = run_loader(StreamingLeRobotDataset("local/ours", root=root, seed=1), batch_size=4, num_workers=2)
    indices = torch.cat([b["index"] for b in seen]).tolist()
    assert sorted(indices) == list(range(sum(EPISODES)))
    for batch in seen:
        depth = batch["observation.images.depth0"]
        for ep, i, d in zip(
            batch["episode_index"].tolist(), batch["frame_index"].tolist(), depth, strict=True
        ):
            assert d.shape == (1, 48, 64) and int(d[0, 0, 0]) == depth_identity(ep, i)


def damaged_copy(root: Path, dest: Path, key: str, row: int) -> tuple[Path, int]:
    """A copy of ``root`` whose ``row``-th data row has half of its ``key`` image cut off."""
    shutil.copytree(root, dest)
    path = dest / "data" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    column = table.column(key).to_pylist()
    column[row] = {**column[row], "bytes": column[row]["bytes"][: len(column[row]["bytes"]) // 2]}
    table = table.set_column(
        table.schema.get_field_index(key), key, pa.array(column, table.schema.field(key).type)
    )
    pq.write_table(table, path)
    return path, int(table.column("episode_index")[row].as_py())


def test_damaged_image_raises_naming_file_episode_and_key(make_dataset: Any, tmp_path: Path) -> None:
    root, key = make_dataset(**synth_kwargs("image")), "observation.images.cam0"
    path, episode = damaged_copy(root, tmp_path / "damaged", key, row=EPISODES[0] + 2)
    meta = load_metadata("x", tmp_path / "damaged")
    rows = TabularReader(meta).read_episode(episode)  # admission keeps the bytes: no decode, no error
    assert len(rows.columns[key]) == EPISODES[1]
    ds = StreamingLeRobotDataset("local/damaged", root=tmp_path / "damaged", shuffle=False)
    emitted = []
    with pytest.raises(ValueError, match="cannot decode the image") as err:
        for sample in ds:
            emitted.append(int(sample["index"]))
    message = str(err.value)
    assert str(path) in message and f"episode {episode} frame 2" in message and key in message
    assert emitted == list(range(EPISODES[0] + 2)), "frames before the damaged one must be emitted"


def camera_layout(root: Path) -> dict[tuple[str, bool], tuple]:
    """(storage, is depth) → what a camera looks like on disk: feature entry, info keys, parquet type."""
    meta = load_metadata("x", root)
    schema = pq.read_schema(next((root / "data").glob("*/*.parquet")))
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    layout = {}
    for key in meta.camera_keys:
        ft = meta.features[key]
        depth = key in meta.depth_keys
        stored = (str(schema.field(key).type), hf[key]) if ft["dtype"] == "image" else None
        info = ft.get("info") or {}
        pix = (info.get("video.codec"), info.get("video.pix_fmt")) if depth else None
        layout[(ft["dtype"], depth)] = (ft["shape"][-1], ft["names"], sorted(info), pix, stored)
    return layout


def test_synth_layout_of_image_and_depth_cameras_is_lerobots(
    lerobot_images, lerobot_depth_video, make_dataset: Any
) -> None:
    theirs = {**camera_layout(lerobot_images[0]), **camera_layout(lerobot_depth_video[0])}
    ours = {
        **camera_layout(make_dataset(**synth_kwargs("image"))),
        **camera_layout(make_dataset(**synth_kwargs("video"))),
    }
    assert set(ours) == set(theirs) == {("image", False), ("image", True), ("video", False), ("video", True)}
    for kind in theirs:
        if kind == ("video", False):  # RGB video info: probed from the file, same keys as lerobot's
            assert ours[kind][2] == theirs[kind][2]
        else:
            assert ours[kind] == theirs[kind], kind
