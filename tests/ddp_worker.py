"""Trains one tiny full fine-tune (one process, or each rank under torchrun) and saves the last epoch's weights.

Usage: python tests/ddp_worker.py DATA OUT.pt BATCH_SIZE   (TRANSFERLAB_HOME names the run store)
"""

from __future__ import annotations

import sys

import torch

from engine.plan.config import TrainConfig
from engine.plan.make import get_plan
from engine.plan.stored import save_run_plan
from engine.runs.store import RunStore
from engine.train import distributed
from engine.train.loop import Trainer

data, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
rank, world = distributed.init()
cfg = TrainConfig.create(
    data=data,
    strategy="full",
    head_epochs=1,
    finetune_epochs=1,
    batch_size=batch,
    views=1,
    val_fraction=0.34,
    dropout=0.0,
    augment="light",
)
store = RunStore()
run = store.create(cfg.to_dict(), f"ddp-{world}") if rank == 0 else None
if run is not None:  # rank 0 plans; every rank runs the plan it stored
    save_run_plan(run, get_plan(cfg))
run = store.open(distributed.share_run_id(run.id if run else None))
metrics = Trainer(cfg, run).fit()
if rank == 0:
    assert metrics.status == "finished", metrics.error
    torch.save(
        {
            "last": run.load_checkpoint("last")["model"],
            "best": run.load_checkpoint("best")["model"],
            "steps": len(run.events("step")),
            "world": world,
        },
        out,
    )
