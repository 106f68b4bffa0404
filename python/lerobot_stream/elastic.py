"""Where each consumer resumes when the layout (world size × DataLoader workers) may have changed.

A resume state (Note [Resume state schema] in ``lerobot_stream.state``) says how many batches the run
consumed under which layouts. This module turns it, for the layout that is running now, into the first
pass of the resumed DataLoader: either the rest of a regular epoch (O(1) arithmetic, bitwise the
uninterrupted run when nothing changed) or an elastic pass over what the earlier layouts of the epoch
left (Note [Elastic resume] in ``cpp/sampling/elastic.h``, built by ``_core.ElasticPass``).

Note [Normalised history]
~~~~~~~~~~~~~~~~~~~~~~~~~
``normalize`` rewrites a state so that ``epoch`` is the epoch in progress at ``batches_consumed`` and
``epoch_start`` the batch count it began at: whole regular epochs of the current layout are folded into
``epoch`` (``pass_batches`` each), and an elastic pass that the trainer finished (its
``pass_batches`` over the leftover, the same count on every rank) closes the epoch, dropping its
phases. So ``phases`` only ever describes the epoch in progress, and a state on an epoch boundary has
none: any layout can take over there with a plain regular epoch (the next epoch of a fresh run with
that layout). ``with_layout`` closes the current layout as a phase at ``batches_consumed`` when the
layout running now differs (a phase that consumed nothing is dropped, it took no frame). Layouts are
compared by consumers: ``num_workers`` 0 and 1 are the same layout (one consumer per rank, worker 0).

Note [Resuming mid round-robin]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
In a pass where every consumer has ``n`` samples, ``_core.resume_point`` says where each worker of the
interrupted run stands. A new DataLoader, though, asks its worker 0 first, while the next batch of the
interrupted run was due from worker ``k mod W`` (``k`` batches of the pass consumed). So in the first
pass after a resume, DataLoader worker ``j`` plays the role (runs the schedule) of interrupted worker
``(j + k mod W) mod W``: the round robin then continues exactly where it stopped. Every pass has
``W * batches_per_epoch`` batches, a multiple of ``W``, so from the next pass on every worker plays
itself again. A role that already finished the pass (``resume_point`` rolled it over) yields nothing
in this pass: the interrupted run would not have asked it for another batch before the pass ended.
A new layout starts its elastic pass fresh (``k = 0``): every worker plays itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lerobot_stream import _core
from lerobot_stream.state import Phase, ResumeState


@dataclass(frozen=True)
class Layout:
    """The consumers of a run: ``world_size`` ranks × ``max(num_workers, 1)`` per rank."""

    world_size: int
    num_workers: int

    @property
    def consumers(self) -> int:
        return self.world_size * max(self.num_workers, 1)

    def same_as(self, other: Layout) -> bool:
        return self.world_size == other.world_size and max(self.num_workers, 1) == max(other.num_workers, 1)


@dataclass(frozen=True)
class FirstPass:
    """What one DataLoader worker runs in the first pass after a resume."""

    role: int  # the worker id whose schedule (consumer and RNG stream) this worker continues
    epoch: int
    skip: int  # samples of the role's schedule to fast-forward over
    phases: tuple[Phase, ...]  # non-empty: an elastic pass over what these phases left of ``epoch``
    epoch_start: int  # batches_consumed when ``epoch`` began (phase 0's start)


def layout_of(state: ResumeState) -> Layout:
    """The state's current layout (its world_size and num_workers must be set)."""
    if state.world_size is None or state.num_workers is None:
        raise ValueError("internal: the resume state's layout is unknown; fill it before normalising")
    return Layout(state.world_size, state.num_workers)


def fill_layout(state: ResumeState, layout: Layout) -> ResumeState:
    """``state`` with a missing world_size / num_workers read as ``layout`` (a bare dict: same layout)."""
    return replace(
        state,
        world_size=layout.world_size if state.world_size is None else state.world_size,
        num_workers=layout.num_workers if state.num_workers is None else state.num_workers,
    )


def phase_tuples(phases: tuple[Phase, ...], epoch_start: int) -> list[tuple[int, int, int, bool, int]]:
    """``phases`` as ``_core``'s (world_size, num_workers, batch_size, drop_last, batches) tuples."""
    out = []
    start = epoch_start
    for p in phases:
        out.append((p.world_size, p.num_workers, p.batch_size, p.drop_last, p.until - start))
        start = p.until
    return out


def samples_per_consumer(state: ResumeState, total_frames: int) -> int:
    """n of the current layout's pass: of the whole epoch, or of what ``state.phases`` left of it."""
    left = total_frames
    if state.phases:
        left = _core.leftover_frames(total_frames, phase_tuples(state.phases, state.epoch_start))
    return left // layout_of(state).consumers


