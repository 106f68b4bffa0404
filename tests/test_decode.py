"""Decode core contracts from Python: right frames, values equal an independent decoder (PyAV),
float32 frames equal uint8 / 255 bit for bit, frames written into caller tensors, what random access
decodes (counters on a known GOP structure), errors that name the file, decoder cache, concurrent
decodes with the GIL released."""

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
    # Odd sizes: AV1 4:2:0 (chroma rounds up), H.264 and HEVC 4:4:4.
    out["av1_odd"] = write_clip(root / "av1_odd.mp4", "av1", num_frames=NUM_FRAMES, height=45, width=67)
    odd = {"num_frames": NUM_FRAMES, "pix_fmt": "yuv444p", "height": 45, "width": 67}
    for codec in ("h264", "hevc"):
        out[f"{codec}_yuv444p_odd"] = write_clip(root / f"{codec}_444_odd.mp4", codec, **odd)
    return out


ALL_CLIPS = [
    *("av1", "h264", "hevc", "h264_yuv444p", "h264_width66"),
    *("av1_odd", "h264_yuv444p_odd", "hevc_yuv444p_odd"),
]


# Not "av1_odd": on odd-sized 4:2:0 frames the system swscale (FFmpeg 5.1) and PyAV's bundled one
# interpolate chroma differently (mean |Δ| about 3, before and after float output existed).
@pytest.mark.parametrize("name", [n for n in ALL_CLIPS if n != "av1_odd"])
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
    stats = cache.stats()
    assert {k: stats[k] for k in ("hits", "misses", "evictions", "open_decoders", "capacity")} == {
        "hits": 1,
        "misses": 4,
        "evictions": 2,
        "open_decoders": 2,
        "capacity": 2,
    }
    assert stats["bytes"] > 0 and stats["max_bytes"] == 0
    one_decoder = stats["bytes"] // 2
    bounded = DecoderCache(8, max_bytes=one_decoder)
    for path in paths:
        bounded.get_frames_at(path, [0.0])
    assert bounded.stats()["open_decoders"] == 1
    assert bounded.stats()["evictions"] == 2
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


@pytest.mark.parametrize("name", ALL_CLIPS)
def test_float32_frames_are_uint8_frames_divided_by_255_bitwise(clips: dict[str, Path], name: str) -> None:
    decoder = VideoDecoder(str(clips[name]))
    times = decoder.frame_times
    order = [times[i] for i in np.random.default_rng(1).permutation(len(times))]
    uint8 = decoder.get_frames_at(order)
    floats = decoder.get_frames_at(order, dtype=torch.float32)
    assert floats.dtype == torch.float32 and floats.shape == uint8.shape
    assert torch.equal(floats, uint8 / 255)  # what lerobot computes: frames.type(torch.float32) / 255
    assert torch.equal(floats, uint8.type(torch.float32) / 255)
    cache = DecoderCache(2)
    assert torch.equal(cache.get_frames_at(str(clips[name]), order, dtype=torch.float32), floats)
    with pytest.raises(ValueError, match=r"torch\.uint8 or torch\.float32"):
        decoder.get_frames_at(order[:1], dtype=torch.float16)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_decode_into_writes_frames_into_the_callers_tensors(
    clips: dict[str, Path], dtype: torch.dtype
) -> None:
    names = ["av1", "hevc", "av1_odd", "av1"]
    requests = [[0.5, 0.1, 0.5], [1.0], [0.25, 0.0], [1.5]]
    expected = [
        VideoDecoder(str(clips[n])).get_frames_at(ts, dtype=dtype)
        for n, ts in zip(names, requests, strict=True)
    ]
    batch = torch.zeros((2, *expected[0].shape), dtype=dtype)  # two slots of one larger tensor
    outputs = [batch[1], torch.empty_like(expected[1][0]), *(torch.empty_like(e) for e in expected[2:])]
    cache = DecoderCache(4)
    cache.decode_into([str(clips[n]) for n in names], requests, outputs, parallelism=3)
    assert torch.equal(batch[1], expected[0]) and not batch[0].any()
    assert torch.equal(outputs[1], expected[1][0])  # one timestamp may fill a [3, H, W] tensor
    assert torch.equal(outputs[2], expected[2]) and torch.equal(outputs[3], expected[3])
    assert cache.stats()["misses"] == 3  # both requests of the first file went through one decoder


