"""GPU decode contracts. Without a GPU (CI): the module imports, cuda_info() says why CUDA is not
available, and asking for NVDEC raises a clear error naming the file. With a GPU: NVDEC frames and the
hybrid cpu->cuda path's frames equal the CPU decoder's within Note [Colour conversion parity]'s
tolerance, frames cross as DLPack without a copy, cuda_backend="auto" routes AV1 by the GPU's NVDEC
capability and says so, a stream NVDEC cannot decode raises CudaUnavailableError naming file, codec
and GPU, the decode stage's GPU batches match its CPU batches, and 10k batches leak neither device
memory nor host RSS. GPU tests skip with cuda_info()'s reason unless LRS_REQUIRE_GPU=1, which turns
those skips into failures (for GPU runs: scripts/gpu_check.sh). LRS_EXPECT_NO_NVDEC=1 (set by
gpu_check.sh when libnvcuvid.so.1 is absent) keeps NVDEC tests skipping so the hybrid ones still run.

Media come from tests/clips.py and conftest.make_dataset, so ``LRS_TEST_MEDIA`` can serve them
pre-made on a machine without PyAV; fixtures make them before a test decides to skip."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from clips import write_clip
from lerobot_stream import CudaUnavailableError, StreamingLeRobotDataset, VideoDecoder, _core

NUM_FRAMES = 24
# Note [Colour conversion parity] (cpp/cuda/colour_math.h): the kernels match the CPU path's
# swscale RGB24 conversion within 3 on uint8 (fixed-point rounding: on saturated colours about half
# the samples differ by 1); NVDEC and libavcodec decode H.264/HEVC to identical YUV, and the hybrid
# path stages the CPU decoder's own YUV, so GPU frames must match CPU frames within that.
MAX_ABS_TOLERANCE = 3
MEAN_ABS_TOLERANCE = 1.0
LEAK_BATCHES = int(os.environ.get("LRS_LEAK_BATCHES", "10000"))

INFO = _core.cuda_info()
REQUIRE_GPU = os.environ.get("LRS_REQUIRE_GPU") == "1"
EXPECT_NO_NVDEC = os.environ.get("LRS_EXPECT_NO_NVDEC") == "1"
GPU_USABLE = bool(INFO["driver_loaded"] and INFO["device_count"] >= 1 and INFO["devices"])


def _skip_or_fail(message: str, *, allowed: bool = False) -> None:
    if REQUIRE_GPU and not allowed:
        pytest.fail(f"LRS_REQUIRE_GPU=1 but {message}")
    pytest.skip(message)


def needs_gpu() -> None:
    """Skips (or fails, with LRS_REQUIRE_GPU=1) unless a CUDA device is usable (driver + device)."""
    if not GPU_USABLE:
        _skip_or_fail(f"no usable GPU: {INFO['reason']}")


def needs_nvdec() -> None:
    """needs_gpu() and NVDEC (libnvcuvid); LRS_EXPECT_NO_NVDEC=1 lets a GPU run without it skip."""
    needs_gpu()
    if not INFO["available"]:
        _skip_or_fail(f"no NVDEC: {INFO['reason']}", allowed=EXPECT_NO_NVDEC)


def max_and_mean_diff(gpu: torch.Tensor, cpu: torch.Tensor) -> tuple[float, float]:
    diff = (gpu.cpu().float() - cpu.float()).abs()
    return diff.max().item(), diff.mean().item()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Textured clips: every codec at 64x96, plus H.264 with 90 rows (coded 96, displayed 90)."""
    base = tmp_path_factory.mktemp("cuda-clips")
    out = {
        codec: write_clip(base / f"{codec}.mp4", codec, num_frames=NUM_FRAMES)
        for codec in ("h264", "hevc", "av1")
    }
    out["h264-90x158"] = write_clip(base / "h264-90.mp4", "h264", num_frames=NUM_FRAMES, height=90, width=158)
    out["av1-odd"] = write_clip(base / "av1-odd.mp4", "av1", num_frames=NUM_FRAMES, height=50, width=66)
    return out


# --- without a GPU (CI) ------------------------------------------------------------------------


def test_cuda_info_reports_availability_and_reason() -> None:
    info = _core.cuda_info()
    assert info["built_with_cuda"] == _core.built_with_cuda
    if info["available"]:
        assert info["reason"] == ""
        assert info["device_count"] >= 1 and info["devices"]
        for device in info["devices"]:
            assert set(device["nvdec"]) == {"h264", "hevc", "av1"}
    else:
        reason = info["reason"].lower()
        assert reason, "an unavailable CUDA must say why"
        causes = ("built without cuda", "libcuda", "libnvcuvid", "device")
        assert any(word in reason for word in causes), reason
        if "libcuda" in reason:
            assert not info["driver_loaded"]
        if "libnvcuvid" in reason:
            assert not info["nvcuvid_loaded"]


