"""Resume state (a small versioned dict, parsed strictly) and the per-worker counters that survive workers.

Note [Resume state schema]
~~~~~~~~~~~~~~~~~~~~~~~~~~
The stream's position is fully determined by how many batches each rank's trainer has consumed since
the start of training (all ranks step together, so it is one number), the batch size and the layout
that produced them: every consumer emits the same number of samples per pass and the DataLoader takes
batch ``k`` from worker ``k mod W`` (``in_order=True``). The dataset cannot observe what the trainer
consumed (workers prefetch), so the trainer hands its count back. The full schema (version 2)::

    {"version": 2,
     "batches_consumed": int, "batch_size": int, "drop_last": bool,     # the trainer's counters
     "world_size": int | None, "num_workers": int | None,               # the layout that ran them
     "seed": int | None, "shuffle": bool | None, "episode_pool_size": int | None,
     "dataset_fingerprint": str | None,                                 # what must not change
     "epoch": int, "epoch_start": int,                                  # the epoch in progress and the
                                                                        # batches_consumed it began at
     "phases": [{"world_size", "num_workers", "batch_size", "drop_last", "until"}, ...]}

``phases`` lists the earlier layouts of the epoch in progress, each closed when the run had consumed
``until`` batches (Note [Elastic resume] in ``cpp/sampling/elastic.h``); the current layout (the
top-level fields) ran from the last ``until`` (or ``epoch_start``) to ``batches_consumed``. It is empty
unless the world size or the worker count changed inside the epoch, so the state stays a few dozen
bytes. ``epoch``/``epoch_start`` default to 0/0: the trainer's bare ``{"batches_consumed": B,
"batch_size": b}`` counts from the start of training. Version 1 (the same without the last three
fields) is read as well.

Parsing is strict: integers must be ``int`` (numpy integers too, never ``bool``) within int64 and their
documented range, booleans must be ``bool``, and the error names the field. Fields that are None (or
absent, as in the bare dict) are not checked. Seed, shuffle, pool size or dataset (episodes and their
lengths) must not change: the order depends on them and a ValueError names each difference. World size
and num_workers may change (``lerobot_stream.elastic``); a bare dict carries neither, so it is read as
"same layout as now".

Note [Epoch counters across workers]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Epochs reshuffle automatically: each ``__iter__`` of a consumer starts the next epoch. With
non-persistent workers the DataLoader re-creates worker processes (copies of the dataset) every
epoch, so a counter in the dataset object would restart at 0. The counters therefore live in
shared-memory tensors created in ``__init__`` (inherited by forked workers, passed by handle to
spawned ones), one slot per worker id plus one for the main process (``worker=None``), so that
iterating in the main process (``num_workers=0``, or peeking at a sample) does not shift the
workers' epochs; the resume request is a shared per-slot flag so that it is applied by exactly one
``__iter__`` per worker. The same shared memory records the worker count the last ``__iter__`` ran
under, so that ``state_dict()`` in the main process can store the DataLoader's ``num_workers``.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_WORKERS = 1024
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
_PHASE_KEYS = ("world_size", "num_workers", "batch_size", "drop_last", "until")


@dataclass(frozen=True)
class Phase:
    """An earlier layout of the epoch in progress, closed when the run had consumed ``until`` batches."""

    world_size: int
    num_workers: int
    batch_size: int
    drop_last: bool
    until: int


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
    epoch: int = 0
    epoch_start: int = 0
    phases: tuple[Phase, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ResumeState:
        """Parses a trainer's ``{batches_consumed, batch_size}`` or a full ``state_dict()`` strictly.

        Raises TypeError when ``state`` is not a mapping and ValueError naming the field otherwise.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"Resume state must be a dict, got {type(state).__name__}")
        version = _int(state.get("version", STATE_VERSION), "version", 0)
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"Unsupported resume state version {version} (this build reads {READABLE_VERSIONS})"
            )
        known = set(cls.__dataclass_fields__)
        unknown = set(state) - known - {"version"}
        if unknown:
            raise ValueError(
                f"Unknown resume state keys {sorted(map(str, unknown))}; allowed: {sorted(known)}"
            )
        missing = [k for k in ("batches_consumed", "batch_size") if state.get(k) is None]
        if missing:
            raise ValueError(f"Resume state lacks {missing}; pass {{'batches_consumed': B, 'batch_size': b}}")
        batches = _int(state["batches_consumed"], "batches_consumed", 0)
        epoch_start = _int(state.get("epoch_start", 0), "epoch_start", 0, batches)
        parsed = cls(
            batches_consumed=batches,
            batch_size=_int(state["batch_size"], "batch_size", 1),
            drop_last=_bool(state.get("drop_last", False), "drop_last"),
            num_workers=_optional(state, "num_workers", lambda v, n: _int(v, n, 0, MAX_WORKERS)),
            world_size=_optional(state, "world_size", lambda v, n: _int(v, n, 1)),
            seed=_optional(state, "seed", lambda v, n: _int(v, n, 0, UINT64_MAX)),
            shuffle=_optional(state, "shuffle", _bool),
            episode_pool_size=_optional(state, "episode_pool_size", lambda v, n: _int(v, n, 1)),
            dataset_fingerprint=_optional(state, "dataset_fingerprint", _str),
            epoch=_int(state.get("epoch", 0), "epoch", 0),
            epoch_start=epoch_start,
            phases=_phases(state.get("phases", ()), epoch_start, batches),
        )
        if parsed.phases and (parsed.world_size is None or parsed.num_workers is None):
            raise ValueError(
                "Resume state has 'phases' but no 'world_size'/'num_workers' for the current layout"
            )
        return parsed

    def as_dict(self) -> dict[str, Any]:
        """The versioned dict of Note [Resume state schema] (plain ints, bools, strings and lists)."""
        out = {"version": STATE_VERSION, **asdict(self)}
        out["phases"] = [asdict(p) for p in self.phases]
        return out

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
                "Cannot resume: the resume state was saved under a different configuration ("
                + "; ".join(diffs)
                + "). The sample order depends on seed, shuffle, episode_pool_size and the episodes (world "
                "size and num_workers may change); keep them, or start a new run without load_state_dict()."
            )


