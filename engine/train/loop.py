"""The training loop: the plan's phases over an execution path, named events for the callbacks, cancel by exception.

Epoch 0 validates the model the run starts from (the linear probe's head), so it competes with every fine-tuned epoch:
the run keeps whichever is best on val and can never end below its probe. The test split is scored once, at the end.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

from engine.data import augment as aug
from engine.train import distributed
from engine.data.batches import AugmentedImages, EpochBatches
from engine.train.build import build
from engine.train.callbacks import Checkpoints, DataStats, Diagnostics, Recorder, SetupProgress, TimeLeft
from engine.plan.config import TrainConfig
from engine.model.device import autocast, pick_device, precision_name
from engine.runs.events import Cancelled, CancelToken
from engine.train.paths import ActivationPath, FeaturePath, FullPath, predict_logits
from engine.train.losses import make_loss, sample_order
from engine.metrics import per_class_accuracy, score
from engine.train.optim import Schedule, apply_schedule, build_optimizer, freeze, set_bn_momentum, set_plan, set_train_mode
from engine.plan.make import Planned, get_plan, load_data, load_planned, save_planned
from engine.errors import TransferLabError
from engine.plan.preflight import blocking, preflight
from engine.model.resources import checkpoint_bytes, need_disk
from engine.runs.store import Run, RunLock
from engine.train.views import cache_views


def _in_words(e: Exception) -> str:
    """An exception as one line a person can act on: an OS error's reason and file, else type and message."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror} ({e.filename})" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}" if not isinstance(e, TransferLabError) else str(e)


