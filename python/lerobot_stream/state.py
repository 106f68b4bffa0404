"""Resume state (a small versioned dict) and the per-worker epoch counters that survive workers.

Note [Resume state schema]
~~~~~~~~~~~~~~~~~~~~~~~~~~
The stream's position is fully determined by how many batches the trainer has consumed since the
start of training (epoch 0) and the batch size: every consumer emits the same number of samples
per epoch and the DataLoader takes batch ``k`` from worker ``k mod W`` (``in_order=True``), so each
worker derives its own epoch and skip with ``_core.resume_point``. The dataset cannot observe what
the trainer consumed (workers prefetch), so the trainer stores ``{"batches_consumed", "batch_size"}``
and hands it back. The full schema (version 1)::

    {"version": 1, "batches_consumed": int, "batch_size": int, "drop_last": bool,
     "num_workers": int | None, "world_size": int | None, "seed": int | None,
     "shuffle": bool | None, "episode_pool_size": int | None, "dataset_fingerprint": str | None}

Fields that are None (or absent, as in the trainer's bare dict) are not checked. A state saved with
a different world size, number of workers, seed, shuffle, pool size or dataset (episodes and
their lengths) is rejected with a ValueError: the sample order depends on all of them, so an exact
continuation does not exist.

Note [Epoch counters across workers]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Epochs reshuffle automatically: each ``__iter__`` of a consumer starts the next epoch. With
non-persistent workers the DataLoader re-creates worker processes (copies of the dataset) every
epoch, so a counter in the dataset object would restart at 0. The counters therefore live in
shared-memory tensors created in ``__init__`` (inherited by forked workers, passed by handle to
spawned ones), one slot per worker id plus one for the main process (``worker=None``), so that
iterating in the main process (``num_workers=0``, or peeking at a sample) does not shift the
workers' epochs; the resume request is a shared per-slot flag so that it is applied by exactly one
``__iter__`` per worker.

Note [Resuming mid round-robin]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``_core.resume_point`` says where each worker of the interrupted run stands. A new DataLoader,
though, asks its worker 0 first, while the next batch of the interrupted run was due from worker
``B mod W``. So in the first pass after a resume, DataLoader worker ``j`` plays the role (runs the
schedule) of interrupted worker ``(j + B mod W) mod W``: the round robin then continues exactly
where it stopped. Every epoch has ``W * batches_per_epoch`` batches, a multiple of ``W``, so from
the next pass on every worker plays itself again. A role that already finished the pass's epoch
(``resume_point`` rolled it over to the next epoch) yields nothing in this pass: the interrupted
run would not have asked it for another batch before the epoch ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from lerobot_stream import _core

STATE_VERSION = 1
MAX_WORKERS = 1024


@dataclass(frozen=True)
class ResumeState:
    """Where to resume: see Note [Resume state schema]."""

    batches_consumed: int
    batch_size: int
    drop_last: bool = False
    num_workers: int | None = None
    world_size: int | None = None
    seed: int | None = None
    shuffle: bool | None = None
    episode_pool_size: int | None = None
    dataset_fingerprint: str | None = None

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ResumeState:
        """Parses a trainer's ``{batches_consumed, batch_size}`` or a full ``state_dict()``."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        version = state.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(
                f"Unsupported resume state version {version!r} (this build reads {STATE_VERSION})"
            )
        missing = [k for k in ("batches_consumed", "batch_size") if state.get(k) is None]
        if missing:
            raise ValueError(f"Resume state lacks {missing}; pass {{'batches_consumed': B, 'batch_size': b}}")
        known = set(cls.__dataclass_fields__)
        unknown = set(state) - known - {"version"}
        if unknown:
            raise ValueError(f"Unknown resume state keys {sorted(unknown)}; allowed: {sorted(known)}")
        parsed = cls(**{k: v for k, v in state.items() if k != "version"})
        if int(parsed.batches_consumed) < 0:
            raise ValueError(f"batches_consumed must be >= 0, got {parsed.batches_consumed}")
        if int(parsed.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {parsed.batch_size}")
        return parsed

    def as_dict(self) -> dict[str, Any]:
        """The versioned dict of Note [Resume state schema]."""
        return {"version": STATE_VERSION, **asdict(self)}

    def check_matches(self, **current: Any) -> None:
        """ValueError naming every field whose saved value differs from the current one."""
        saved = asdict(self)
        diffs = [
            f"{name}: saved {saved[name]!r}, now {value!r}"
            for name, value in current.items()
            if saved.get(name) is not None and saved[name] != value
        ]
        if diffs:
            raise ValueError(
                "Cannot resume exactly: the resume state was saved under a different configuration ("
                + "; ".join(diffs)
                + "). Resume with the same world size, num_workers, seed, shuffle, episode_pool_size and "
                "episodes, or start a new run without load_state_dict()."
            )


def dataset_fingerprint(episode_indices: np.ndarray, lengths: np.ndarray) -> str:
    """A short hash of the selected episodes and their lengths (what the sample order depends on)."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(episode_indices, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class ResumePass:
    """What one DataLoader worker does in the first pass after a resume."""

    role: int  # the interrupted run's worker whose schedule this worker continues
    epoch: int
    skip: int  # samples of ``epoch`` to fast-forward over


def resume_pass(state: ResumeState, worker: int, num_workers: int, samples_per_epoch: int) -> ResumePass:
    """Role, epoch and skip of ``worker`` after ``state``; see Note [Resuming mid round-robin]."""
    batches = int(state.batches_consumed)
    per_epoch = int(_core.batches_per_epoch(samples_per_epoch, int(state.batch_size), bool(state.drop_last)))
    if per_epoch == 0:
        if batches:
            raise ValueError(
                f"Resume state says {batches} batches were consumed, but with {samples_per_epoch} "
                f"samples per worker and batch_size={state.batch_size} (drop_last={state.drop_last}) "
                "no batch is ever produced"
            )
        return ResumePass(role=worker, epoch=0, skip=0)
    role = (worker + batches % num_workers) % num_workers
    epoch, skip = _core.resume_point(
        batches, int(state.batch_size), num_workers, role, samples_per_epoch, bool(state.drop_last)
    )
    pass_epoch = batches // (num_workers * per_epoch)
    if epoch > pass_epoch:  # this role is done with the pass's epoch
        return ResumePass(role=role, epoch=pass_epoch, skip=samples_per_epoch)
    return ResumePass(role=role, epoch=int(epoch), skip=int(skip))


class EpochCounters:
    """Per-worker next-epoch counters and resume flags in shared memory.

    See Note [Epoch counters across workers].
    """

    def __init__(self) -> None:
        slots = MAX_WORKERS + 1  # the last one is the main process's
        self._next_epoch = torch.zeros(slots, dtype=torch.int64).share_memory_()
        self._resume_pending = torch.zeros(slots, dtype=torch.bool).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """The next ``__iter__`` of every worker runs ``epoch`` (then epoch + 1, ...)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._next_epoch.fill_(epoch)

    def arm_resume(self) -> None:
        """Every worker's next ``__iter__`` applies the pending resume state (once)."""
        self._resume_pending.fill_(True)

    def reset(self) -> None:
        """Back to epoch 0, no resume pending."""
        self._next_epoch.zero_()
        self._resume_pending.fill_(False)

    def take_resume(self, worker: int | None) -> bool:
        """True exactly once per worker (None: the main process) after ``arm_resume``."""
        slot = _slot(worker)
        if bool(self._resume_pending[slot]):
            self._resume_pending[slot] = False
            return True
        return False

    def start_epoch(self, worker: int | None, epoch: int | None = None) -> int:
        """The epoch this ``__iter__`` of ``worker`` runs (``epoch`` when resuming); advances the counter."""
        slot = _slot(worker)
        if epoch is None:
            epoch = int(self._next_epoch[slot])
        self._next_epoch[slot] = epoch + 1
        return epoch


def _slot(worker: int | None) -> int:
    if worker is None:
        return MAX_WORKERS
    if not 0 <= worker < MAX_WORKERS:
        raise ValueError(f"worker id {worker} out of range: at most {MAX_WORKERS} DataLoader workers")
    return worker