def pass_start(state: ResumeState) -> int:
    """batches_consumed when the current layout's pass began."""
    return state.phases[-1].until if state.phases else state.epoch_start


def normalize(state: ResumeState, total_frames: int) -> ResumeState:
    """See Note [Normalised history]. ValueError when the counts cannot come from this dataset."""
    layout = layout_of(state)
    n = samples_per_consumer(state, total_frames)
    per_pass = _core.pass_batches(n, state.batch_size, layout.num_workers, state.drop_last)
    consumed = state.batches_consumed - pass_start(state)
    if state.phases:
        if consumed < per_pass:
            return state
        # The elastic pass is over: the epoch ended there; regular epochs follow.
        state = replace(state, epoch=state.epoch + 1, epoch_start=pass_start(state) + per_pass, phases=())
        n = total_frames // layout.consumers
        per_pass = _core.pass_batches(n, state.batch_size, layout.num_workers, state.drop_last)
        consumed = state.batches_consumed - state.epoch_start
    if per_pass == 0:
        if consumed:
            raise ValueError(
                f"Resume state says {consumed} batches were consumed since batch {state.epoch_start}, "
                f"but with {n} samples per worker and batch_size={state.batch_size} "
                f"(drop_last={state.drop_last}) no batch is ever produced"
            )
        return state
    epochs = consumed // per_pass
    return replace(state, epoch=state.epoch + epochs, epoch_start=state.epoch_start + epochs * per_pass)


def with_layout(state: ResumeState, layout: Layout, total_frames: int) -> ResumeState:
    """The normalised history continued by ``layout`` from ``batches_consumed`` on.

    See Note [Normalised history].
    """
    state = normalize(fill_layout(state, layout), total_frames)
    if layout.same_as(layout_of(state)):
        return replace(state, num_workers=layout.num_workers)
    phases = state.phases
    if state.batches_consumed > pass_start(state):
        phases += (
            Phase(
                world_size=layout_of(state).world_size,
                num_workers=layout_of(state).num_workers,
                batch_size=state.batch_size,
                drop_last=state.drop_last,
                until=state.batches_consumed,
            ),
        )
    moved = replace(state, world_size=layout.world_size, num_workers=layout.num_workers, phases=phases)
    return normalize(moved, total_frames)


def first_pass(state: ResumeState, layout: Layout, worker: int, total_frames: int) -> FirstPass:
    """Role, epoch and skip of DataLoader worker ``worker`` in the first pass after ``state``.

    See Note [Resuming mid round-robin]; ``state`` is any parsed state, ``layout`` the one running now.
    """
    state = with_layout(state, layout, total_frames)
    workers = max(layout.num_workers, 1)
    n = samples_per_consumer(state, total_frames)
    consumed = state.batches_consumed - pass_start(state)  # < the pass's batches (normalised)
    role = (worker + consumed % workers) % workers
    done, skip = _core.resume_point(
        consumed, state.batch_size, layout.num_workers, role, n, state.drop_last
    )  # done is 1 when the role already finished the pass, else 0
    return FirstPass(
        role=role,
        epoch=state.epoch,
        skip=n if done else int(skip),
        phases=state.phases,
        epoch_start=state.epoch_start,
    )


def advance(
    state: ResumeState,
    layout: Layout,
    total_frames: int,
    batches_consumed: int | None = None,
    batch_size: int | None = None,
    drop_last: bool | None = None,
) -> ResumeState:
    """``state`` (loaded, or the start of training) continued by ``layout`` up to the trainer's counters.

    ValueError when ``batches_consumed`` is below the state's, or when batch_size/drop_last change in
    the middle of a pass of one layout (the round-robin arithmetic of that pass needs one batch size).
    """
    state = with_layout(state, layout, total_frames)
    if batches_consumed is None:
        return state
    if batches_consumed < state.batches_consumed:
        raise ValueError(
            f"batches_consumed={batches_consumed} is below the {state.batches_consumed} batches of the "
            "loaded resume state: pass the batches consumed since the start of training"
        )
    batch_size = state.batch_size if batch_size is None else batch_size
    drop_last = state.drop_last if drop_last is None else drop_last
    changed = (batch_size, drop_last) != (state.batch_size, state.drop_last)
    if changed and state.batches_consumed > pass_start(state):
        raise ValueError(
            f"batch_size/drop_last changed from {state.batch_size}/{state.drop_last} (loaded resume state) "
            f"to {batch_size}/{drop_last} in the middle of an epoch with the same world size and "
            "num_workers: keep them until the epoch ends (or change the layout, which starts a new pass)"
        )
    moved = replace(state, batches_consumed=batches_consumed, batch_size=batch_size, drop_last=drop_last)
    return normalize(moved, total_frames)
