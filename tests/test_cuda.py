"""GPU decode contracts. Without a GPU (CI): the module imports, cuda_info() says why CUDA is not
available, and asking for NVDEC raises a clear error naming the file. With a GPU: NVDEC frames equal
the CPU decoder's frames, and a stream NVDEC cannot decode on this GPU (AV1 on Hopper/A100) raises
CudaUnavailableError naming file, codec and GPU. GPU tests skip with cuda_info()'s reason unless
LRS_REQUIRE_GPU=1, which turns those skips into failures (for GPU runs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from clips import write_clip
from lerobot_stream import _core

NUM_FRAMES = 24
# Note [Colour conversion parity] (cpp/cuda/colour_math.h): the kernel matches the CPU path's
# swscale RGB24 conversion within 3 on uint8 (fixed-point rounding); NVDEC and libavcodec decode
# H.264/HEVC to identical YUV, so GPU frames must match CPU frames within that.
MAX_ABS_TOLERANCE = 3
MEAN_ABS_TOLERANCE = 0.5

INFO = _core.cuda_info()
REQUIRE_GPU = os.environ.get("LRS_REQUIRE_GPU") == "1"


def needs_cuda() -> None:
    """Skips (or fails, with LRS_REQUIRE_GPU=1) when no GPU with NVDEC is usable, giving the reason."""
    if INFO["available"]:
        return
    message = f"no usable GPU: {INFO['reason']}"
    if REQUIRE_GPU:
        pytest.fail(f"LRS_REQUIRE_GPU=1 but {message}")
    pytest.skip(message)


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
def test_nvdec_without_usable_gpu_raises_clear_error(tmp_path: Path) -> None:
    if INFO["available"]:
        pytest.skip("a GPU is usable here; this checks the no-GPU error")
    clip = write_clip(tmp_path / "clip.mp4", "h264", num_frames=NUM_FRAMES)
    with pytest.raises(_core.CudaUnavailableError) as raised:
        _core.NvdecVideoDecoder(str(clip))
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


@pytest.mark.needs_cuda
@pytest.mark.parametrize(
    ("codec", "height", "width"),
    [("h264", 64, 96), ("hevc", 64, 96), ("h264", 90, 158)],  # 90 rows: coded 96, displayed 90
)
def test_nvdec_frames_equal_cpu_frames(tmp_path: Path, codec: str, height: int, width: int) -> None:
    needs_cuda()
    clip = write_clip(tmp_path / f"{codec}.mp4", codec, num_frames=NUM_FRAMES, height=height, width=width)
    cpu = _core.CpuVideoDecoder(str(clip))
    gpu = _core.NvdecVideoDecoder(str(clip))
    assert gpu.backend == "nvdec"
    times = cpu.frame_times
    # Random order, a repeat, a backwards jump and a sequential run: every access pattern.
    picks = [times[i] for i in (5, 17, 17, 2, 3, 4, 23, 0, 11)]
    expected = torch.as_tensor(np.asarray(cpu.get_frames_at(picks)))
    frames = gpu.get_frames_at(picks)
    assert frames.is_cuda and frames.dtype == torch.uint8
    assert tuple(frames.shape) == (len(picks), 3, height, width)
    diff = (frames.cpu().int() - expected.int()).abs()
    assert diff.max().item() <= MAX_ABS_TOLERANCE
    assert diff.float().mean().item() < MEAN_ABS_TOLERANCE


@pytest.mark.needs_cuda
def test_av1_where_nvdec_cannot_decode_it_raises_naming_file_codec_and_gpu(tmp_path: Path) -> None:
    needs_cuda()
    clip = write_clip(tmp_path / "av1.mp4", "av1", num_frames=NUM_FRAMES)
    device = INFO["devices"][0]
    if device["nvdec"]["av1"]["supported"]:
        gpu = _core.NvdecVideoDecoder(str(clip))
        cpu = _core.CpuVideoDecoder(str(clip))
        picks = [cpu.frame_times[i] for i in (3, 1, 20)]
        expected = torch.as_tensor(np.asarray(cpu.get_frames_at(picks))).int()
        assert (gpu.get_frames_at(picks).cpu().int() - expected).abs().max().item() <= MAX_ABS_TOLERANCE
        return
    with pytest.raises(_core.CudaUnavailableError) as raised:
        _core.NvdecVideoDecoder(str(clip))
    message = str(raised.value)
    assert str(clip) in message and "av1" in message and device["name"] in message
