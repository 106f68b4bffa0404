"""Whole batches built in the consumer: ``StreamingLeRobotDataset(..., batch_size=B)``.

With ``batch_size`` set, the dataset yields batches equal to what ``DataLoader(ds, batch_size=B)``
would collate from its samples (same samples, same order, the same last partial batch per worker,
the same resume arithmetic), for ``DataLoader(ds, batch_size=None, num_workers=W)``. The camera
frames of all samples are decoded in one call straight into the batch's tensors (every camera's
files decoding in parallel when cores are idle), so there is no per-sample frame tensor, no
stacking copy and less Python per sample (Note [Decode into the output] in
``lerobot_stream.sample``). In a DataLoader worker the batch tensors live in reused shared blocks
and reach the main process without a copy (Note [Shared frame blocks] in
``lerobot_stream.shared_frames``). When the builder emits frame requests instead of frames (the
decode stage decodes them in the training process), a batch is the collated samples, requests
included (Note [Decode stage requests] in ``lerobot_stream.decode_stage``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import default_collate

from lerobot_stream.sample import SampleBuilder
from lerobot_stream.shared_frames import BlockPool, SharedFrames, block_tensor
from lerobot_stream.tabular import EpisodeRows


class BatchBuilder:
    """Builds batches of ``batch_size`` samples; the consumer's last one is smaller unless ``drop_last``.

    ``pool``: shared blocks for the frames (in a DataLoader worker); without one, ordinary tensors.
    """

    def __init__(
        self, builder: SampleBuilder, batch_size: int, *, drop_last: bool, pool: BlockPool | None
    ) -> None:
        self._builder = builder
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.pool = pool

    def build(self, chunk: list[tuple[EpisodeRows, int]]) -> dict[str, Any]:
        """One batch, equal to ``default_collate([builder.build(rows, frame) for rows, frame in chunk])``."""
        builder = self._builder
        if builder.emits_requests:  # nothing to decode here: the decode stage fills the cameras in
            return default_collate([builder.build(rows, frame) for rows, frame in chunk])
        tabular = [builder.tabular(rows, frame) for rows, frame in chunk]
        requests = [
            builder.video_requests(rows, frame, windows)
            for (rows, frame), (_, windows) in zip(chunk, tabular, strict=True)
        ]
        cameras = [r.key for r in requests[0]]
        rgb = [key for key in cameras if not builder.is_depth(key)]
        rgb_requests = [[r for r in sample if r.key in rgb] for sample in requests]
        first: list[torch.Tensor] = []
        if any(builder.frame_size(key) is None for key in rgb):
            # Videos not met yet: the first sample's frames (allocated by the decoder) give the sizes.
            first = builder.decode(rgb_requests[0])
        frames: dict[str, torch.Tensor] = {}  # key -> [B, T, 3, H, W]
        blocks: dict[str, torch.UntypedStorage] = {}
        for r in rgb_requests[0]:
            shape = (len(chunk), len(r.timestamps), 3, *builder.frame_size(r.key))  # type: ignore[misc]
            if self.pool is None:
                frames[r.key] = torch.empty(shape, dtype=builder.dtype)
            else:
                blocks[r.key] = self.pool.acquire(torch.Size(shape).numel() * builder.dtype.itemsize)
                frames[r.key] = block_tensor(blocks[r.key], shape, builder.dtype)
        for key, decoded in zip(rgb, first, strict=False):
            frames[key][0].copy_(decoded)
        rest = [r for sample in rgb_requests[1 if first else 0 :] for r in sample]
        if rest:
            slots = [frames[key][b] for b in range(1 if first else 0, len(chunk)) for key in rgb]
            builder.decode(rest, slots)
        depth = [r for sample in requests for r in sample if r.key not in rgb]
        if depth:  # depth maps: decoded per sample as lerobot_stream.depth says, then stacked
            decoded = builder.decode(depth)
            pairs = list(zip(depth, decoded, strict=True))
            for key in cameras:
                if key not in rgb:
                    frames[key] = torch.stack([t for r, t in pairs if r.key == key])
        # lerobot squeezes the time axis of one-frame requests, then the DataLoader stacks samples.
        videos: dict[str, torch.Tensor] = {}
        for key in cameras:
            batch = frames[key].squeeze(1)
            if builder.transforms_frames:
                videos[key] = torch.stack([builder.transform(key, x) for x in batch])
            else:
                videos[key] = SharedFrames.wrap(blocks[key], batch) if key in blocks else batch
        return {**videos, **default_collate([builder.finish(item) for item, _ in tabular])}
