#!/usr/bin/env python
"""Distributed, resumable training on a streamed LeRobot v3 dataset with Hugging Face Accelerate.

A small real policy (a CNN per camera + an MLP on ``observation.state`` → ``action``) trained with
DDP on any number of processes and nodes:

    accelerate launch --num_processes 2 --cpu examples/train_streaming_multinode.py --root data/ds
    accelerate launch ... examples/train_streaming_multinode.py --root data/ds --resume ckpt/step_000200.pt
    accelerate launch ... examples/train_streaming_multinode.py --root data/ds --dummy   # data loading only

Multinode under SLURM: examples/slurm_train.sh.

Note [Why the DataLoader is not prepared by Accelerate]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``StreamingLeRobotDataset`` resolves its rank and world size itself (Accelerate's ``PartialState``,
torch.distributed or the launcher's environment) and splits every epoch into equal, disjoint parts
per (rank, DataLoader worker): each rank decodes only its own samples and every rank gets the same
number of batches, so DDP never waits on a rank that ran out. ``accelerator.prepare(dataloader)``
would undo that: for an IterableDataset it either makes every rank iterate everything and keep every
world_size-th batch (``IterableDatasetShard``: world_size times the decoding), or, with
``dispatch_batches``, has rank 0 load all batches and broadcast them (all decoding on rank 0).
So only the model and optimizer go through ``accelerator.prepare``; there is no DistributedSampler
(an IterableDataset takes no sampler), and batches are moved to the device here.

Note [Exact resume]
~~~~~~~~~~~~~~~~~~~
A checkpoint stores the model, the optimizer and the stream position ``dataset.state_dict(
batches_consumed=B, batch_size=b)``, where B counts this rank's batches since the start of training
(all ranks step together, so B and the state are the same on every rank). ``dataset.load_state_dict``
makes the next iteration continue from batch B, across epoch boundaries: with the same number of
processes and workers the resumed run sees exactly the batches the uninterrupted run would have
seen; with another number (a preempted job back on more or fewer GPUs, ``--num-workers`` changed)
the rest of the interrupted epoch is split equally among the new ranks and workers, each remaining
frame once, and later epochs are those of the new layout (elastic resume). ``dataset.resume_epoch``
says which epoch the first pass continues. Keep seed and episode pool size (the dataset raises
ValueError otherwise), and the batch size unless the layout changes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from lerobot_stream import StreamingLeRobotDataset


class StreamingPolicy(nn.Module):
    """Per-camera CNN encoders (shared weights) + state MLP → action."""

    def __init__(self, num_cameras: int, state_dim: int, action_dim: int, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=4, padding=2),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(num_cameras * width + state_dim, 128),
            nn.ReLU(),
            nn.Linear(128, action_dim),
        )

    def forward(self, images: list[torch.Tensor], state: torch.Tensor) -> torch.Tensor:
        """``images``: uint8 [B, 3, H, W] per camera; ``state``: [B, state_dim]."""
        features = [self.encoder(img.float().div_(255.0)) for img in images]
        return self.head(torch.cat([*features, state], dim=1))


def build_parser() -> argparse.ArgumentParser:
    """The example's command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="dataset root (local path or URL)")
    p.add_argument("--repo-id", default=None, help="repo_id (default: the root's last name)")
    p.add_argument("--batch-size", type=int, default=32, help="per-process batch size")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per process")
    p.add_argument("--episode-pool-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1, help="stop after this many epochs")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (batches)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"))
    p.add_argument("--checkpoint-every", type=int, default=0, help="save every N steps (0: only at the end)")
    p.add_argument("--resume", type=Path, default=None, help="checkpoint file to continue from")
    p.add_argument("--dummy", action="store_true", help="pure data loading: no model, throughput logging")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument(
        "--record-indices",
        type=Path,
        default=None,
        help="write every batch's sample indices to DIR/rank{R}.jsonl (for verification)",
    )
    p.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
    return p


def make_loader(args: argparse.Namespace) -> tuple[StreamingLeRobotDataset, DataLoader]:
    """The streaming dataset (rank and world size resolved by the dataset) and a plain DataLoader."""
    dataset = StreamingLeRobotDataset(
        args.repo_id or Path(str(args.root).rstrip("/")).name,
        root=args.root,
        episode_pool_size=args.episode_pool_size,
        seed=args.seed,
        return_uint8=True,
        num_workers=max(args.num_workers, 1),
    )
    # Not passed through accelerator.prepare: see Note [Why the DataLoader is not prepared by Accelerate].
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.num_workers)
    return dataset, loader


def batches_per_epoch(dataset: StreamingLeRobotDataset, batch_size: int, num_workers: int) -> int:
    """Batches this rank's DataLoader yields per epoch (every worker batches its equal share)."""
    workers = max(num_workers, 1)
    per_worker = len(dataset) // workers
    return workers * math.ceil(per_worker / batch_size)


