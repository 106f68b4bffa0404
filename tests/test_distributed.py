"""Two real gloo processes under ``accelerate launch`` running examples/train_streaming_multinode.py.

One launch trains two epochs on the tiny dataset (2 ranks x 2 DataLoader workers, checkpoints every
7 steps) and records every batch's sample indices per rank; a second launch resumes from the step-7
checkpoint (mid-epoch, mid round-robin of the workers) and runs to the same end. Contracts:

* per epoch, the ranks' samples are disjoint, no rank repeats a sample, and together they cover
  every frame except fewer than ``ranks x workers`` (the remainder that keeps shares equal);
* every rank runs the same number of batches per epoch (DDP would hang otherwise);
* the resumed run sees exactly the uninterrupted run's batches from step 8 on, across the epoch
  boundary, and ends with bit-identical model parameters;
* elastic: a third launch resumes the same step-7 checkpoint on THREE ranks. The two ranks' first 7
  batches plus the three ranks' rest of that epoch emit every frame once (but fewer than 3 x 2), the
  three ranks run the same number of batches (DDP does not hang), and their next epoch equals a fresh
  3-rank run's.

The launcher is ``--multi_gpu`` with the script's ``--cpu``: accelerate's own ``--cpu`` flag starts a
single process. If accelerate is missing or fewer than two ranks report, the tests skip and say why.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "train_streaming_multinode.py"
RANKS, WORKERS, BATCH, EPOCHS, RESUME_STEP = 2, 2, 4, 2, 7
ELASTIC_RANKS = 3
LAUNCH_TIMEOUT_S = 600

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(root: Path, out: Path, *extra: str, ranks: int = RANKS) -> dict[int, list[dict[str, Any]]]:
    """Runs the example on ``ranks`` processes; returns each rank's recorded batches (skips if fewer ran)."""
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("accelerate is not installed (pip install 'lerobot-stream[test]'): no multi-process run")
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(ranks), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(EXAMPLE), "--cpu", "--root", str(root), "--batch-size", str(BATCH),
        "--num-workers", str(WORKERS), "--epochs", str(EPOCHS), "--episode-pool-size", "3",
        "--checkpoint-dir", str(out / "ckpt"), "--checkpoint-every", str(RESUME_STEP),
        "--record-indices", str(out / "record"), "--log-every", "0", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"accelerate launch did not finish in {LAUNCH_TIMEOUT_S} s:\n{exc.stdout}\n{exc.stderr}")
    assert proc.returncode == 0, (
        f"accelerate launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    files = sorted((out / "record").glob("rank*.jsonl"))
    if len(files) < ranks:
        pytest.skip(f"only {len(files)} of {ranks} processes started under accelerate launch:\n{proc.stdout}")
    return {
        int(f.stem.removeprefix("rank")): [json.loads(line) for line in f.read_text().splitlines()]
        for f in files
    }


def _summaries(out: Path) -> dict[int, dict[str, Any]]:
    return {
        int(f.stem.removeprefix("summary_rank")): json.loads(f.read_text())
        for f in (out / "record").glob("summary_rank*.json")
    }


@pytest.fixture(scope="module")
def dataset_root(make_dataset: Any) -> Path:
    return make_dataset()


@pytest.fixture(scope="module")
def full_run(dataset_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full")
    return out, _launch(dataset_root, out)


@pytest.fixture(scope="module")
def resumed_run(dataset_root: Path, full_run: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory):
    full_out, _ = full_run
    checkpoint = full_out / "ckpt" / f"step_{RESUME_STEP:06d}.pt"
    assert checkpoint.is_file(), f"the full run wrote no checkpoint at step {RESUME_STEP}"
    out = tmp_path_factory.mktemp("resumed")
    return out, _launch(dataset_root, out, "--resume", str(checkpoint))


@pytest.fixture(scope="module")
def elastic_run(dataset_root: Path, full_run: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory):
    full_out, _ = full_run
    checkpoint = full_out / "ckpt" / f"step_{RESUME_STEP:06d}.pt"
    out = tmp_path_factory.mktemp("elastic")
    return out, _launch(dataset_root, out, "--resume", str(checkpoint), ranks=ELASTIC_RANKS)


def test_ranks_split_every_epoch_disjointly_with_equal_batch_counts(
    dataset_root: Path, full_run: tuple[Path, dict]
) -> None:
    _, records = full_run
    total_frames = json.loads((dataset_root / "meta" / "info.json").read_text())["total_frames"]
    for epoch in range(EPOCHS):
        per_rank = {r: [b["index"] for b in batches if b["epoch"] == epoch] for r, batches in records.items()}
        counts = {r: len(b) for r, b in per_rank.items()}
        assert len(set(counts.values())) == 1, f"epoch {epoch}: batches per rank differ: {counts}"
        samples = {r: [i for b in batches for i in b] for r, batches in per_rank.items()}
        for r, idx in samples.items():
            assert len(idx) == len(set(idx)), f"epoch {epoch}: rank {r} repeats samples"
        assert not set(samples[0]) & set(samples[1]), f"epoch {epoch}: ranks share samples"
        covered = set(samples[0]) | set(samples[1])
        assert covered <= set(range(total_frames))
        assert total_frames - len(covered) < RANKS * WORKERS, (
            f"epoch {epoch}: {total_frames - len(covered)} of {total_frames} frames never emitted"
        )


def test_resumed_run_continues_exactly(full_run: tuple[Path, dict], resumed_run: tuple[Path, dict]) -> None:
    full_out, full = full_run
    resumed_out, resumed = resumed_run
    for rank in range(RANKS):
        expected = [(b["step"], b["epoch"], b["index"]) for b in full[rank][RESUME_STEP:]]
        got = [(b["step"], b["epoch"], b["index"]) for b in resumed[rank]]
        assert {e for _, e, _ in expected} == set(range(EPOCHS)), "the resumed part must cross an epoch"
        assert got == expected, f"rank {rank}: resumed batches differ from the uninterrupted run"
    full_params = {r: s["param_sum"] for r, s in _summaries(full_out).items()}
    resumed_params = {r: s["param_sum"] for r, s in _summaries(resumed_out).items()}
    assert resumed_params == full_params, "model parameters after the resumed run differ"


def test_elastic_resume_on_three_ranks_finishes_the_epoch_once(
    dataset_root: Path, full_run: tuple[Path, dict], elastic_run: tuple[Path, dict]
) -> None:
    from lerobot_stream import StreamingLeRobotDataset
    from streaming_helpers import run_loader

    _, full = full_run
    _, elastic = elastic_run
    assert sorted(elastic) == list(range(ELASTIC_RANKS))
    interrupted = full[0][RESUME_STEP - 1]["epoch"]
    before = [i for rank in full.values() for b in rank[:RESUME_STEP] for i in b["index"]]
    assert {b["epoch"] for rank in full.values() for b in rank[:RESUME_STEP]} == {interrupted}
    rest = {r: [b for b in batches if b["epoch"] == interrupted] for r, batches in elastic.items()}
    assert len({len(b) for b in rest.values()}) == 1, "ranks ran different batch counts (DDP would hang)"
    emitted = before + [i for batches in rest.values() for b in batches for i in b["index"]]
    assert len(emitted) == len(set(emitted)), "a frame was emitted twice in the interrupted epoch"
    total = json.loads((dataset_root / "meta" / "info.json").read_text())["total_frames"]
    assert total - len(emitted) < ELASTIC_RANKS * WORKERS
    for rank, batches in elastic.items():  # the next epoch: a fresh 3-rank run's (the example's arguments)
        fresh = StreamingLeRobotDataset(
            dataset_root.name, root=dataset_root, episode_pool_size=3, seed=0, return_uint8=True,
            num_workers=WORKERS, rank=rank, world_size=ELASTIC_RANKS,
        )  # fmt: skip
        fresh.set_epoch(interrupted + 1)
        expected = [b["index"].tolist() for b in run_loader(fresh, batch_size=BATCH, num_workers=WORKERS)]
        got = [b["index"] for b in batches if b["epoch"] == interrupted + 1]
        assert got == expected, f"rank {rank}: the epoch after the elastic resume is not the 3-rank run's"
