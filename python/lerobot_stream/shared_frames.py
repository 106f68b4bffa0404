"""Camera frames that travel from a DataLoader worker to the main process without a copy.

Note [Shared frame blocks]
~~~~~~~~~~~~~~~~~~~~~~~~~~
A DataLoader worker hands batches to the main process through shared memory. The default collate
stacks the samples' frames into a new shared-memory block for every batch: the worker takes a page
fault on each 4 KiB page of it, and the main process later frees every page again. On the 2-core VM
this project is developed on that costs about 2.6 us per page to fault in and 1 us to free: 3.8 ms
per float32 480x640 frame, more than decoding the frame. So a worker decodes camera frames into
blocks of a small pool (``BlockPool``: torch shared storages, reused) laid out as the batch will be:

- with ``StreamingLeRobotDataset(batch_size=B)`` the dataset builds the batch itself and decodes each
  camera's frames into one block (``lerobot_stream.batching``);
- with the plain ``DataLoader(ds, batch_size=B)`` each sample's frames are views of consecutive
  slots of one block per camera (``FrameSlots``), and ``default_collate``, extended through torch's
  documented ``default_collate_fn_map`` hook, recognises B such views and returns the block as the
  batch tensor instead of stacking a copy. B is learned from the first batch (whose frames are
  ordinary tensors, stacked as usual).

The batch tensor is a ``SharedFrames`` (a ``torch.Tensor`` subclass) only inside the worker: pickled
by the DataLoader it sends the block (torch passes its file descriptor) and, in the main process,
becomes a plain tensor viewing the block, owned by a ``_core.SharedBatchLease``. When the last tensor
viewing it is freed, the lease marks the block free in its header (an atomic word both processes
map) and the worker reuses the block: no new pages, nothing to free. A block is reused only when the
main process released it and the worker holds no tensor of it (torch's storage use count); a block
whose frames left the worker some other way (e.g. a custom ``collate_fn`` that stacked them) never
reports back, so it is dropped from the pool and torch frees it when the last process lets go.
Outside DataLoader workers nothing of this is used: frames are ordinary tensors.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils.data._utils import collate as torch_collate

from lerobot_stream import _core

HEADER_BYTES = 64  # the block's state word; frame data starts after it (64-byte aligned)
_FREE, _FILLING, _SENT = 0, 1, 2


def shared_blocks_supported() -> bool:
    """Whether this torch has what the blocks need (shared storages, storage use counts, the
    ``default_collate_fn_map`` hook); without it frames are ordinary tensors, stacked as usual."""
    return (
        hasattr(torch._C, "_storage_Use_Count")
        and hasattr(torch.UntypedStorage, "_new_shared")
        and isinstance(getattr(torch_collate, "default_collate_fn_map", None), dict)
    )


class BlockPool:
    """One worker's shared-memory blocks (torch shared storages), reused once released.

    Note [Block pool size]
    ~~~~~~~~~~~~~~~~~~~~~~
    How many batches of a worker are in flight (filling, queued, held by the consumer) changes with
    the consumer's pace, between one and the DataLoader's ``prefetch_factor`` plus two. A pool that
    kept a fixed number of free blocks dropped the surplus whenever the consumer released several
    batches at once, then made new blocks when the pipeline deepened again: each a page fault per
    4 KiB and zeroed pages (0.4 CPU s per 0.77 GB block of SARM float32 frames). So a free block now
    stays while it was taken within the last ``2 x blocks held`` acquisitions (a block in a steady
    cycle of N is taken every N), plus the ``max_free`` most recently taken ones; a block idle for
    longer is dropped. The pool never holds more than its high-water mark of blocks in use plus
    ``max_free``, which the worker reached anyway.
    """

    def __init__(self, max_free: int) -> None:
        """``max_free``: free blocks always kept for reuse; one batch's worth (a block per camera) is
        what the next batch takes (Note [Block pool size])."""
        self._blocks: list[torch.UntypedStorage] = []
        self._max_free = max_free
        self._taken_at: dict[int, int] = {}  # block data_ptr -> the acquisition that last took it
        self._acquisitions = 0
        self.created = 0
        self.reused = 0

    def acquire(self, nbytes: int) -> torch.UntypedStorage:
        """A block with room for ``nbytes`` after its header, marked as being filled."""
        self._acquisitions += 1
        free, kept = [], []
        for block in self._blocks:
            idle = torch._C._storage_Use_Count(block._cdata) == 1  # no tensor of it in this process
            state = _core.shared_block_state(block.data_ptr())
            if idle and state == _FREE:
                free.append(block)
            elif not (idle and state == _FILLING):  # idle while filling: left without a lease
                kept.append(block)
        fitting = [b for b in free if b.nbytes() >= HEADER_BYTES + nbytes]
        if fitting:
            # the smallest, and of those the last taken: surplus stays idle (Note [Block pool size])
            block = min(fitting, key=lambda b: (b.nbytes(), -self._taken_at.get(b.data_ptr(), 0)))
            free.remove(block)
            self.reused += 1
        else:
            block = torch.UntypedStorage._new_shared(HEADER_BYTES + nbytes)
            self.created += 1
        _core.set_shared_block_state(block.data_ptr(), _FILLING)
        linger = 2 * len(self._blocks)
        free.sort(key=lambda b: self._taken_at.get(b.data_ptr(), 0))  # least recently taken first
        newest = len(free) - self._max_free  # free[newest:] are the max_free last taken
        stay = [
            b
            for i, b in enumerate(free)
            if i >= newest or self._acquisitions - self._taken_at.get(b.data_ptr(), 0) <= linger
        ]
        self._taken_at[block.data_ptr()] = self._acquisitions
        self._blocks = [*kept, *stay, block]
        live = {b.data_ptr() for b in self._blocks}
        self._taken_at = {ptr: n for ptr, n in self._taken_at.items() if ptr in live}
        return block

    def stats(self) -> dict[str, int]:
        """Blocks created and reused so far, and held now."""
        return {"created": self.created, "reused": self.reused, "held": len(self._blocks)}


def block_tensor(
    block: torch.UntypedStorage, shape: tuple[int, ...], dtype: torch.dtype, offset: int = 0
) -> torch.Tensor:
    """A tensor of ``shape`` at element ``offset`` of ``block``'s data (after the header)."""
    return torch.empty(0, dtype=dtype).set_(block, HEADER_BYTES // dtype.itemsize + offset, shape)


class SharedFrames(torch.Tensor):
    """A batch of frames in a shared block, inside a DataLoader worker (Note [Shared frame blocks]).

    It behaves as the tensor it is; pickled to another process it arrives as a plain tensor viewing
    the same memory, and the block returns to the worker's pool when that tensor is freed. A tensor
    computed from it (``x * 2``) is an ordinary tensor once pickled.
    """

    _block: torch.UntypedStorage | None = None

    @staticmethod
    def wrap(block: torch.UntypedStorage, frames: torch.Tensor) -> SharedFrames:
        """``frames`` (a tensor at the start of ``block``'s data) as SharedFrames."""
        out = torch.Tensor._make_subclass(SharedFrames, frames)
        out._block = block
        return out

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        block = self._block
        plain = self.as_subclass(torch.Tensor)
        if block is None or plain.data_ptr() != block.data_ptr() + HEADER_BYTES or not plain.is_contiguous():
            return (_identity, (plain,))  # a derived tensor: pickled as usual
        _core.set_shared_block_state(block.data_ptr(), _SENT)
        dtype = str(plain.dtype).removeprefix("torch.")
        return (_rebuild_shared_frames, (block, tuple(plain.shape), dtype))

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        # Results of operations are plain tensors: only the block's own batch tensor is special.
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


def _identity(value: Any) -> Any:
    return value


def _rebuild_shared_frames(block: torch.UntypedStorage, shape: tuple[int, ...], dtype: str) -> torch.Tensor:
    """The receiving side of ``SharedFrames.__reduce_ex__``: a plain tensor leased from the block."""
    base = block.data_ptr()
    lease = _core.SharedBatchLease(base, block)
    return lease.tensor(base + HEADER_BYTES, list(shape), dtype)


class FrameSlots:
    """Per-sample frame tensors laid out as ``default_collate`` will stack them (Note [Shared frame blocks]).

    One per consumer in a DataLoader worker. ``begin_sample`` is called once per sample, ``frames``
    once per camera of it; ``collate`` is asked by the collate hook whether a list of tensors is a
    run of its slots.
    """

    def __init__(self, pool: BlockPool) -> None:
        self._pool = pool
        self.batch_size: int | None = None  # learned from the DataLoader's first batch
        self._count = 0  # samples begun this iteration
        self._counted = 0  # samples begun when the collate last saw new ones
        self._batch = self._slot = -1  # the current sample's batch (since restart) and slot in it
        # camera -> (block, slot shape, dtype, the batch it holds, the batch size it was made for)
        self._groups: dict[str, tuple[torch.UntypedStorage, tuple[int, ...], torch.dtype, int, int]] = {}
        _install_collate_hook(self)

    def restart(self) -> None:
        """A new iteration: the DataLoader's batches start again at this sample."""
        self._count = self._counted = 0
        self._groups.clear()

    @property
    def begun(self) -> int:
        """Samples begun since the last ``restart``."""
        return self._count

    def begin_sample(self) -> None:
        """The next sample's frames go to the next slot of every camera's block of this batch."""
        if self.batch_size:
            self._batch, self._slot = divmod(self._count, self.batch_size)
        else:
            self._slot = -1
        self._count += 1

    def frames(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The current sample's tensor for camera ``key``: a slot of the camera's block for this batch
        when batches are known, else an ordinary tensor."""
        if self._slot < 0:
            return torch.empty(shape, dtype=dtype)
        group = self._groups.get(key)
        if group is None or group[1:] != (shape, dtype, self._batch, self.batch_size):
            if self._slot != 0:  # no block of this batch for this camera: stacked as usual
                return torch.empty(shape, dtype=dtype)
            block = self._pool.acquire(self.batch_size * torch.Size(shape).numel() * dtype.itemsize)
            group = self._groups[key] = (block, shape, dtype, self._batch, self.batch_size)
        return block_tensor(group[0], shape, dtype, self._slot * torch.Size(shape).numel())

    def collate(self, batch: list[torch.Tensor]) -> torch.Tensor | None:
        """The batch tensor if ``batch`` is the run of slots 0..n-1 of one of our blocks, else None.

        The first call after new samples learns the batch size: the samples made since the last
        batch. A pass may start with a short batch (its last one), so the largest count seen wins,
        and blocks made for a smaller size are not used again.
        """
        if self._count > self._counted:  # the first collate call since these samples were made
            seen = self._count - self._counted
            self._counted = self._count
            self.batch_size = max(self.batch_size or 0, seen)
        first = batch[0]
        for block, shape, dtype, *_ in self._groups.values():
            base = block.data_ptr() + HEADER_BYTES
            if first.data_ptr() != base:
                continue
            step = torch.Size(shape).numel() * dtype.itemsize
            for i, t in enumerate(batch):
                if (
                    type(t) is not torch.Tensor
                    or t.dtype != dtype
                    or t.shape != first.shape
                    or t.data_ptr() != base + i * step
                    or not t.is_contiguous()
                    or t.untyped_storage().data_ptr() != block.data_ptr()
                ):
                    return None
            return SharedFrames.wrap(block, block_tensor(block, (len(batch), *first.shape), dtype))
        return None


_SLOTS: weakref.WeakSet[FrameSlots] = weakref.WeakSet()
_STACK: Any = torch_collate.collate_tensor_fn  # the tensor collate the hook falls back to


def _collate_tensors(batch: list[torch.Tensor], *, collate_fn_map: Any = None) -> torch.Tensor:
    """``default_collate`` for tensors: a run of ``FrameSlots`` slots is the block itself, else a stack."""
    for slots in list(_SLOTS):
        frames = slots.collate(batch)
        if frames is not None:
            return frames
    return _STACK(batch, collate_fn_map=collate_fn_map)


def _install_collate_hook(slots: FrameSlots) -> None:
    """Registers ``slots`` with the collate hook, installing the hook in this process once (over
    whatever tensor collate was registered, which it then falls back to)."""
    global _STACK
    _SLOTS.add(slots)
    current = torch_collate.default_collate_fn_map.get(torch.Tensor, torch_collate.collate_tensor_fn)
    if current is not _collate_tensors:
        _STACK = current
        torch_collate.default_collate_fn_map[torch.Tensor] = _collate_tensors