def save_checkpoint(
    accelerator: Accelerator,
    path: Path,
    dataset: StreamingLeRobotDataset,
    model: nn.Module | None,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    batch_size: int,
) -> None:
    """Rank 0 writes model, optimizer and stream position; every rank waits until it is on disk."""
    if accelerator.is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = dataset.state_dict(batches_consumed=step, batch_size=batch_size)  # the same on every rank
        state: dict[str, Any] = {"stream": stream, "step": step}
        if model is not None and optimizer is not None:
            state["model"] = accelerator.unwrap_model(model).state_dict()
            state["optimizer"] = optimizer.state_dict()
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
    accelerator.wait_for_everyone()


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Runs training (or pure loading with --dummy); returns a summary of this rank's run."""
    accelerator = Accelerator(cpu=args.cpu)
    torch.manual_seed(args.seed)
    dataset, loader = make_loader(args)
    cameras = dataset.video_keys
    model = optimizer = None
    if not args.dummy:
        features = dataset.features
        model = StreamingPolicy(
            len(cameras), features["observation.state"]["shape"][0], features["action"]["shape"][0]
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        model, optimizer = accelerator.prepare(model, optimizer)

    step = start_epoch = 0
    if args.resume is not None:
        state = torch.load(args.resume, map_location="cpu", weights_only=True)
        if model is not None:
            accelerator.unwrap_model(model).load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        dataset.load_state_dict(state["stream"])
        step = int(state["step"])
        start_epoch = dataset.resume_epoch

    per_epoch = batches_per_epoch(dataset, args.batch_size, args.num_workers)
    record = None
    if args.record_indices is not None:
        args.record_indices.mkdir(parents=True, exist_ok=True)
        record = (args.record_indices / f"rank{dataset.rank}.jsonl").open("a")
    accelerator.print(
        f"[train] world_size={dataset.world_size} samples/rank/epoch={len(dataset)} "
        f"batches/rank/epoch={per_epoch} start step={step}"
    )

    device = accelerator.device
    started, samples, frames, loss_value = time.perf_counter(), 0, 0, math.nan
    done = False
    for epoch in range(start_epoch, args.epochs):
        for batch in loader:
            images = [batch[k].to(device, non_blocking=True) for k in cameras]
            if model is not None:
                state_in = batch["observation.state"].to(device)
                loss = nn.functional.mse_loss(model(images, state_in), batch["action"].to(device))
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                optimizer.step()
                loss_value = float(loss.detach())
            step += 1
            samples += len(batch["index"])
            frames += sum(int(img.shape[0]) for img in images)
            if record is not None:
                record.write(
                    json.dumps({"step": step, "epoch": epoch, "index": batch["index"].tolist()}) + "\n"
                )
            if args.log_every and step % args.log_every == 0:
                rate = samples / (time.perf_counter() - started)
                accelerator.print(
                    f"[train] epoch {epoch} step {step}"
                    + ("" if args.dummy else f" loss {loss_value:.4f}")
                    + " "
                    f"{rate:.1f} samples/s/rank {rate * len(cameras):.1f} frames/s/rank"
                )
            if args.checkpoint_every and step % args.checkpoint_every == 0:
                save_checkpoint(
                    accelerator,
                    args.checkpoint_dir / f"step_{step:06d}.pt",
                    dataset,
                    model,
                    optimizer,
                    step,
                    args.batch_size,
                )
            if args.max_steps and step >= args.max_steps:
                done = True
                break
        if done:
            break
    elapsed = time.perf_counter() - started
    if record is not None:
        record.close()
    save_checkpoint(
        accelerator, args.checkpoint_dir / "last.pt", dataset, model, optimizer, step, args.batch_size
    )
    totals = torch.tensor([samples, frames], dtype=torch.float64, device=device)
    totals = accelerator.reduce(totals, reduction="sum")
    accelerator.print(
        f"[train] done: {step} steps, {totals[0] / elapsed:.1f} samples/s and {totals[1] / elapsed:.1f} "
        f"frames/s over {dataset.world_size} processes ({elapsed:.1f} s)"
        + ("" if args.dummy else f", final loss {loss_value:.5f}")
    )
    summary = {"rank": dataset.rank, "step": step, "loss": loss_value}
    if model is not None:
        params = torch.cat([p.detach().flatten().cpu() for p in accelerator.unwrap_model(model).parameters()])
        summary["param_sum"] = float(params.double().sum())
    accelerator.end_training()
    return summary


def main(argv: list[str] | None = None) -> None:
    """Parses arguments and trains."""
    args = build_parser().parse_args(argv)
    summary = train(args)
    if args.record_indices is not None:
        (args.record_indices / f"summary_rank{summary['rank']}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
