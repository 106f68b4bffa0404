"""``DecodeStage``: camera frames decoded in the training process, by C++ threads, ahead of the consumer.

Note [Decode stage requests]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
DataLoader workers are forked processes and cannot own CUDA, so GPU decode cannot happen where
samples are built. With ``StreamingLeRobotDataset(video_decode_device="cuda")`` (or
``video_decode_stage=True`` for the CPU) each worker emits the sample's tabular part plus, under
``VIDEO_REQUESTS_KEY``, each camera's ``VideoRequest`` (``lerobot_stream.sample``) as
``{key: {"episode": int64, "timestamps": float64 [T]}}`` (the frames' times on the video file's
clock, Note [Video frame timestamps]): what a worker would decode, not decoded. The DataLoader
collates them like any other field (``episode`` into ``[B]``, ``timestamps`` into ``[B, T]``;
``StreamingLeRobotDataset(batch_size=B)`` collates them itself). ``DecodeStage`` takes each collated
batch, finds each request's video file as the workers do (episode and camera key -> the file of
``meta/episodes``), hands the requests to ``_core.DecodeStage`` (Note [Decode stage] in
``cpp/decode/decode_stage.h``: a pool of C++ threads, the GIL released, a bounded number of batches
decoded ahead, every backend writing the batch through ``VideoDecoder::decode_into``) and yields the
batch with every camera key filled in: ``[B, 3, H, W]`` (one frame per sample) or
``[B, T, 3, H, W]`` (a window), uint8 or float32 in [0, 1] as ``return_uint8`` says (the decoders
write float32 themselves, bitwise uint8 / 255: Note [Float frames]), on the decode device.
``image_transforms`` then run per sample, in this process, on that device.

What changes nothing: batches come out in the DataLoader's order with the same samples, so the
resume state (batches the trainer consumed) is the same as without the stage; with the CPU device,
every tensor is bitwise what a worker-decoding DataLoader yields. What the stage adds: the decode
work moves from the workers to ``threads`` C++ threads of this process, and (``pin_memory``) CPU
batches land in pinned memory, ready for ``.to("cuda", non_blocking=True)``.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lerobot_stream import _core
from lerobot_stream.decoding import (
    FRAME_DTYPES,
    check_cuda_backend,
    check_device,
    current_stream,
    log_backend_notes,
    resolve_device,
)
from lerobot_stream.sample import VIDEO_REQUESTS_KEY

if TYPE_CHECKING:
    from lerobot_stream.dataset import StreamingLeRobotDataset
    from lerobot_stream.metadata import DatasetMetadata

__all__ = [
    "VIDEO_REQUESTS_KEY",
    "DecodeStage",
    "check_stage_dataset",
    "default_stage_threads",
    "make_loader",
    "wants_decode_stage",
]


def wants_decode_stage(device: str | torch.device, decode_stage: bool | None, cuda_backend: str) -> bool:
    """Whether a dataset with these options decodes in the training process's decode stage.

    ``decode_stage=None`` means: for a CUDA ``device`` only. Raises ValueError for a malformed device or
    backend, or for CUDA without the stage (forked workers cannot own CUDA), and CudaUnavailableError
    (with ``cuda_info()``'s reason) for a CUDA device that is not usable.
    """
    check_device(device)
    check_cuda_backend(cuda_backend)
    if decode_stage is False and str(device) != "cpu":
        raise ValueError(
            f"video_decode_device={str(device)!r} needs the decode stage (video_decode_stage=True or None): "
            "DataLoader workers are forked processes and cannot own CUDA"
        )
    return bool(decode_stage) or (decode_stage is None and str(device) != "cpu")


def check_stage_dataset(meta: DatasetMetadata, device: str) -> None:
    """Raises NotImplementedError, naming the dataset, for what the decode stage cannot decode yet.

    Depth-map videos (decoded to depth units by ``lerobot_stream.depth`` in the workers), and remote
    datasets: a worker holds a remote episode's files in the node's download cache only while the
    episode is pooled (Note [Prefetch on admit]), so the stage would need its own leases on them.
    """
    if meta.depth_keys:
        raise NotImplementedError(
            f"{meta.root}: the decode stage does not decode depth-map videos yet: {meta.depth_keys}"
        )
    if not meta.data_location.is_local and meta.video_keys:
        raise NotImplementedError(
            f"{meta.root}: the decode stage (video_decode_device={device!r}) reads local datasets only for "
            "now; decode remote ones in the workers (video_decode_device='cpu')"
        )


def default_stage_threads() -> int:
    """Decode threads of a stage: the cores this process may use, at most 16 (the CPU and hybrid
    backends scale with cores; NVDEC sessions, one per thread and file, feed the GPU's engines)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 16))


class DecodeStage:
    """Wraps a DataLoader over a dataset that emits frame requests; yields batches with frames decoded.

    Usually made by :meth:`StreamingLeRobotDataset.dataloader` (:func:`make_loader`). Iterating it
    iterates the loader (one epoch per pass, like the loader itself) and yields the loader's batches,
    in order, with the camera keys filled in on ``dataset``'s ``video_decode_device``
    (Note [Decode stage requests]).

    Args:
        loader: an iterable of collated batches from ``dataset`` (a ``torch.utils.data.DataLoader``).
        dataset: the :class:`StreamingLeRobotDataset` the batches come from; it must emit frame
            requests (``video_decode_device="cuda"`` or ``video_decode_stage=True``).
        threads: C++ decode threads (default: this process's cores, at most 16).
        batches_ahead: batches decoded ahead of the one being consumed (bounded memory: at most
            ``batches_ahead + 1`` batches' frames exist at once, besides those the consumer holds).
        pin_memory: CPU device only: batches in pinned host memory (needs the NVIDIA driver).
        decoder_threads: libav threads per open decoder (CPU and ``"cpu->cuda"`` backends).
        cache_capacity: open decoders (default: the dataset's per-consumer cache size times the
            loader's workers, at most 128).

    Raises:
        ValueError: the dataset does not emit frame requests, or a bad argument.
        CudaUnavailableError: the dataset's CUDA device is not usable (the reason says why).
    """

    def __init__(
        self,
        loader: Iterable[dict[str, Any]],
        dataset: StreamingLeRobotDataset,
        *,
        threads: int | None = None,
        batches_ahead: int = 2,
        pin_memory: bool = False,
        decoder_threads: int | None = None,
        cache_capacity: int | None = None,
    ) -> None:
        if not dataset.emits_frame_requests:
            raise ValueError(
                f"{dataset.root}: DecodeStage needs a dataset that emits frame requests: make it with "
                "video_decode_device='cuda' or video_decode_stage=True (this one decodes in its workers)"
            )
        if batches_ahead < 0:
            raise ValueError(f"batches_ahead must be >= 0, got {batches_ahead}")
        self.loader = loader
        self.dataset = dataset
        self.device = resolve_device(dataset.video_decode_device)
        if pin_memory and self.device != "cpu":
            raise ValueError(
                f"pin_memory applies to the CPU decode stage; {self.device} batches are on the GPU"
            )
        self._cuda_backend = check_cuda_backend(dataset.cuda_backend)
        self._threads = int(threads) if threads is not None else default_stage_threads()
        self._batches_ahead = int(batches_ahead)
        self._pin_memory = bool(pin_memory)
        self._decoder_threads = int(
            decoder_threads if decoder_threads is not None else dataset.decode_threads
        )
        workers = max(int(getattr(loader, "num_workers", 1) or 1), 1)
        self._cache_capacity = int(cache_capacity or min(dataset.decoder_cache_size * workers, 128))
        cache_bytes = dataset.decoder_cache_max_bytes
        self._cache_max_bytes = 0 if cache_bytes is None else int(cache_bytes) * workers
        self._stage: Any = None  # made on first iteration, kept across epochs (threads, open decoders)
        self._cameras = list(dataset.meta.video_keys)
        self._sizes = [_frame_size(dataset.meta.features[key], key) for key in self._cameras]
        self._dtype = FRAME_DTYPES[torch.uint8 if dataset.return_uint8 else torch.float32]
        self._paths: dict[tuple[int, str], str] = {}

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stage = self._core_stage()
        stream = current_stream(self.device)
        pending: deque[tuple[int, int, dict[str, Any]]] = deque()
        try:
            for batch in self.loader:
                pending.append((*self._submit(stage, batch, stream), batch))
                if len(pending) > self._batches_ahead:
                    yield self._finish(stage, *pending.popleft())
            while pending:
                yield self._finish(stage, *pending.popleft())
        finally:
            for ticket, _, _ in pending:  # abandoned mid-epoch: free what was decoded ahead
                with contextlib.suppress(Exception):  # the consumer stopped: these batches are dropped
                    stage.take(ticket)

    def stats(self) -> dict[str, Any]:
        """Counters: batches, frames, frames_by_backend ("cpu", "nvdec", "cpu->cuda"), decode_seconds
        (summed over threads), take_wait_seconds (the consumer waiting for frames), submit_wait_seconds,
        and the decoder cache's (incl. opened_by_backend and backend_notes)."""
        if self._stage is None:
            return {}
        return {"device": self.device, "threads": self._threads, **self._stage.stats()}

    def _core_stage(self) -> Any:
        if self._stage is None:
            self._stage = _core.DecodeStage(
                self.device,
                threads=self._threads,
                max_batches_ahead=self._batches_ahead + 1,
                cache_capacity=self._cache_capacity,
                cache_max_bytes=self._cache_max_bytes,
                decoder_threads=self._decoder_threads,
                cuda_backend=self._cuda_backend,
                pin_memory=self._pin_memory,
            )
        return self._stage

    def _submit(self, stage: Any, batch: dict[str, Any], stream: int) -> tuple[int, int]:
        """Queues the batch's frame requests (removing them from ``batch``): (ticket, batch size)."""
        requests = batch.pop(VIDEO_REQUESTS_KEY, None)
        if requests is None:
            raise ValueError(
                f"a batch has no {VIDEO_REQUESTS_KEY!r}: DecodeStage needs batches collated from "
                f"{self.dataset.root} with frame requests (and a collate_fn that keeps that key)"
            )
        sources = [
            [self._source(int(episode), key) for episode in requests[key]["episode"].tolist()]
            for key in self._cameras
        ]
        timestamps = [
            np.ascontiguousarray(requests[key]["timestamps"].numpy(), dtype=np.float64)
            for key in self._cameras
        ]
        size = int(timestamps[0].shape[0]) if timestamps else 0
        ticket = stage.submit(
            sources, timestamps, self._sizes, self.dataset.tolerance_s, stream, dtype=self._dtype
        )
        return ticket, size

    def _source(self, episode: int, key: str) -> str:
        """The video file of ``episode``'s camera ``key``, as the workers find it."""
        path = self._paths.get((episode, key))
        if path is None:
            meta = self.dataset.meta
            path = str(meta.data_location.join(meta.get_video_file_path(episode, key)))
            self._paths[(episode, key)] = path
        return path

    def _finish(self, stage: Any, ticket: int, size: int, batch: dict[str, Any]) -> dict[str, Any]:
        frames = stage.take(ticket)
        log_backend_notes(stage.stats()["decoder_cache"]["backend_notes"])
        cameras: dict[str, torch.Tensor] = {}
        for key, flat in zip(self._cameras, frames, strict=True):
            per_sample = flat.shape[0] // max(size, 1)
            images = flat.view(size, per_sample, *flat.shape[1:])
            if per_sample == 1:
                images = images.squeeze(1)  # the workers' frames.squeeze(0), batched
            cameras[key] = _transform_each(self.dataset.image_transforms, images, key, self.dataset)
        return {**cameras, **batch}  # camera keys first, as a worker's sample has them


def make_loader(
    dataset: StreamingLeRobotDataset,
    batch_size: int | None = None,
    *,
    num_workers: int | None = None,
    stage_threads: int | None = None,
    batches_ahead: int = 2,
    pin_memory: bool = False,
    **loader_kwargs: Any,
) -> Iterable[dict[str, Any]]:
    """What :meth:`StreamingLeRobotDataset.dataloader` returns.

    Args:
        batch_size, num_workers, loader_kwargs: the DataLoader's (``num_workers`` defaults to the
            dataset's ``num_workers`` hint). ``batch_size`` defaults to the dataset's own when it builds
            batches (``StreamingLeRobotDataset(batch_size=B)``: the DataLoader then gets
            ``batch_size=None``; another value raises ValueError), else to 1.
        stage_threads, batches_ahead: the decode stage's C++ threads and how many batches it decodes
            ahead of the consumer (see :class:`DecodeStage`).
        pin_memory: pinned batches: the DataLoader's own pinning when workers decode; the CPU decode
            stage's pinned frame buffers otherwise (GPU batches ignore it).
    """
    workers = dataset.num_workers_hint if num_workers is None else int(num_workers)
    if dataset.batch_size is not None:  # the dataset yields whole batches: the DataLoader must not batch
        if batch_size not in (None, dataset.batch_size):
            raise ValueError(
                f"{dataset.root}: the dataset yields batches of {dataset.batch_size}; dataloader(batch_size="
                f"{batch_size}) would batch them again (leave batch_size out)"
            )
        batch_size = None
    elif batch_size is None:
        batch_size = 1
    if not dataset.emits_frame_requests:
        return DataLoader(
            dataset, batch_size=batch_size, num_workers=workers, pin_memory=pin_memory, **loader_kwargs
        )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, **loader_kwargs)
    return DecodeStage(
        loader,
        dataset,
        threads=stage_threads,
        batches_ahead=batches_ahead,
        pin_memory=pin_memory and dataset.video_decode_device == "cpu",
    )


def _transform_each(
    transforms: Callable | None, images: torch.Tensor, key: str, dataset: StreamingLeRobotDataset
) -> torch.Tensor:
    if transforms is None or key in dataset.meta.depth_keys:
        return images
    return torch.stack([transforms(image) for image in images.unbind(0)])


def _frame_size(feature: dict[str, Any], key: str) -> tuple[int, int]:
    """(height, width) of a video feature, from its ``names`` (lerobot: height, width, channels)."""
    shape = list(feature["shape"])
    names = list(feature.get("names") or ["height", "width", "channels"])
    try:
        return int(shape[names.index("height")]), int(shape[names.index("width")])
    except (ValueError, IndexError) as e:
        raise ValueError(
            f"video feature {key!r}: cannot read height and width from shape {shape}, names {names}"
        ) from e
