"""Data-parallel training under `torchrun --nproc_per_node=N`: one process per device, gradients averaged.

Each rank trains on its own shard of every epoch (a shared seeded order, split by torch's DistributedSampler) through
`DistributedDataParallel` (see `engine.train.routes`), so every rank holds the same model; validation is sharded and
gathered; only rank 0 writes the run store and checkpoints. Backend: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

if TYPE_CHECKING:
    from engine.runs.events import Record
    from engine.runs.store import Run


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
    """The run store as ranks other than 0 see it: its reads go to the real run (to resume from its checkpoint), its
    writes do nothing, so rank 0 stays the run's one writer. Each method is named: a write the trainer gains later
    fails loudly here instead of being dropped unseen."""

    def __init__(self, run: Run):
        self._run = run

    # what the other ranks read
    @property
    def id(self) -> str:
        return self._run.id

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def config(self) -> dict:
        return self._run.config

    def events(self, kind: str | None = None) -> list[dict]:
        return self._run.events(kind)

    def events_offset(self) -> int:
        return self._run.events_offset()

    def status(self) -> dict:
        return self._run.status()

    def stop_requested(self) -> bool:
        return self._run.stop_requested()

    def load_checkpoint(self, name: str) -> dict | None:
        return self._run.load_checkpoint(name)

    def read_json(self, name: str) -> dict | None:
        return self._run.read_json(name)

    def read_tensors(self, name: str) -> dict | None:
        return self._run.read_tensors(name)

    # what rank 0 alone writes
    def append(self, event: Record | dict) -> None:
        pass

    def truncate_events(self, offset: int) -> None:
        pass

    def set_status(self, **fields: Any) -> None:
        pass

    def reserve(self) -> None:
        pass

    def release_reserve(self) -> None:
        pass

    def clear_stop(self) -> None:
        pass

    def save_checkpoint(self, name: str, state: dict) -> None:
        return None

    def write_json(self, name: str, data: dict) -> None:
        pass

    def write_tensors(self, name: str, tensors: dict) -> None:
        pass