class Trainer:
    """Runs one config into one run folder. `fit()` never raises for training errors: it records them."""

    def __init__(self, cfg: TrainConfig, run: Run, cancel: CancelToken | None = None, planned: Planned | None = None):
        self.cfg, self.run, self.cancel, self.planned = cfg, run, cancel or CancelToken(), planned
        self.rank, self.world = distributed.init()
        if self.rank != 0 and run is not None:
            self.run = distributed.ReadOnlyRun(run)
        self.device = pick_device(cfg.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.precision = precision_name(self.device)
        self.callbacks = sorted([TimeLeft(), Diagnostics(), Recorder(), Checkpoints(), DataStats()], key=lambda c: c.order)
        self.step, self.epoch, self.phase, self.best, self.resumed_from, self.step_in_epoch = 0, 0, 0, (-1.0, -1), 0, 0
        self.metrics: dict = {}
        self.validated, self.is_best, self._stop_checked = False, False, 0.0

    def __call__(self, event: str) -> None:
        if self.rank == 0 or event in ("before_fit", "after_backward", "after_epoch"):
            for cb in self.callbacks:
                cb(event, self)

    def check_cancel(self) -> None:
        """Raises `Cancelled` when this process's token is set or a stop was requested through the run store (a
        stop from another process: the dashboard stopping a run started from the CLI)."""
        now = time.monotonic()
        if self.run is not None and now - self._stop_checked > 0.5:
            self._stop_checked = now
            if self.run.stop_requested():
                self.cancel.cancel()
        if self.cancel.cancelled:
            raise Cancelled()

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        """The plan (made now unless given), the model, optimiser, loss and labels."""
        cfg = self.cfg
        progress = SetupProgress(self.run) if self.run is not None and self.rank == 0 else lambda *a: None
        if self.rank == 0 and self.planned is None and not self._stored_plan():
            self.planned = get_plan(cfg, progress, self.check_cancel, self.device)
            save_planned(self.run.path, self.planned) if self.run is not None else None
        distributed.barrier()  # the other ranks read the plan rank 0 made: one plan, made once
        if self.planned is None:
            progress("load and check data", 0.0)  # a plan given at submission, or a resumed run: never made again
            self.planned = load_planned(self.run.path, load_data(cfg))
            progress("load and check data", 1.0)
        torch.manual_seed(cfg.seed)  # the new head's initialisation and dropout masks follow the run's seed
        stop = blocking(preflight(self.planned.plan))
        if stop:
            raise ValueError(f"preflight: {stop[0].message}. Fix: {stop[0].fix}")
        b = build(cfg, self.planned, self.device)
        if self.run is not None and self.rank == 0:
            need_disk(self.run.path, checkpoint_bytes(b.model), f"run {self.run.id}'s checkpoints")
        self.ds, self.spec, self.model, self.weights, self.groups, self.plan, self.split = (
            b.ds, b.spec, b.model, b.weights, b.groups, b.plan, b.split)
        self.classes = self.ds.classes
        self.opt = build_optimizer(self.model, self.groups, cfg.weight_decay)
        self.ytr = torch.tensor([it.label for it in self.ds.train])
        self.yva = torch.tensor([it.label for it in self.ds.val])
        counts = torch.bincount(self.ytr, minlength=len(self.classes))
        self.counts, self.loss_fn = counts, make_loss(cfg.balance, counts, cfg.label_smoothing)
        self.soft_loss = SoftTargetCrossEntropy()
        self.steps_per_epoch = -(-len(distributed.shard(np.arange(len(self.ytr)), self.rank, self.world))
                                 // cfg.batch_size)
        self.phases = [(1, 0, self.plan.head_epochs), (2, self.plan.head_epochs, self.plan.finetune_epochs)]
        self.plan_estimate = {"score_s": self.plan.score_s, "finetune_epoch_s": self.plan.finetune_epoch_s}
        self.report = progress

    def _stored_plan(self) -> bool:
        return self.run is not None and (self.run.path / "plan.json").exists()

    def path_for(self, phase: int):
        """The execution path of `phase` (cached views are computed on first use)."""
        if phase == 1 or self.split is not None:
            if getattr(self, "views", None) is None:
                self.report("cache features of augmented views", 0.0)
                images, batches = self._images()
                self.views = cache_views(self.model, self.split, self.spec, images, [it.path for it in self.ds.val],
                                         self._view_count(), batches.seed_of, self.device, self.check_cancel,
                                         progress=lambda f: self.report("cache features of augmented views", f))
                self.report("cache features of augmented views", 1.0)
            if phase == 1:
                return FeaturePath(self.model, self.views, self.cfg.batch_size, self.device)
            boundary = self.groups[next(i for i, f in enumerate(self.plan.frozen) if not f)].name
            return ActivationPath(self.model, self.split, self.views, self.cfg.batch_size, self.device, boundary)
        images, batches = self._images()
        mix = Mixup(mixup_alpha=self.cfg.mixup, cutmix_alpha=self.cfg.cutmix, num_classes=len(self.classes),
                    label_smoothing=self.cfg.label_smoothing) if self.cfg.mixup or self.cfg.cutmix else None
        return FullPath(self.model, images, batches, self.spec, [it.path for it in self.ds.val], self.device,
                        self.ytr, mix)

    def _images(self) -> tuple[AugmentedImages, EpochBatches]:
        if getattr(self, "_images_cache", None) is None:
            work_key, work_geom = aug.working_geometry(self.spec)
            tf = aug.train_transform(self.spec, self.plan.augment, self.cfg.random_erasing)
            self._images_cache = (AugmentedImages([it.path for it in self.ds.train], work_key, work_geom, tf,
                                                  self.spec.in_chans), EpochBatches(self.cfg.batch_size, self.cfg.seed))
        return self._images_cache

    def _view_count(self) -> int:
        """Augmented views to cache (one when there is no augmentation: the views would be identical)."""
        return 1 if self.plan.augment == "none" and not self.cfg.random_erasing else max(1, self.cfg.views)

    # ---------------------------------------------------------------- steps
    def one_batch(self, path, idx: np.ndarray, x: torch.Tensor, soft: torch.Tensor | None) -> tuple[float, int]:
        """Forward, loss, backward and optimiser step on one batch; returns (loss, correct). Public: the LR finder
        runs the same step."""
        with autocast(self.device):
            logits = path.logits(x)
        logits, y = logits.float(), self.ytr[idx].to(self.device)
        loss = self.loss_fn(logits, y) if soft is None else self.soft_loss(logits, soft)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients([p for p in self.model.parameters() if p.requires_grad], self.world)
        self("after_backward")
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], self.cfg.grad_clip)
        self.opt.step()
        return loss.item(), int((logits.argmax(1) == y).sum())

    def _epoch(self, path, sched: Schedule, step0: int) -> None:
        frozen = self.phase_frozen
        set_train_mode(self.model, self.groups, [True] * len(self.groups) if self.plan.bn_frozen_stats else frozen)
        order = distributed.shard(sample_order(self.ytr, self.counts, self.cfg.balance == "sampler",
                                               self.cfg.seed + self.epoch), self.rank, self.world)
        t0, total, correct, seen = time.perf_counter(), 0.0, 0, 0
        self.epoch_t0, self.validated = t0, False
        self("before_epoch")
        for self.step_in_epoch, (idx, x, soft) in enumerate(path.train_batches(order, self.epoch), start=1):
            self.check_cancel()
            lrs = apply_schedule(self.opt, sched.factor(self.step - step0))
            loss, right = self.one_batch(path, idx, x, soft)
            self.step += 1
            total, correct, seen = total + loss * len(idx), correct + right, seen + len(idx)
            self.step_log = dict(loss=loss, lrs=lrs, running_loss=total / seen, running_acc=correct / seen)
            self("after_step")
        train_s = time.perf_counter() - t0
        self.epoch_log = dict(train_loss=total / max(1, seen), train_acc=correct / max(1, seen),
                              images_per_s=seen / max(train_s, 1e-9))
        self._validate(path)

    def _validate(self, path) -> None:
        t0 = time.perf_counter()
        logits = path.val_logits()
        pred = logits.argmax(1)
        self.epoch_log.update(val_loss=float(F.cross_entropy(logits, self.yva)),
                              val_acc=float((pred == self.yva).float().mean()),
                              per_class=list(per_class_accuracy(self.yva.numpy(), pred.numpy(), self.classes).values()),
                              val_seconds=time.perf_counter() - t0, seconds=time.perf_counter() - self.epoch_t0)
        self.validated = True
        self("after_validate")
        self.is_best = self.epoch_log["val_acc"] > self.best[0]
        if self.is_best:
            self.best = (self.epoch_log["val_acc"], self.epoch)
        self("after_epoch")

    def time_left(self) -> float | None:
        return next(cb for cb in self.callbacks if isinstance(cb, TimeLeft)).seconds_left(self)

    # ---------------------------------------------------------------- phases
    def _start_phase(self, phase: int, n_epochs: int, first: int, done: int):
        """Freezes, sets BatchNorm momentum and rates for `phase`; returns (path, schedule)."""
        plan, n = self.plan, len(self.groups)
        self.phase, self.phase_epochs, self.phase_first, self.announce = phase, n_epochs, first, done <= first
        steps = n_epochs * self.steps_per_epoch
        if phase == 1:
            self.phase_frozen, self.phase_lrs = [True] * (n - 1) + [False], [0.0] * (n - 1) + [plan.head_lr]
            sched = Schedule(steps, floor=self.cfg.min_lr_ratio)
        else:
            self.phase_frozen, self.phase_lrs = list(plan.frozen), list(plan.lrs)
            sched = Schedule(steps, plan.warmup_epochs * self.steps_per_epoch, floor=self.cfg.min_lr_ratio)
        freeze(self.model, self.groups, self.phase_frozen, self.cfg.train_bn and phase == 2)
        if phase == 2 and self.cfg.bn_momentum is not None:
            set_bn_momentum(self.model, self.groups, self.phase_frozen, self.cfg.bn_momentum)
        set_plan(self.opt, self.phase_lrs)
        path = self.path_for(phase)
        self.path_name = path.name + ("; BatchNorm statistics kept" if plan.bn_frozen_stats and phase == 2 else "")
        self("before_phase")
        return path, sched

    def fit(self) -> dict:
        """Trains, or resumes, the run. Returns the final metrics (also written to metrics.json)."""
        t_start = time.time()
        lock = RunLock(self.run) if self.rank == 0 else None
        if lock is not None:
            lock.acquire()  # RunBusy when another process trains this run: its records are left alone
        try:
            self.run.set_status(state="running", pid=os.getpid(), started=t_start)
            if self.rank == 0:
                self.run.clear_stop()
            return self._fit(t_start)
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, t_start: float) -> dict:
        try:
            ck = self.run.load_checkpoint("last")
            self.run.truncate_events(ck["events_offset"] if ck else 0)  # no event of an interrupted attempt stays
            self.setup()
            done = self._resume(ck)
            self.run.write_json("run_info.json", {"classes": self.classes, "weights": self.weights.to_dict()})
            self("before_fit")
            if done == 0:
                self._validate_start()
            for phase, first, n_epochs in self.phases:
                if n_epochs == 0 or done >= first + n_epochs:
                    continue
                path, sched = self._start_phase(phase, n_epochs, first, done)
                for self.epoch in range(max(done, first) + 1, first + n_epochs + 1):
                    self._epoch(path, sched, first * self.steps_per_epoch)
                    done = self.epoch
                getattr(path, "close", lambda: None)()
            self._finish(t_start)
            self("after_fit")
        except Cancelled:
            self._end_metrics(t_start, "cancelled")
            self("after_cancel")
        except Exception as e:  # noqa: BLE001 - a failed run keeps its metrics and last checkpoint
            self._end_metrics(t_start, "failed", _in_words(e))
            try:
                if self.rank == 0:
                    (self.run.path / "error.txt").write_text(traceback.format_exc())
                else:  # only rank 0 writes the run: another rank's failure goes to its stderr
                    print(f"rank {self.rank}: {traceback.format_exc()}", file=sys.stderr)
            except OSError:
                pass  # the disk that failed the run may refuse this too; the status below says why
            self("after_fail")
        return self.metrics

    def _validate_start(self) -> None:
        """Epoch 0: the model as the plan starts it (the probe's head), validated like any epoch."""
        self.phase, self.epoch, self.is_best, self.epoch_t0 = 0, 0, False, time.perf_counter()
        self.epoch_log = dict(train_loss=0.0, train_acc=0.0, images_per_s=0.0, seconds=0.0,
                              grad_norm=[0.0] * len(self.groups), drift=[0.0] * len(self.groups))
        self.report("validate the starting model", 0.0)
        if self.plan.head_init == "random":
            return
        self._validate(FullPath(self.model, None, None, self.spec, [it.path for it in self.ds.val], self.device,
                                self.ytr))
        self.report("validate the starting model", 1.0)

    def _resume(self, ck: dict | None) -> int:
        if ck is None:
            return 0
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step, self.best = ck["step"], (ck["best_acc"], ck["best_epoch"])
        torch.random.set_rng_state(ck["rng"])
        self.resumed_from = ck["epoch"]
        return ck["epoch"]

    def _finish(self, t_start: float) -> None:
        """The best model on val, saved; the test split scored once; the metrics."""
        best = self.run.load_checkpoint("best")
        if best is not None:
            self.model.load_state_dict(best["model"])
        self.model.eval()
        val_paths, test_paths = [it.path for it in self.ds.val], [it.path for it in self.ds.test]
        val_logits = predict_logits(self.model, self.spec, val_paths, self.device)
        val = score(self.yva.numpy(), val_logits.argmax(1).numpy(), self.classes)
        metrics = {"best_val_acc": val["accuracy"], "chosen_on": "val", "val_interval": val["interval"],
                   "per_class": val["per_class"], "confusion": val["confusion"], "val_paths": val_paths,
                   "val_pred": val_logits.argmax(1).tolist(), "val_labels": self.yva.tolist(),
                   "val_conf": val_logits.softmax(1).max(1).values.tolist(), "classes": self.classes,
                   "val_loss": float(F.cross_entropy(val_logits, self.yva)), "test_source": self.ds.test_source}
        if test_paths:
            self.report("score the test split", 0.0)
            y = np.array([it.label for it in self.ds.test])
            logits = predict_logits(self.model, self.spec, test_paths, self.device, check_cancel=self.check_cancel,
                                    progress=lambda f: self.report("score the test split", f))
            test = score(y, logits.argmax(1).numpy(), self.classes)
            metrics.update(test_accuracy=test["accuracy"], test_interval=test["interval"], test_n=test["n"],
                           test_per_class=test["per_class"], test_confusion=test["confusion"], test_paths=test_paths,
                           test_pred=logits.argmax(1).tolist(), test_labels=y.tolist(),
                           test_conf=logits.softmax(1).max(1).values.tolist())
            self.report("score the test split", 1.0)
        else:
            estimate = self.plan.head_cv if self.best[1] == 0 else None
            metrics.update(test_accuracy=None, test_interval=None, test_n=0, cv_estimate=estimate)
        if self.rank == 0:
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()},
                      str(self.run.path / "model.safetensors"))
        self._end_metrics(t_start, "finished", metrics=metrics)

    def _end_metrics(self, t_start: float, status: str, error: str = "", metrics: dict | None = None) -> None:
        self.metrics = {**(metrics or {}), "status": status, "seconds": time.time() - t_start, "error": error,
                        "best_epoch": self.best[1], "run_id": self.run.id, "run_dir": str(self.run.path),
                        "probe_accuracy": getattr(getattr(self, "plan", None), "probe_accuracy", None),
                        "head_accuracy": getattr(getattr(self, "plan", None), "head_accuracy", None)}
        self.metrics.setdefault("best_val_acc", max(self.best[0], 0.0))
        self.metrics.setdefault("test_accuracy", None)
