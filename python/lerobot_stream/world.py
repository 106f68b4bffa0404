"""Who is consuming: the process's rank and world size, and the DataLoader worker.

Rank and world size resolve in this order (first match wins):

1. explicit ``rank`` / ``world_size`` arguments;
2. ``torch.distributed`` when it is initialised;
3. Accelerate's ``PartialState`` when accelerate is importable and its state is initialised;
4. ``RANK`` / ``WORLD_SIZE`` environment variables (torchrun, accelerate launch);
5. ``SLURM_PROCID`` / ``SLURM_NTASKS`` (srun);
6. ``(0, 1)``.

The worker comes from ``torch.utils.data.get_worker_info()`` (``(0, 1)`` in the main process).
"""

from __future__ import annotations

import os

import torch


def resolve_rank_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world_size) of this process; ValueError when they are inconsistent."""
    if rank is None or world_size is None:
        found = _from_torch_distributed() or _from_accelerate() or _from_env()
        detected_rank, detected_world = found or (0, 1)
        rank = detected_rank if rank is None else rank
        world_size = detected_world if world_size is None else world_size
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return int(rank), int(world_size)


def current_worker() -> tuple[int, int]:
    """(worker id, number of workers) of the DataLoader worker running this code; (0, 1) outside one."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return 0, 1
    return int(info.id), int(info.num_workers)


def in_worker_process() -> bool:
    """True inside a DataLoader worker process."""
    return torch.utils.data.get_worker_info() is not None


def _from_torch_distributed() -> tuple[int, int] | None:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _from_accelerate() -> tuple[int, int] | None:
    try:
        from accelerate import PartialState
    except ImportError:
        return None
    shared = getattr(PartialState, "_shared_state", None)
    if not shared:  # never initialised: constructing it here would initialise distributed state
        return None
    state = PartialState()
    return int(state.process_index), int(state.num_processes)


def _from_env() -> tuple[int, int] | None:
    for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        rank, world = os.environ.get(rank_var), os.environ.get(world_var)
        if rank is not None and world is not None:
            try:
                return int(rank), int(world)
            except ValueError:
                raise ValueError(
                    f"Environment {rank_var}={rank!r} / {world_var}={world!r} are not integers"
                ) from None
    return None
