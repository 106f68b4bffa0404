"""Decode core contracts from Python: right frames, values equal an independent decoder (PyAV),
errors that name the file, decoder cache, concurrent decodes with the GIL released."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import lerobot_stream
from lerobot_stream import DecoderCache, FrameTimestampError, VideoDecoder

FPS = 20
NUM_FRAMES = 40
# Our frames and PyAV's come from the same kind of libavcodec decode and the same swscale RGB24 path
# (measured bit-exact with PyAV 18 against Debian 12's FFmpeg 5.1). Stated tolerance, for other
# FFmpeg versions: max |Δ| <= 2 and mean |Δ| < 0.5 per frame.
MEAN_ABS_TOLERANCE = 0.5
MAX_ABS_TOLERANCE = 2

ENCODERS = {
    "av1": ("libsvtav1", {"g": "2", "crf": "30", "preset": "12"}),
    "h264": ("libx264", {"g": "8", "crf": "18", "preset": "ultrafast", "bf": "2"}),
    "hevc": ("libx265", {"g": "8", "crf": "20", "preset": "ultrafast", "x265-params": "log-level=none"}),
}


def textured_frame(index: int, height: int, width: int) -> np.ndarray:
    """Gradient + coloured blocks that move with the frame index (RGB HWC uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x * 255 // max(width - 1, 1) + index * 5) % 256
    image[..., 1] = (y * 255 // max(height - 1, 1)) % 256
    image[..., 2] = ((x // 16 + y // 16 + index) % 2) * 200 + 20
    return image


def write_clip(path: Path, codec: str, pix_fmt: str = "yuv420p", height: int = 64, width: int = 96) -> Path:
    encoder, options = ENCODERS[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)
        for i in range(NUM_FRAMES):
            frame = av.VideoFrame.from_ndarray(textured_frame(i, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pyav_frames(path: Path) -> dict[float, np.ndarray]:
    """Every frame decoded by PyAV, keyed by its presentation time, as RGB CHW uint8."""
    frames = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames[round(float(frame.pts * stream.time_base), 6)] = frame.to_ndarray(
                format="rgb24"
            ).transpose(2, 0, 1)
    return frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    out = {codec: write_clip(root / f"{codec}.mp4", codec) for codec in ENCODERS}
    out["h264_yuv444p"] = write_clip(root / "h264_444.mp4", "h264", pix_fmt="yuv444p")
    return out


@pytest.mark.parametrize("name", ["av1", "h264", "hevc", "h264_yuv444p"])
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
        assert frames.shape == (5, 3, 64, 96)
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