@pytest.mark.skipif(not _core.built_with_cuda, reason="built without CUDA: no NvdecVideoDecoder")
def test_nvdec_without_usable_gpu_raises_clear_error(clips: dict[str, Path]) -> None:
    if INFO["available"]:
        pytest.skip("a GPU is usable here; this checks the no-GPU error")
    with pytest.raises(_core.CudaUnavailableError) as raised:
        _core.NvdecVideoDecoder(str(clips["h264"]))
    message = str(raised.value)
    assert "unavailable" in message.lower()
    assert INFO["reason"].split(":")[0] in message  # the same cause cuda_info() reports


@pytest.mark.skipif(not _core.built_with_cuda, reason="built without CUDA: no NvdecVideoDecoder")
def test_nvdec_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        _core.NvdecVideoDecoder(str(missing))


@pytest.mark.skipif(not _core.built_with_cuda, reason="built without CUDA: no NvdecVideoDecoder")
@pytest.mark.parametrize("kind", ["directory", "empty"])
def test_nvdec_rejects_what_the_cpu_decoder_rejects(tmp_path: Path, kind: str) -> None:
    """Both backends open through the shared demuxer (cpp/av/demuxer.h): the same checks, no GPU needed."""
    path = tmp_path / "bad.mp4"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"")
    for backend in (_core.CpuVideoDecoder, _core.NvdecVideoDecoder):
        with pytest.raises(ValueError, match=kind) as raised:
            backend(str(path))
        assert str(path) in str(raised.value)


# --- with a GPU --------------------------------------------------------------------------------

# Random order, a repeat, a backwards jump and a sequential run: every access pattern.
PICKS = (5, 17, 17, 2, 3, 4, 23, 0, 11)


def check_against_cpu(clip: Path, **gpu_kwargs: Any) -> VideoDecoder:
    cpu = VideoDecoder(clip)
    gpu = VideoDecoder(clip, device="cuda", **gpu_kwargs)
    picks = [cpu.frame_times[i] for i in PICKS]
    expected = cpu.get_frames_at(picks)
    frames = gpu.get_frames_at(picks)
    assert frames.is_cuda and frames.dtype == torch.uint8
    assert frames.shape == expected.shape
    worst, mean = max_and_mean_diff(frames, expected)
    assert worst <= MAX_ABS_TOLERANCE, f"{clip.name} via {gpu.backend}: max |diff| {worst}"
    assert mean < MEAN_ABS_TOLERANCE, f"{clip.name} via {gpu.backend}: mean |diff| {mean}"
    assert gpu.stats()["frames_requested"] == len(picks)
    return gpu


@pytest.mark.needs_cuda
@pytest.mark.parametrize("name", ["h264", "hevc", "h264-90x158"])
def test_nvdec_frames_equal_cpu_frames(clips: dict[str, Path], name: str) -> None:
    needs_nvdec()
    assert check_against_cpu(clips[name], cuda_backend="nvdec").backend == "nvdec"


@pytest.mark.needs_cuda
@pytest.mark.parametrize("name", ["av1", "av1-odd", "h264", "hevc"])
def test_hybrid_frames_equal_cpu_frames(clips: dict[str, Path], name: str) -> None:
    needs_gpu()  # the hybrid path needs the driver, not libnvcuvid
    gpu = check_against_cpu(clips[name], cuda_backend="cpu->cuda")
    assert gpu.backend == "cpu->cuda" and gpu.backend_note == ""  # asked for by name: no note