def test_decode_into_refuses_outputs_that_do_not_fit(clips: dict[str, Path]) -> None:
    cache = DecoderCache(2)
    path = str(clips["av1"])
    with pytest.raises(ValueError, match=re.escape(path)) as error:
        cache.decode_into([path], [[0.0]], [torch.empty((1, 3, 64, 95), dtype=torch.uint8)])
    assert "but the video is 3x64x96" in str(error.value)
    with pytest.raises(ValueError, match="2 frames for 1 timestamps"):
        cache.decode_into([path], [[0.0]], [torch.empty((2, 3, 64, 96), dtype=torch.uint8)])
    with pytest.raises(ValueError, match="same dtype"):
        outputs = [torch.empty((3, 64, 96), dtype=torch.uint8), torch.empty((3, 64, 96), dtype=torch.float32)]
        cache.decode_into([path, path], [[0.0], [0.1]], outputs)
    with pytest.raises(ValueError, match="uint8 or float32"):
        cache.decode_into([path], [[0.0]], [torch.empty((3, 64, 96), dtype=torch.float64)])


def keyframe_flags(path: Path) -> list[bool]:
    """Whether each frame (in presentation order) is a keyframe, as PyAV's demuxer reports it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = sorted((p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.size)
    return [key for _, key in packets]


def test_a_random_access_decodes_from_the_targets_keyframe_and_no_more(clips: dict[str, Path]) -> None:
    keys = keyframe_flags(clips["av1"])  # no B-frames: decode order is presentation order
    assert keys[0] and sum(keys) > 3
    decoder = VideoDecoder(str(clips["av1"]))
    times = decoder.frame_times
    picks = np.random.default_rng(5).choice(len(times), size=12, replace=False)
    targets = sorted(picks.tolist(), reverse=True)
    expected = 0
    for target in targets:  # each one behind the last: every request seeks to its keyframe
        decoder.get_frames_at([times[target]])
        expected += target - max(i for i in range(target + 1) if keys[i]) + 1
    stats = decoder.stats()
    assert stats["frames_decoded"] == expected
    assert stats["seeks"] == stats["flushes"] == stats["frames_requested"] == len(targets)
    assert stats["keyframes_decoded"] == len(targets)


def test_a_request_in_the_next_gop_decodes_forward_without_seeking(clips: dict[str, Path]) -> None:
    keys = keyframe_flags(clips["av1"])
    second, third = [i for i, key in enumerate(keys) if key][1:3]
    decoder = VideoDecoder(str(clips["av1"]))
    times = decoder.frame_times
    decoder.get_frames_at([times[third - 1]])  # the last frame of the second GOP
    before = decoder.stats()
    decoder.get_frames_at([times[third]])  # the next GOP's keyframe: one frame forward
    after = decoder.stats()
    assert after["seeks"] == before["seeks"]
    assert after["frames_decoded"] - before["frames_decoded"] == 1
    assert after["forward_gop_skips"] == before["forward_gop_skips"] + 1
    decoder.get_frames_at([times[third], times[third]])  # the frame held: nothing decoded
    assert decoder.stats()["frames_decoded"] == after["frames_decoded"]
    assert decoder.stats()["frames_reused"] == after["frames_reused"] + 2
    assert second < third


def test_decoder_cache_counts_what_its_decoders_did_across_evictions(clips: dict[str, Path]) -> None:
    cache = DecoderCache(1)
    for name in ("av1", "h264", "av1"):
        cache.get_frames_at(str(clips[name]), [0.0, 0.05])
    stats = cache.stats()
    assert stats["evictions"] == 2
    assert stats["decoder"]["frames_requested"] == 6
    assert stats["decoder"]["frames_decoded"] >= 6 and stats["decoder"]["seeks"] == 3


def test_first_frame_sharing_its_dts_with_the_next_episodes_keyframe_decodes(tmp_path: Path) -> None:
    """Note [Shared first dts]: a 1-frame H.264 episode followed by a B-frame episode, concatenated as
    lerobot does, gives two keyframes with dts 0; seeking to the first lands on the second. Every frame
    still decodes, in any order, to PyAV's sequential decode."""
    from lerobot_stream.synth import write_dataset

    root = write_dataset(tmp_path / "ds", episode_lengths=[1, 3], num_episodes=2, num_cameras=1, codec="h264")
    video = next((root / "videos").rglob("*.mp4"))
    reference = pyav_frames(video)
    times = sorted(reference)
    assert len(times) == 4
    decoder = VideoDecoder(str(video))
    for order in ([0, 1, 2, 3], [3, 0, 2, 0, 1], [2, 1, 0]):
        picks = [times[i] for i in order]
        for got, t in zip(decoder.get_frames_at(picks).numpy(), picks, strict=True):
            diff = np.abs(got.astype(np.int16) - reference[t].astype(np.int16))
            assert diff.max() <= MAX_ABS_TOLERANCE, f"t={t}: max |Δ| {diff.max()}"
