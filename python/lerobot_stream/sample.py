"""Builds one sample, equal to lerobot's ``LeRobotDataset[i]``, from an episode's rows in RAM.

Given a whole episode's tabular rows and a frame of it, the builder assembles the row's columns,
the ``delta_timestamps`` windows (exact slices of the episode, clamped at its edges, with
``<key>_is_pad``), decodes the camera frames (decode-on-exit, through one decoder cache; image
features: ``lerobot_stream.images``; depth maps: ``lerobot_stream.depth``), applies
``image_transforms`` and adds the ``task`` string. RGB camera frames are decoded straight into their
final tensors, in the sample's dtype (Note [Decode into the output]).

Note [Video frame timestamps]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A v3 video file holds many episodes back to back. A frame's time in its file is the episode's own
``videos/<key>/from_timestamp`` plus the row's ``timestamp`` (which restarts at 0 every episode),
exactly as lerobot's map-style reader computes it. lerobot 0.6's streaming reader used
``index / fps`` instead, a dataset-wide time that is wrong from the second video file on.
Window frames use the ``timestamp`` of the clamped rows, so padded positions repeat the edge frame.

Note [Decode into the output]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
lerobot makes float frames as ``uint8_frames.type(torch.float32) / 255`` and the DataLoader then
stacks them: a uint8 frame, a float copy of it, the stacked copy. Here the C++ decoder writes the
float32 values (bitwise equal to that division) while it splits swscale's packed RGB, into a tensor
allocated once for the sample, or for the whole batch (``BatchBuilder`` in
``lerobot_stream.batching``). In a DataLoader worker that memory is a slot of a reused shared block
laid out as the batch, so the collate and the hand-over to the main process copy nothing (Note
[Shared frame blocks] in ``lerobot_stream.shared_frames``). One call decodes every camera of a sample
(or a batch): the cameras' files decode on up to ``parallelism`` threads, chosen from the idle cores
(see ``lerobot_stream.decoding.decode_parallelism``).

Note [Decode per DataLoader batch]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Under the plain ``DataLoader(ds, batch_size=B)`` a worker knows B after its first batch (Note
[Shared frame blocks]); from then on the consumer builds each batch's B samples together
(``build_many``): rows and slots sample by sample, then one decode of all their frames. The decoder
cache then sees a file's requests of the whole batch in one call, in time order, as the dataset's own
batch mode does (``lerobot_stream.batching``): requests in one GOP share its decoded frames, and the
cameras' files decode in parallel. The samples, their order and their values are those of ``build``.

Without a decoder (``video_decode_device="cuda"``, or the CPU decode stage) the builder decodes
nothing: each sample carries its cameras' :class:`VideoRequest` fields under
:data:`VIDEO_REQUESTS_KEY` instead of frames, and the training process's decode stage decodes them
into the batch (Note [Decode stage requests] in ``lerobot_stream.decode_stage``).

One builder per consumer; not thread-safe.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lerobot_stream import _core
from lerobot_stream.decoding import DecoderCache
from lerobot_stream.depth import DepthFeatures
from lerobot_stream.images import ImageFeatures
from lerobot_stream.metadata import DatasetMetadata
from lerobot_stream.remote.video_files import EpisodeVideoFiles
from lerobot_stream.shared_frames import FrameSlots
from lerobot_stream.tabular import EpisodeRows
from lerobot_stream.validation import VideoChecks

VIDEO_REQUESTS_KEY = "video_frame_requests"
"""The sample key under which a builder without a decoder emits its cameras' requests (see
:meth:`VideoRequest.fields`), for the decode stage (Note [Decode stage requests])."""


@dataclass
class VideoRequest:
    """The frames one camera of one sample needs: ``timestamps`` (s) in ``episode``'s video of ``key``.

    The sample holds them as ``[T, 3, H, W]``, squeezed to ``[3, H, W]`` when T is 1 (as lerobot does).
    """

    key: str
    episode: int
    timestamps: list[float]

    def fields(self) -> dict[str, torch.Tensor]:
        """The request as tensors the DataLoader collates: ``episode`` (int64 scalar; ``[B]`` once
        collated) and ``timestamps`` (float64 ``[T]``; ``[B, T]``). ``key`` is the dict key they sit
        under in ``sample[VIDEO_REQUESTS_KEY]``."""
        return {
            "episode": torch.tensor(self.episode, dtype=torch.int64),
            "timestamps": torch.tensor(self.timestamps, dtype=torch.float64),
        }


class SampleBuilder:
    """Turns (episode rows, frame) into a lerobot sample dict; see Note [Video frame timestamps]."""

    def __init__(
        self,
        meta: DatasetMetadata,
        decoder: DecoderCache | None,
        videos: EpisodeVideoFiles,
        *,
        delta_indices: dict[str, np.ndarray] | None,
        tolerance_s: float,
        return_uint8: bool,
        image_transforms: Callable | None,
        depth_output_unit: str = "mm",
        parallelism: int = 1,
        slots: FrameSlots | None = None,
    ) -> None:
        self._meta = meta
        self._decoder = decoder
        self._videos = videos
        self._delta_indices = delta_indices or {}
        self._tolerance_s = tolerance_s
        self.dtype = torch.uint8 if return_uint8 else torch.float32
        self._image_transforms = image_transforms
        self._video_keys = meta.video_keys
        self._transform_keys = [k for k in meta.camera_keys if k not in set(meta.depth_keys)]
        self.parallelism = max(int(parallelism), 1)
        self.slots = slots
        self._images = ImageFeatures(meta.image_keys)
        self._depth = DepthFeatures(meta, depth_output_unit)
        # per camera, not per file: remote episodes decode from a new ByteSource each time
        self._frame_sizes: dict[str, tuple[int, int]] = {}
        self.checks = VideoChecks(meta, decoder)  # once per camera and file
        self.frames_requested = 0

    def close(self) -> None:
        """Stops the image-decoding threads."""
        self._images.close()

    def frame_size(self, key: str) -> tuple[int, int] | None:
        """(height, width) of video ``key``'s frames, once a decode has met them (else None)."""
        return self._frame_sizes.get(key)

    def is_depth(self, key: str) -> bool:
        """Whether the video feature ``key`` holds depth maps (decoded by ``lerobot_stream.depth``)."""
        return key in self._depth.quantization

    @property
    def emits_requests(self) -> bool:
        """True when samples carry :data:`VIDEO_REQUESTS_KEY` instead of camera frames (no decoder)."""
        return self._decoder is None and bool(self._video_keys)

    def build(self, rows: EpisodeRows, frame: int) -> dict[str, Any]:
        """The sample of ``rows``' frame ``frame`` (0-based within the episode)."""
        if self.slots is not None:
            self.slots.begin_sample()
        item, windows = self.tabular(rows, frame)
        if self.emits_requests:  # the decode stage decodes them (Note [Decode stage requests])
            requests = self.video_requests(rows, frame, windows)
            self.frames_requested += sum(len(r.timestamps) for r in requests)
            item = {VIDEO_REQUESTS_KEY: {r.key: r.fields() for r in requests}, **item}
        elif self._video_keys:
            item = {**self._decode_videos(rows, frame, windows), **item}
        return self.finish(item)

    def build_many(self, chunk: list[tuple[EpisodeRows, int]]) -> list[dict[str, Any]]:
        """The samples of ``chunk`` in order, equal to ``[build(rows, frame) for rows, frame in chunk]``,
        their camera frames decoded in one call (Note [Decode per DataLoader batch])."""
        if self.emits_requests or not self._video_keys:
            return [self.build(rows, frame) for rows, frame in chunk]
        items, requests, tensors = [], [], []
        for rows, frame in chunk:
            if self.slots is not None:
                self.slots.begin_sample()  # this sample's slots: allocated now, filled below
            item, windows = self.tabular(rows, frame)
            sample = self.video_requests(rows, frame, windows)
            items.append((item, len(sample)))
            requests += sample
            tensors += self._outputs(sample)
        decoded = zip(requests, self.decode(requests, tensors), strict=True)
        samples = []
        for item, count in items:
            # lerobot squeezes the time axis of a one-frame request (map-style `frames.squeeze(0)`).
            videos = {r.key: f.squeeze(0) for r, f in itertools.islice(decoded, count)}
            samples.append(self.finish({**videos, **item}))
        return samples

    def tabular(self, rows: EpisodeRows, frame: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The sample's row columns and ``delta_timestamps`` windows (no camera frames yet)."""
        item: dict[str, Any] = rows.row(frame)
        windows: dict[str, np.ndarray] = {}
        for key, offsets in self._delta_indices.items():
            indices, is_pad = _core.window_indices(rows.length, frame, offsets)
            windows[key] = np.asarray(indices, dtype=np.int64)
            item[f"{key}_is_pad"] = torch.from_numpy(np.asarray(is_pad, dtype=np.bool_))
        for key, indices in windows.items():
            column = rows.columns.get(key)
            if isinstance(column, torch.Tensor):
                item[key] = column[torch.from_numpy(indices)]
        item.update(self._images.decode(rows, frame, windows))
        return item, windows

    def finish(self, item: dict[str, Any]) -> dict[str, Any]:
        """Applies ``image_transforms`` to the camera tensors, converts depth images to the output unit
        and adds the ``task`` string."""
        for key in self._transform_keys:
            if key in item:
                item[key] = self.transform(key, item[key])
        self._depth.convert_images(item)
        item["task"] = self._meta.task_names[int(item["task_index"])]
        return item

    def transform(self, key: str, frames: torch.Tensor) -> torch.Tensor:
        """``image_transforms(frames)`` for a camera feature that lerobot transforms, else ``frames``."""
        if self._image_transforms is None or key not in self._transform_keys:
            return frames
        return self._image_transforms(frames)

    @property
    def transforms_frames(self) -> bool:
        """Whether ``image_transforms`` applies to camera frames."""
        return self._image_transforms is not None

    def video_requests(
        self, rows: EpisodeRows, frame: int, windows: dict[str, np.ndarray]
    ) -> list[VideoRequest]:
        """What each camera of the sample needs decoded (Note [Video frame timestamps])."""
        meta = self._meta
        row = meta.episode_row(rows.episode_index)
        timestamps = rows.columns["timestamp"]
        requests = []
        for key in self._video_keys:
            indices = windows.get(key)
            local = (
                [timestamps[frame].item()]
                if indices is None
                else timestamps[torch.from_numpy(indices)].tolist()
            )
            offset = float(meta.videos[key].from_timestamp[row])
            requests.append(VideoRequest(key, rows.episode_index, [offset + ts for ts in local]))
        return requests

    def decode(
        self, requests: Sequence[VideoRequest], outputs: Sequence[torch.Tensor | None] | None = None
    ) -> list[torch.Tensor]:
        """Decodes ``requests``; returns one ``[T, 3, H, W]`` tensor per request.

        ``outputs`` holds the tensor to decode each request into, or None to let the decoder allocate
        it (the first time a video is met: its size is learned from the frames, see ``frame_size``);
        no ``outputs``: allocate them all. The given ones decode in one call, their files in
        parallel; depth maps decode as ``lerobot_stream.depth`` says (float32 ``[T, 1, H, W]``, into
        no given tensor). Remote files are held in the local cache while they decode (Note
        [Prefetch on admit]).
        """
        if self._decoder is None:
            raise RuntimeError("this builder emits frame requests; the decode stage decodes them")
        self.frames_requested += sum(len(r.timestamps) for r in requests)
        depth = [self.is_depth(r.key) for r in requests]
        given = [None] * len(requests) if outputs is None else outputs
        tensors = [None if d else t for t, d in zip(given, depth, strict=True)]
        with self._videos.local_all([(r.episode, r.key) for r in requests]) as paths:
            if paths is not None:
                return self._decode_held(requests, paths, depth, tensors)
        decoded = []  # the cache cannot hold every file at once: one at a time
        for request, is_depth, tensor in zip(requests, depth, tensors, strict=True):
            with self._videos.local(request.episode, request.key) as path:
                decoded += self._decode_held([request], [path], [is_depth], [tensor])
        return decoded

    def _decode_held(
        self,
        requests: Sequence[VideoRequest],
        paths: list[Any],
        depth: list[bool],
        tensors: list[torch.Tensor | None],
    ) -> list[torch.Tensor]:
        """``decode`` of requests whose bytes are held (``paths``: what to decode for each)."""
        for request, path in zip(requests, paths, strict=True):
            self.checks.check_file(request.key, request.episode, path)
        known = [i for i, t in enumerate(tensors) if t is not None]
        if known:
            self._decoder.decode_into(
                [paths[i] for i in known],
                [requests[i].timestamps for i in known],
                [tensors[i] for i in known],  # type: ignore[misc]
                self._tolerance_s,
                parallelism=min(self.parallelism, len(known)),
            )
        decoded: list[torch.Tensor] = []
        for i, tensor in enumerate(tensors):
            if depth[i]:
                r = requests[i]
                tensor = self._depth.decode_video(
                    self._decoder, r.key, paths[i], r.timestamps, self._tolerance_s
                )
            elif tensor is None:
                tensor = self._decoder.get_frames_at(
                    paths[i], requests[i].timestamps, self._tolerance_s, dtype=self.dtype
                )
                self._frame_sizes[requests[i].key] = (int(tensor.shape[-2]), int(tensor.shape[-1]))
            decoded.append(tensor)
        return decoded

    def _decode_videos(
        self, rows: EpisodeRows, frame: int, windows: dict[str, np.ndarray]
    ) -> dict[str, torch.Tensor]:
        requests = self.video_requests(rows, frame, windows)
        frames = self.decode(requests, self._outputs(requests))
        # lerobot squeezes the time axis of a one-frame request (map-style `frames.squeeze(0)`).
        return {r.key: f.squeeze(0) for r, f in zip(requests, frames, strict=True)}

    def _outputs(self, requests: Sequence[VideoRequest]) -> list[torch.Tensor | None]:
        """The current sample's tensors to decode ``requests`` into (None: the video's frame size is
        not known yet, or depth maps, whose size is never recorded here)."""
        tensors: list[torch.Tensor | None] = []
        for request in requests:
            size = self.frame_size(request.key)
            if size is None:
                tensors.append(None)
                continue
            shape = (len(request.timestamps), 3, *size)
            if self.slots is None:
                tensors.append(torch.empty(shape, dtype=self.dtype))
            else:  # a slot of the batch the DataLoader will collate (Note [Shared frame blocks])
                tensors.append(self.slots.frames(request.key, shape, self.dtype))
        return tensors
