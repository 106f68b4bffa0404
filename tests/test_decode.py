"""Decode core contracts from Python: right frames, values equal an independent decoder (PyAV),
errors that name the file, decoder cache, concurrent decodes with the GIL released."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import lerobot_stream
from clips import ENCODERS, FPS, pyav_frames, write_clip
from lerobot_stream import DecoderCache, FrameTimestampError, VideoDecoder

NUM_FRAMES = 40
# Our frames and PyAV's come from the same kind of libavcodec decode and the same swscale RGB24 path
# (measured bit-exact with PyAV 18 against Debian 12's FFmpeg 5.1). Stated tolerance, for other
# FFmpeg versions: max |Δ| <= 2 and mean |Δ| < 0.5 per frame.
MEAN_ABS_TOLERANCE = 0.5
MAX_ABS_TOLERANCE = 2


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    out = {codec: write_clip(root / f"{codec}.mp4", codec, num_frames=NUM_FRAMES) for codec in ENCODERS}
    out["h264_yuv444p"] = write_clip(root / "h264_444.mp4", "h264", num_frames=NUM_FRAMES, pix_fmt="yuv444p")
    # A width that is not a multiple of 8 (swscale's SIMD group): every column must convert.
    out["h264_width66"] = write_clip(
        root / "h264_w66.mp4", "h264", num_frames=NUM_FRAMES, height=50, width=66
    )
    return out


@pytest.mark.parametrize("name", ["av1", "h264", "hevc", "h264_yuv444p", "h264_width66"])
def test_frames_match_pyav_at_random_timestamps(clips: dict[str, Path], name: str) -> None:
    reference = pyav_frames(clips[name])
    times = sorted(reference)
    decoder = VideoDecoder(str(clips[name]))
    assert decoder.frame_times == pytest.approx(times, abs=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(8):
        picks = [times[i] for i in rng.integers(0, len(times), size=5)]
        frames = decoder.get_frames_at(picks)
        assert frames.dtype == torch.uint8
        assert frames.shape == (5, *next(iter(reference.values())).shape)
        assert frames.is_contiguous()
        for got, t in zip(frames.numpy(), picks, strict=True):
            diff = np.abs(got.astype(np.int16) - reference[t].astype(np.int16))
            assert diff.mean() < MEAN_ABS_TOLERANCE, f"{name} t={t}: mean |Δ| {diff.mean():.2f}"
            assert diff.max() <= MAX_ABS_TOLERANCE, f"{name} t={t}: max |Δ| {diff.max()}"


def test_stream_info(clips: dict[str, Path]) -> None:
    info = VideoDecoder(str(clips["av1"])).info
    assert info["codec"] == "av1"
    assert info["pixel_format"] == "yuv420p"
    assert (info["width"], info["height"], info["num_frames"]) == (96, 64, NUM_FRAMES)
    assert info["fps"] == pytest.approx(FPS)


def test_tensor_survives_decoder_and_is_writable(clips: dict[str, Path]) -> None:
    decoder = VideoDecoder(str(clips["h264"]))
    frames = decoder.get_frames_at([0.0, 0.5])
    del decoder
    frames += 0  # owned, writable memory
    assert frames.shape[0] == 2


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        VideoDecoder(str(tmp_path / "missing.mp4"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"definitely not an mp4 file" * 10, "not a readable video")],
)
def test_bad_file_is_value_error_naming_it(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=reason) as error:
        VideoDecoder(str(path))
    assert str(path) in str(error.value)


def test_truncated_file_decodes_intact_frames_or_fails_clearly(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    data = clips["h264"].read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    try:
        decoder = VideoDecoder(str(path))
    except ValueError as error:
        assert str(path) in str(error)
        return
    assert decoder.info["num_frames"] < NUM_FRAMES
    with pytest.raises(ValueError, match=re.escape(str(path))):
        decoder.get_frames_at([(NUM_FRAMES - 1) / FPS])


def test_timestamp_outside_tolerance_raises_frame_timestamp_error(clips: dict[str, Path]) -> None:
    decoder = VideoDecoder(str(clips["av1"]))
    assert issubclass(FrameTimestampError, ValueError)
    with pytest.raises(FrameTimestampError, match=r"nearest frame #2 .*0\.100000s") as error:
        decoder.get_frames_at([0.1 + 0.01], tolerance_s=1e-4)
    assert str(clips["av1"]) in str(error.value)
    with pytest.raises(FrameTimestampError, match="outside the stream"):
        decoder.get_frames_at([100.0])
    # Within tolerance snaps to the nearest frame.
    same = decoder.get_frames_at([0.1, 0.1 + 5e-5])
    assert torch.equal(same[0], same[1])


def test_decoder_cache_counts_and_evicts(clips: dict[str, Path]) -> None:
    cache = DecoderCache(2)
    paths = [str(clips[name]) for name in ("av1", "h264", "hevc")]
    for path in [paths[0], paths[1], paths[0], paths[2], paths[1]]:
        cache.get_frames_at(path, [0.0])
    assert cache.stats() == {"hits": 1, "misses": 4, "evictions": 2, "open_decoders": 2, "capacity": 2}
    assert lerobot_stream.default_decoder_cache_capacity(64, 2) == 128
    with pytest.raises(ValueError, match="capacity"):
        DecoderCache(0)


def test_concurrent_decodes_from_threads_are_correct(clips: dict[str, Path]) -> None:
    cache = DecoderCache(4)
    names = ["av1", "h264", "hevc"]
    expected = {
        name: VideoDecoder(str(clips[name])).get_frames_at([i / FPS for i in range(NUM_FRAMES)])
        for name in names
    }

    def work(job: int) -> bool:
        name = names[job % 3]
        index = (job * 7) % NUM_FRAMES
        got = cache.get_frames_at(str(clips[name]), [index / FPS])[0]
        return torch.equal(got, expected[name][index])

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(120)))