@pytest.mark.needs_cuda
def test_auto_backend_routes_av1_by_nvdec_capability_and_says_so(
    clips: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    needs_nvdec()
    device = INFO["devices"][0]
    with caplog.at_level(logging.WARNING, logger="lerobot_stream"):
        gpu = check_against_cpu(clips["av1"])
        check_against_cpu(clips["av1-odd"])
    if device["nvdec"]["av1"]["supported"]:
        assert gpu.backend == "nvdec" and gpu.backend_note == ""
        return
    assert gpu.backend == "cpu->cuda"
    assert "av1" in gpu.backend_note and device["name"] in gpu.backend_note
    logged = [r for r in caplog.records if "cpu->cuda" in r.getMessage()]
    assert len(logged) == 1, "the routing rule is logged once per reason"


@pytest.mark.needs_cuda
def test_nvdec_backend_refuses_av1_where_nvdec_cannot_decode_it(clips: dict[str, Path]) -> None:
    needs_nvdec()
    device = INFO["devices"][0]
    if device["nvdec"]["av1"]["supported"]:
        assert check_against_cpu(clips["av1"], cuda_backend="nvdec").backend == "nvdec"
        return
    for make in (
        lambda: _core.NvdecVideoDecoder(str(clips["av1"])),
        lambda: VideoDecoder(clips["av1"], device="cuda", cuda_backend="nvdec"),
    ):
        with pytest.raises(CudaUnavailableError) as raised:
            make()
        message = str(raised.value)
        assert str(clips["av1"]) in message and "av1" in message and device["name"] in message
        assert "cpu->cuda" in message  # points to the real options


@pytest.mark.needs_cuda
def test_a_device_index_out_of_range_names_the_count(clips: dict[str, Path]) -> None:
    needs_gpu()
    with pytest.raises(CudaUnavailableError, match=f"this machine has {INFO['device_count']}"):
        VideoDecoder(clips["h264"], device=f"cuda:{INFO['device_count']}")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("backend", ["nvdec", "cpu->cuda"])
def test_cuda_frames_cross_without_a_copy_on_the_current_stream(clips: dict[str, Path], backend: str) -> None:
    needs_nvdec() if backend == "nvdec" else needs_gpu()
    handle = _core.open_decoder(str(clips["h264"]), device="cuda:0", cuda_backend=backend)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # Note [Stream handoff]: the frames are handed to this stream
        handle.set_stream(side.cuda_stream)
        frames, address = handle._get_frames_and_address([0.0, 0.05, 0.05], 1e-4)
        assert frames.data_ptr() == address and frames.device.type == "cuda"
        total = frames.sum(dtype=torch.int64)  # queued on `side`, after the decode
    side.synchronize()
    cpu = _core.CpuVideoDecoder(str(clips["h264"])).get_frames_at([0.0, 0.05, 0.05])
    assert abs(total.item() - cpu.sum(dtype=torch.int64).item()) <= MAX_ABS_TOLERANCE * cpu.numel()
    assert torch.equal(frames[1], frames[2])  # a repeat is a copy of the same decode


@pytest.mark.needs_cuda
@pytest.mark.parametrize("backend", ["nvdec", "cpu->cuda"])
def test_cuda_float_frames_are_the_gpus_uint8_frames_over_255(clips: dict[str, Path], backend: str) -> None:
    """Note [Float frames] on the GPU: the kernels write float32 = uint8 / 255 (IEEE division), so a
    float frame equals the same backend's uint8 frame / 255 bit for bit, as on the CPU."""
    needs_nvdec() if backend == "nvdec" else needs_gpu()
    gpu = VideoDecoder(clips["h264"], device="cuda", cuda_backend=backend)
    picks = [gpu.frame_times[i] for i in PICKS]
    as_bytes = gpu.get_frames_at(picks)
    as_float = gpu.get_frames_at(picks, dtype=torch.float32)
    assert as_float.is_cuda and as_float.dtype == torch.float32
    assert torch.equal(as_float, as_bytes.float() / 255)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("backend", ["nvdec", "cpu->cuda"])
def test_cuda_cache_decodes_into_caller_gpu_tensors(clips: dict[str, Path], backend: str) -> None:
    """DecoderCache.decode_into, the one way into caller memory, writes a CUDA cache's frames into GPU
    tensors (slots of a larger batch), equal to its get_frames_at; host tensors are refused, naming
    the file."""
    needs_nvdec() if backend == "nvdec" else needs_gpu()
    from lerobot_stream import DecoderCache

    cache = DecoderCache(4, device="cuda", cuda_backend=backend)
    clip = clips["h264"]
    times = [VideoDecoder(clip).frame_times[i] for i in PICKS]
    for dtype in (torch.uint8, torch.float32):
        batch = torch.zeros((2, len(times), 3, 64, 96), dtype=dtype, device="cuda")
        cache.decode_into([clip, clip], [times, times[::-1]], [batch[0], batch[1]])
        expected = cache.get_frames_at(clip, times, dtype=dtype)
        torch.cuda.current_stream().synchronize()
        assert torch.equal(batch[0], expected)
        assert torch.equal(batch[1], expected.flip(0))
    with pytest.raises(ValueError, match=str(clip)):
        cache.decode_into([clip], [times[:1]], [torch.zeros((3, 64, 96), dtype=torch.uint8)])


def stage_batches(root: Path, **kwargs: Any) -> list[dict[str, Any]]:
    ds = StreamingLeRobotDataset(
        "synth",
        root=root,
        episode_pool_size=2,
        delta_timestamps={"observation.images.cam0": [-1 / 30, 0.0]},
        video_decode_stage=True,
        **kwargs,
    )
    stage = ds.dataloader(batch_size=4, num_workers=2, stage_threads=4)
    batches = list(stage)
    batches.append({"_stats": stage.stats()})
    return batches


@pytest.mark.needs_cuda
@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_cuda_decode_stage_batches_match_the_cpu_stage(make_dataset, codec: str) -> None:
    root = make_dataset(codec=codec, height=48, width=64)
    needs_nvdec() if codec == "h264" else needs_gpu()
    cpu = stage_batches(root)
    gpu = stage_batches(root, video_decode_device="cuda")
    stats = gpu.pop()["_stats"]
    cpu.pop()
    assert len(gpu) == len(cpu)
    cameras = ("observation.images.cam0", "observation.images.cam1")
    for g, c in zip(gpu, cpu, strict=True):
        assert g.keys() == c.keys()
        for key in c:
            if key in cameras:
                assert g[key].is_cuda and g[key].dtype == c[key].dtype == torch.float32
                assert g[key].shape == c[key].shape
                worst, mean = max_and_mean_diff(g[key] * 255, c[key] * 255)
                assert worst <= MAX_ABS_TOLERANCE + 1e-3 and mean < MEAN_ABS_TOLERANCE
            elif isinstance(c[key], torch.Tensor):
                assert torch.equal(g[key], c[key]), key
            else:
                assert g[key] == c[key], key
    frames = sum(stats["frames_by_backend"].values())
    assert frames == stats["frames"] > 0
    expected_backend = (
        "nvdec" if codec == "h264" or INFO["devices"][0]["nvdec"]["av1"]["supported"] else "cpu->cuda"
    )
    assert set(stats["frames_by_backend"]) == {expected_backend}


@pytest.mark.needs_cuda
def test_pinned_cpu_stage_batches_are_pinned_and_equal(make_dataset) -> None:
    root = make_dataset(height=48, width=64)
    needs_gpu()

    def make() -> StreamingLeRobotDataset:  # a fresh dataset each: both runs are epoch 0
        return StreamingLeRobotDataset("synth", root=root, episode_pool_size=2, video_decode_stage=True)

    pinned = list(make().dataloader(batch_size=4, num_workers=0, pin_memory=True))
    plain = list(make().dataloader(batch_size=4, num_workers=0))
    assert len(pinned) == len(plain)
    for p, q in zip(pinned, plain, strict=True):
        assert p["observation.images.cam0"].is_pinned()
        assert torch.equal(p["observation.images.cam0"], q["observation.images.cam0"])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.needs_cuda
@pytest.mark.parametrize(("codec", "backend"), [("h264", "nvdec"), ("av1", "cpu->cuda")])
def test_ten_thousand_batches_leak_no_device_memory_or_host_rss(
    clips: dict[str, Path], codec: str, backend: str
) -> None:
    needs_nvdec() if backend == "nvdec" else needs_gpu()
    stage = _core.DecodeStage(
        "cuda:0", threads=4, max_batches_ahead=3, cache_capacity=4, cuda_backend=backend
    )
    stream = torch.cuda.current_stream().cuda_stream
    clip = str(clips[codec])
    times = np.array(_core.CpuVideoDecoder(clip).frame_times)
    rng = np.random.default_rng(0)

    def run(batches: int) -> None:
        pending = []
        for _ in range(batches):
            picks = np.sort(rng.choice(len(times), size=(2, 2)), axis=1)
            pending.append(
                stage.submit([[clip, clip]], [np.ascontiguousarray(times[picks])], [(64, 96)], 1e-4, stream)
            )
            if len(pending) > 2:
                (frames,) = stage.take(pending.pop(0))
                assert frames.shape == (4, 3, 64, 96)
        for ticket in pending:
            stage.take(ticket)
        torch.cuda.synchronize()

    run(500)  # warm-up: pools, decoder, staging reach their steady size
    free_before, rss_before = torch.cuda.mem_get_info()[0], rss_bytes()
    run(LEAK_BATCHES)
    free_after, rss_after = torch.cuda.mem_get_info()[0], rss_bytes()
    assert stage.stats()["frames_by_backend"] == {backend: 4 * (500 + LEAK_BATCHES)}
    assert free_before - free_after < 16 << 20, (
        f"device memory fell by {(free_before - free_after) >> 20} MiB"
    )
    assert rss_after - rss_before < 32 << 20, f"RSS grew by {(rss_after - rss_before) >> 20} MiB"