def dataset_fingerprint(episode_indices: np.ndarray, lengths: np.ndarray) -> str:
    """A short hash of the selected episodes and their lengths (what the sample order depends on)."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(episode_indices, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def whole_number(value: Any, label: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int; ValueError starting with ``label`` unless it is an integer (not a bool)
    in ``[lo, hi]`` (``hi`` None: no upper bound). Checks resume state fields and the dataset's
    arguments alike."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{label} must be an integer, got {value!r} ({type(value).__name__})")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{label} must be {bounds}, got {number}")
    return number


def _int(value: Any, name: str, lo: int, hi: int = INT64_MAX) -> int:
    return whole_number(value, f"Resume state field {name!r}", lo, hi)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"Resume state field {name!r} must be a bool, got {value!r} ({type(value).__name__})"
        )
    return bool(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"Resume state field {name!r} must be a string, got {value!r} ({type(value).__name__})"
        )
    return value


def _optional(state: Mapping[str, Any], name: str, parse: Any) -> Any:
    value = state.get(name)
    return None if value is None else parse(value, name)


def _phases(value: Any, epoch_start: int, batches: int) -> tuple[Phase, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"Resume state field 'phases' must be a list, got {type(value).__name__}")
    out: list[Phase] = []
    previous = epoch_start
    for i, item in enumerate(value):
        name = f"phases[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"Resume state field {name!r} must be a dict, got {type(item).__name__}")
        if set(item) != set(_PHASE_KEYS):
            raise ValueError(f"Resume state field {name!r} must have exactly the keys {list(_PHASE_KEYS)}")
        phase = Phase(
            world_size=_int(item["world_size"], f"{name}.world_size", 1),
            num_workers=_int(item["num_workers"], f"{name}.num_workers", 0, MAX_WORKERS),
            batch_size=_int(item["batch_size"], f"{name}.batch_size", 1),
            drop_last=_bool(item["drop_last"], f"{name}.drop_last"),
            until=_int(item["until"], f"{name}.until", previous, batches),
        )
        previous = phase.until
        out.append(phase)
    return tuple(out)


class EpochCounters:
    """Per-worker next-epoch counters, resume flags and the observed worker count, in shared memory.

    See Note [Epoch counters across workers].
    """

    def __init__(self) -> None:
        slots = MAX_WORKERS + 1  # the last one is the main process's
        self._next_epoch = torch.zeros(slots, dtype=torch.int64).share_memory_()
        self._resume_pending = torch.zeros(slots, dtype=torch.bool).share_memory_()
        # [0]: num_workers seen in a worker process (0 = none); [1]: 1 once the main process iterated.
        self._workers_seen = torch.zeros(2, dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """The next ``__iter__`` of every worker runs ``epoch`` (then epoch + 1, ...)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._next_epoch.fill_(epoch)

    def arm_resume(self) -> None:
        """Every worker's next ``__iter__`` applies the pending resume state (once)."""
        self._resume_pending.fill_(True)

    def reset(self) -> None:
        """Back to epoch 0, no resume pending, no worker count seen."""
        self._next_epoch.zero_()
        self._resume_pending.fill_(False)
        self._workers_seen.zero_()

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

    def observe_workers(self, num_workers: int, in_worker: bool) -> None:
        """Records the DataLoader's worker count (``in_worker`` False: the main process iterates)."""
        if in_worker:
            self._workers_seen[0] = num_workers
        else:
            self._workers_seen[1] = 1

    def workers_seen(self) -> int | None:
        """The worker count iterations ran under since the last ``reset``: a worker process's count,
        else 0 if only the main process iterated, else None."""
        if int(self._workers_seen[0]) > 0:
            return int(self._workers_seen[0])
        return 0 if int(self._workers_seen[1]) else None


def _slot(worker: int | None) -> int:
    if worker is None:
        return MAX_WORKERS
    if not 0 <= worker < MAX_WORKERS:
        raise ValueError(f"worker id {worker} out of range: at most {MAX_WORKERS} DataLoader workers")
    return worker
