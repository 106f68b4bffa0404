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
batch, finds each request's video as the workers do (``lerobot_stream.stage_videos``: the file of
``meta/episodes`` for a local dataset; for a remote one the episode's bytes in the video cache,
leased until the batch is decoded, Note [Stage leases]), hands the requests to
``_core.DecodeStage`` (Note [Decode stage] in ``cpp/decode/decode_stage.h``: a pool of C++ threads,
the GIL released, a bounded number of batches decoded ahead, every backend writing the batch
through ``VideoDecoder::decode_into``) and yields the batch with every camera key filled in:
``[B, 3, H, W]`` (one frame per sample) or ``[B, T, 3, H, W]`` (a window), uint8 or float32 in
[0, 1] as ``return_uint8`` says (the decoders write float32 themselves, bitwise uint8 / 255: Note
[Float frames]), on the decode device.
``image_transforms`` then run per sample, in this process, on that device.

What changes nothing: batches come out in the DataLoader's order with the same samples, so the
resume state (batches the trainer consumed) is the same as without the stage; with the CPU device,
every tensor is bitwise what a worker-decoding DataLoader yields. What the stage adds: the decode
work moves from the workers to ``threads`` C++ threads of this process, and (``pin_memory``) CPU
batches land in pinned memory, ready for ``.to("cuda", non_blocking=True)``.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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
    usable_cores,
)
from lerobot_stream.sample import VIDEO_REQUESTS_KEY
from lerobot_stream.stage_videos import BatchLeases, StageVideos

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
    """Raises NotImplementedError, naming the dataset, for what the decode stage cannot decode yet:
    depth-map videos (decoded to depth units by ``lerobot_stream.depth`` in the workers)."""
    if meta.depth_keys:
        raise NotImplementedError(
            f"{meta.root}: the decode stage (video_decode_device={device!r}) does not decode depth-map "
            f"videos yet: {meta.depth_keys}"
        )


@dataclass
class _Submitted:
    """A batch handed to the C++ stage, until it is yielded."""

    ticket: int
    size: int
    batch: dict[str, Any]
    leases: BatchLeases
    taken: bool = False
    frames: list[torch.Tensor] | None = None
    error: BaseException | None = None


def default_stage_threads() -> int:
    """Decode threads of a stage: the cores this process may use, at most 16 (the CPU and hybrid
    backends scale with cores; NVDEC sessions, one per thread and file, feed the GPU's engines)."""
    return max(1, min(usable_cores(), 16))


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
        self._keep_episodes = 2 * dataset.episode_pool_size * workers  # Note [Stage leases]
        self._videos: StageVideos | None = None  # made on first iteration, released after each pass

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stage = self._core_stage()
        stream = current_stream(self.device)
        if self._videos is None:
            self._videos = StageVideos(self.dataset, self._keep_episodes)
        pending: deque[_Submitted] = deque()
        drain = functools.partial(self._drain, stage, pending)
        try:
            for batch in self.loader:
                pending.append(self._submit(stage, batch, stream, drain))
                if len(pending) > self._batches_ahead:
                    yield self._finish(stage, pending.popleft())
            while pending:
                yield self._finish(stage, pending.popleft())
        finally:
            for submitted in pending:  # abandoned mid-epoch: free what was decoded ahead
                self._take(stage, submitted)  # the consumer stopped: these batches are dropped
            self._videos.close()  # Note [Stage leases]: the pass is over

    def stats(self) -> dict[str, Any]:
        """Counters: batches, frames, frames_by_backend ("cpu", "nvdec", "cpu->cuda"), decode_seconds
        (summed over threads), take_wait_seconds (the consumer waiting for frames), submit_wait_seconds,
        and the decoder cache's (incl. opened_by_backend and backend_notes)."""
        if self._stage is None:
            return {}
        prefetch = self._videos.stats() if self._videos is not None else {}
        return {
            "device": self.device,
            "threads": self._threads,
            **self._stage.stats(),
            **({"prefetch": prefetch} if prefetch else {}),
        }

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

    def _submit(
        self, stage: Any, batch: dict[str, Any], stream: int, drain: Callable[[], bool]
    ) -> _Submitted:
        """Queues the batch's frame requests (removing them from ``batch``), their videos leased."""
        requests = batch.pop(VIDEO_REQUESTS_KEY, None)
        if requests is None:
            raise ValueError(
                f"a batch has no {VIDEO_REQUESTS_KEY!r}: DecodeStage needs batches collated from "
                f"{self.dataset.root} with frame requests (and a collate_fn that keeps that key)"
            )
        assert self._videos is not None
        episodes = {key: requests[key]["episode"].tolist() for key in self._cameras}
        sources, leases = self._videos.hold(episodes, drain)
        timestamps = [
            np.ascontiguousarray(requests[key]["timestamps"].numpy(), dtype=np.float64)
            for key in self._cameras
        ]
        size = int(timestamps[0].shape[0]) if timestamps else 0
        try:
            ticket = stage.submit(
                sources, timestamps, self._sizes, self.dataset.tolerance_s, stream, dtype=self._dtype
            )
        except BaseException:
            leases.release()
            raise
        return _Submitted(ticket, size, batch, leases)

    @staticmethod
    def _take(stage: Any, submitted: _Submitted) -> None:
        """Takes the batch's frames (or its error) from the C++ stage, then ends its leases."""
        if submitted.taken:
            return
        submitted.taken = True
        try:
            submitted.frames = stage.take(submitted.ticket)
        except Exception as error:  # raised when the batch is yielded
            submitted.error = error
        finally:
            submitted.leases.release()

    def _drain(self, stage: Any, pending: deque[_Submitted]) -> bool:
        """Takes the oldest batch not taken yet (Note [Stage leases]); False when there is none."""
        for submitted in pending:
            if not submitted.taken:
                self._take(stage, submitted)
                return True
        return False

    def _finish(self, stage: Any, submitted: _Submitted) -> dict[str, Any]:
        self._take(stage, submitted)
        if submitted.error is not None:
            raise submitted.error
        frames, size, batch = submitted.frames, submitted.size, submitted.batch
        assert frames is not None
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
