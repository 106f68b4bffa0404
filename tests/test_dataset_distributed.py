"""Real multi-process DDP (gloo): ranks are detected from torch.distributed and together emit every
frame exactly once per epoch, the same count on every rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lerobot_stream import StreamingLeRobotDataset
from streaming_helpers import data_table, run_loader

WORLD = 2


def _rank_main(rank: int, root: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=WORLD)
    try:
        ds = StreamingLeRobotDataset("synth", root=root)  # no rank/world_size: detected
        indices = torch.cat([b["index"] for b in run_loader(ds, batch_size=4, num_workers=0)]).tolist()
        Path(out, f"rank{rank}.json").write_text(
            json.dumps({"rank": ds.rank, "world": ds.world_size, "idx": indices})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_from_torch_distributed_split_exactly_once(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(num_cameras=1, height=48, width=64)
    mp.spawn(_rank_main, args=(str(root), str(tmp_path)), nprocs=WORLD, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, WORLD), (1, WORLD)]
    total = data_table(root).num_rows
    per_rank = [r["idx"] for r in results]
    assert {len(p) for p in per_rank} == {total // WORLD}
    emitted = [i for p in per_rank for i in p]
    assert len(set(emitted)) == len(emitted) == total - total % WORLD
