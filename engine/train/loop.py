"""The training loop: the plan's phases over an execution path, named events for the callbacks, cancel by exception.

Epoch 0 validates the model the run starts from (the linear probe's head), so it competes with every fine-tuned epoch:
the run keeps whichever is best on val and can never end below its probe. The test split is scored once, at the end.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import in_words
from engine.metrics import per_class_accuracy
from engine.model.device import autocast, pick_device, precision_name
from engine.plan.config import TrainConfig
from engine.plan.make import Planned, get_plan, load_data, load_planned, save_planned
from engine.runs.events import Cancelled, CancelToken
from engine.runs.store import Run, RunLock
from engine.train import distributed
from engine.train.build import build
from engine.train.callbacks import (EVENTS, RANK_EVENTS, Checkpoints, DataStats, Diagnostics, Recorder, StartingModel,
                                    TimeLeft, restore)
from engine.train.finish import end_metrics, final_metrics
from engine.train.losses import make_loss, sample_order
from engine.model.catalogue import has_batchnorm
from engine.train.optim import (Schedule, apply_schedule, build_optimizer, freeze, set_bn_momentum, set_plan,
                                set_train_mode)
from engine.train.paths import make_path
from engine.train.progress import SetupProgress


class Trainer:
    """Runs one config into one run folder. `fit()` never raises for training errors: it records them."""

    def __init__(self, cfg: TrainConfig, run: Run, cancel: CancelToken | None = None, planned: Planned | None = None):
        self.cfg, self.run, self.cancel, self.planned = cfg, run, cancel or CancelToken(), planned
        self.rank, self.world = distributed.init()
        if self.rank != 0 and run is not None:
            self.run = distributed.ReadOnlyRun(run)
        self.device = pick_device(cfg.runtime.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.precision = precision_name(self.device)
        self.callbacks = sorted([TimeLeft(), Diagnostics(), Recorder(), Checkpoints(), DataStats(), StartingModel()],
                                key=lambda c: c.order)
        self.step, self.epoch, self.phase, self.best, self.resumed_from = 0, 0, 0, (-1.0, -1), 0
        self.metrics, self.validated, self.is_best, self._stop_checked = {}, False, False, 0.0
        self.views, self.images, self.best_logits = None, None, None  # cached views, augmented images (paths.py)

    def __call__(self, event: str) -> None:
        if event not in EVENTS:
            raise ValueError(f"{event!r} is not an event; the events are {', '.join(EVENTS)}")
        for cb in self.callbacks if self.rank == 0 or event in RANK_EVENTS else []:
            cb(event, self)  # other ranks validate (before_fit, after_epoch) and keep statistics, but write nothing

    def check_cancel(self) -> None:
        """Raises `Cancelled` when the token is set or a stop was asked through the run store (by another process)."""
        if self.run is not None and time.monotonic() - self._stop_checked > 0.5:
            self._stop_checked = time.monotonic()
            if self.run.stop_requested():
                self.cancel.cancel()
        if self.cancel.cancelled:
            raise Cancelled()

    def setup(self) -> None:
        """The plan (made now unless given or stored), the model, optimiser, loss and labels."""
        cfg = self.cfg
        self.report = SetupProgress(self.run if self.rank == 0 else None)
        if self.rank == 0 and self.planned is None and not (self.run and (self.run.path / "plan.json").exists()):
            self.report.expect(cfg.optim.promised_seconds())
            self.planned = get_plan(cfg, self.report, self.check_cancel, self.device)
            save_planned(self.run.path, self.planned) if self.run is not None else None
        distributed.barrier()  # the other ranks read the plan rank 0 made: one plan, made once
        if self.planned is None:  # a plan given at submission, or a resumed run: never made again
            self.report("load and check data", 0.0)
            self.planned = load_planned(self.run.path, load_data(cfg))
            self.report("load and check data", 1.0)
        self.report.expect(self.planned.plan.run_s)
        torch.manual_seed(cfg.runtime.seed)  # the new head's initialisation and dropout masks follow the run's seed
        b = build(cfg, self.planned, self.device)  # refuses a plan that fails preflight
        self.ds, self.spec, self.model, self.weights, self.groups, self.plan, self.split, self.classes = (
            b.ds, b.spec, b.model, b.weights, b.groups, b.plan, b.split, b.ds.classes)
        self.opt = build_optimizer(self.model, self.groups, cfg.optim.weight_decay)
        self.ytr, self.yva = (torch.tensor([it.label for it in items]) for items in (self.ds.train, self.ds.val))
        self.counts = torch.bincount(self.ytr, minlength=len(self.classes))
        self.loss_fn = make_loss(cfg.regularisation.balance, self.counts, cfg.regularisation.label_smoothing)
        n_shard = len(distributed.shard(np.arange(len(self.ytr)), self.rank, self.world))
        self.steps_per_epoch = -(-n_shard // cfg.optim.batch_size)
        self.phases = [(1, 0, self.plan.head_epochs), (2, self.plan.head_epochs, self.plan.finetune_epochs)]

    def one_batch(self, path, idx: np.ndarray, x: torch.Tensor, soft: torch.Tensor | None) -> tuple[float, int]:
        """Forward, loss, backward, optimiser step on one batch; returns (loss, correct). The LR finder runs it too."""
        with autocast(self.device):
            logits = path.logits(x)
        logits, y = logits.float(), self.ytr[idx].to(self.device)
        loss = self.loss_fn(logits, y) if soft is None else F.cross_entropy(logits, soft)  # MixUp's soft targets
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # under torchrun, DDP averages the gradients across processes here
        self("after_backward")
        grads = [p for p in self.model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.cfg.optim.grad_clip)
        self.opt.step()
        loss_v, right = torch.stack([loss.detach(), (logits.argmax(1) == y).sum().float()]).tolist()  # one host sync
        return loss_v, int(right)

    def _epoch(self, path, sched: Schedule, step0: int) -> None:
        set_train_mode(self.model, self.groups, [True] * len(self.groups) if self.plan.bn_frozen_stats
                       else self.phase_frozen)
        order = distributed.shard(sample_order(self.ytr, self.counts, self.cfg.regularisation.balance == "sampler",
                                               self.cfg.runtime.seed + self.epoch), self.rank, self.world)
        t0 = self.epoch_t0 = time.perf_counter()
        total, correct, seen, self.validated = 0.0, 0, 0, False
        self("before_epoch")
        for idx, x, soft in path.train_batches(order, self.epoch):
            self.check_cancel()
            lrs = apply_schedule(self.opt, sched.factor(self.step - step0))
            loss, right = self.one_batch(path, idx, x, soft)
            self.step += 1
            total, correct, seen = total + loss * len(idx), correct + right, seen + len(idx)
            self.step_log = dict(loss=loss, lrs=lrs, running_loss=total / seen, running_acc=correct / seen)
            self("after_step")
        self.epoch_log = dict(train_loss=total / max(1, seen), train_acc=correct / max(1, seen),
                              images_per_s=seen / max(time.perf_counter() - t0, 1e-9))
        self.validate(path)

    def validate(self, path, progress=None) -> None:
        """Validates on the val split (sharded across processes), then `after_validate` and `after_epoch`."""
        t0 = time.perf_counter()
        fn = (lambda rows: path.val_logits(rows, progress)) if progress else path.val_logits
        logits = distributed.val_logits(fn, len(self.yva), self.rank, self.world)
        pred = logits.argmax(1)
        self.epoch_log.update(val_loss=float(F.cross_entropy(logits, self.yva)),
                              val_acc=float((pred == self.yva).float().mean()),
                              per_class=list(per_class_accuracy(self.yva.numpy(), pred.numpy(), self.classes).values()),
                              val_seconds=time.perf_counter() - t0, seconds=time.perf_counter() - self.epoch_t0)
        self.validated = True
        self("after_validate")
        self.is_best = self.epoch_log["val_acc"] > self.best[0]
        if self.is_best:  # validated through the images, its logits are the final val score's: not computed again
            self.best, self.best_logits = (self.epoch_log["val_acc"], self.epoch), logits if path.exact_val else None
        self("after_epoch")

    def _start_phase(self, phase: int, n_epochs: int, first: int, done: int):
        """Freezes, sets BatchNorm momentum and rates for `phase`; returns (path, schedule)."""
        plan, n, floor, steps = self.plan, len(self.groups), self.cfg.optim.min_lr_ratio, n_epochs*self.steps_per_epoch
        self.phase, self.phase_epochs, self.phase_first, self.announce = phase, n_epochs, first, done <= first
        if phase == 1:
            self.phase_frozen, self.phase_lrs = [True] * (n - 1) + [False], [0.0] * (n - 1) + [plan.head_lr]
            sched = Schedule(steps, floor=floor)
        else:
            self.phase_frozen, self.phase_lrs = list(plan.frozen), list(plan.lrs)
            sched = Schedule(steps, plan.warmup_epochs * self.steps_per_epoch, floor=floor)
        freeze(self.model, self.groups, self.phase_frozen, self.cfg.regularisation.train_bn and phase == 2)
        if phase == 2 and self.cfg.regularisation.bn_momentum is not None:
            set_bn_momentum(self.model, self.groups, self.phase_frozen, self.cfg.regularisation.bn_momentum)
        set_plan(self.opt, self.phase_lrs)
        path = make_path(self, phase)
        path.parallel(self.world)  # after freezing: DDP registers the parameters that train in this phase
        kept = plan.bn_frozen_stats and phase == 2 and has_batchnorm(plan.backbone)
        self.path_name = path.name + ("; BatchNorm statistics kept" if kept else "")
        self("before_phase")
        return path, sched

    def fit(self) -> dict:
        """Trains, or resumes, the run under its lock. Returns the final metrics (also written to metrics.json)."""
        t_start = time.time()
        with RunLock(self.run) if self.rank == 0 else nullcontext():  # RunBusy when another process trains it
            self.run.set_status(state="running", pid=os.getpid(), started=t_start)
            self.run.clear_stop()
            return self._fit(t_start)

    def _fit(self, t_start: float) -> dict:
        try:
            ck = self.run.load_checkpoint("last")
            self.run.truncate_events(ck["events_offset"] if ck else 0)  # no event of an interrupted attempt stays
            self.setup()
            done = self.resumed_from = restore(self, ck)
            self.run.write_json("run_info.json", {"classes": self.classes, "weights": self.weights.to_dict()})
            self("before_fit")  # StartingModel validates epoch 0 (the probe's head) on a fresh run
            for phase, first, n_epochs in self.phases:
                if n_epochs == 0 or done >= first + n_epochs:
                    continue
                path, sched = self._start_phase(phase, n_epochs, first, done)
                for self.epoch in range(max(done, first) + 1, first + n_epochs + 1):
                    self._epoch(path, sched, first * self.steps_per_epoch)
                    done = self.epoch
                getattr(path, "close", lambda: None)()
            end_metrics(self, t_start, "finished", metrics=final_metrics(self))
            self("after_fit")
        except Cancelled:
            end_metrics(self, t_start, "cancelled")
            self("after_cancel")
        except Exception as e:  # noqa: BLE001 - a failed run keeps its metrics and last checkpoint
            end_metrics(self, t_start, "failed", in_words(e))
            self.trace = traceback.format_exc()  # Recorder writes it to error.txt (rank 0 alone writes the run)
            if self.rank:
                print(f"rank {self.rank}: {self.trace}", file=sys.stderr)
            self("after_fail")
        return self.metrics
