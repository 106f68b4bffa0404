"""The device choice, owned by one layer (``decode/decoder_factory.h``): ``VideoDecoder``,
``DecoderCache`` and the dataset's ``video_decode_device`` accept ``"cpu"``, ``"cuda"`` and
``"cuda:N"``, refuse anything else naming the allowed forms, and without a usable GPU raise
``CudaUnavailableError`` carrying ``cuda_info()``'s reason. The generic decoder returns frames
without a copy (the tensor points at the decoder's buffer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clips import write_clip
from lerobot_stream import (
    CudaUnavailableError,
    DecoderCache,
    StreamingLeRobotDataset,
    VideoDecoder,
    _core,
    cuda_info,
)

INFO = cuda_info()
no_gpu = pytest.mark.skipif(INFO["available"], reason="a GPU is usable here: these check the no-GPU errors")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "h264.mp4", "h264", num_frames=12)


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1", "mps"])
def test_malformed_devices_are_refused_naming_the_allowed_forms(clip: Path, device: str) -> None:
    with pytest.raises(ValueError, match=r"'cpu', 'cuda' or 'cuda:N'"):
        VideoDecoder(clip, device=device)
    with pytest.raises(ValueError, match=r"'cpu', 'cuda' or 'cuda:N'"):
        DecoderCache(4, device=device)


def test_unknown_cuda_backend_is_refused_listing_the_choices(clip: Path, tiny_dataset: Path) -> None:
    with pytest.raises(ValueError, match=r"\['auto', 'nvdec', 'cpu->cuda'\]"):
        VideoDecoder(clip, cuda_backend="hybrid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cuda_backend"):
        StreamingLeRobotDataset("synth", root=tiny_dataset, cuda_backend="gpu")


@no_gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3", torch.device("cuda", 1)])
def test_cuda_without_a_usable_gpu_raises_with_cuda_infos_reason(clip: Path, device: object) -> None:
    for make in (
        lambda: VideoDecoder(clip, device=device),  # type: ignore[arg-type]
        lambda: VideoDecoder(clip, device=device, cuda_backend="cpu->cuda"),  # type: ignore[arg-type]
        lambda: DecoderCache(4, device=device),  # type: ignore[arg-type]
    ):
        with pytest.raises(CudaUnavailableError) as raised:
            make()
        assert INFO["reason"] in str(raised.value)


@no_gpu
def test_dataset_on_cuda_without_a_usable_gpu_raises_at_construction(tiny_dataset: Path) -> None:
    with pytest.raises(CudaUnavailableError) as raised:
        StreamingLeRobotDataset("synth", root=tiny_dataset, video_decode_device="cuda")
    assert INFO["reason"] in str(raised.value)
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        StreamingLeRobotDataset("synth", root=tiny_dataset, video_decode_device="gpu")


def test_cuda_unavailable_error_is_public_and_a_runtime_error() -> None:
    assert CudaUnavailableError is _core.CudaUnavailableError
    assert issubclass(CudaUnavailableError, RuntimeError)


def test_cpu_device_decodes_as_before_and_reports_its_backend(clip: Path) -> None:
    decoder = VideoDecoder(clip, device="cpu")
    assert decoder.device == "cpu" and decoder.backend == "cpu" and decoder.backend_note == ""
    reference = _core.CpuVideoDecoder(str(clip))
    times = [reference.frame_times[i] for i in (7, 2, 2, 11, 0)]
    assert torch.equal(decoder.get_frames_at(times), reference.get_frames_at(times))
    cache = DecoderCache(2, device="cpu")
    assert torch.equal(cache.get_frames_at(clip, times), reference.get_frames_at(times))
    assert cache.stats()["opened_by_backend"] == {"cpu": 1}


def test_frames_cross_without_a_copy(clip: Path) -> None:
    handle = _core.open_decoder(str(clip), device="cpu")
    frames, address = handle._get_frames_and_address([0.0, 0.05], 1e-4)
    assert frames.data_ptr() == address  # the tensor is the decoder's buffer (DLPack, zero copy)
    assert np.asarray(frames).ctypes.data == address
