"""Data-parallel training under `torchrun --nproc_per_node=N`: one process per device, gradients averaged.

Each rank trains on its own shard of every epoch (a shared seeded order, split by torch's DistributedSampler) through
`DistributedDataParallel` (see `engine.train.routes`), so every rank holds the same model; validation is sharded and
gathered; only rank 0 writes the run store and checkpoints. Backend: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


def init() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def shard(order: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's part of an epoch's order (torch's DistributedSampler over positions: padded by wrapping, so every
    rank takes the same number of steps)."""
    if world == 1:
        return order
    positions = DistributedSampler(range(len(order)), num_replicas=world, rank=rank, shuffle=False)
    return order[list(positions)]


def val_logits(fn: Callable[[np.ndarray | None], torch.Tensor], n: int, rank: int, world: int) -> torch.Tensor:
    """Validation sharded across ranks: each computes `fn(rows)` on every world-th row, and every rank gets all `n`
    rows back in order (a single process computes them at once)."""
    if world == 1:
        return fn(None)
    rows = np.arange(rank, n, world)
    parts: list = [None] * world
    dist.all_gather_object(parts, (rows, fn(rows) if len(rows) else None))
    out = None
    for r, logits in parts:
        if logits is None:
            continue
        out = out if out is not None else torch.zeros(n, logits.shape[1], dtype=logits.dtype)
        out[torch.as_tensor(r)] = logits
    return out


def share_run_id(run_id: str | None) -> str:
    """Rank 0's run id, on every rank."""
    if not dist.is_initialized():
        return run_id or ""
    box = [run_id]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ReadOnlyRun:
    """The run store as ranks other than 0 see it: reads go to the real run (to resume), writes are dropped."""

    _READS = {"id", "path", "config", "events", "events_offset", "status", "load_checkpoint", "read_json"}

    def __init__(self, run):
        self._run = run

    def __getattr__(self, name):
        if name in self._READS:
            return getattr(self._run, name)
        return lambda *a, **k: None
