"""The training loop: the plan's phases over an execution path, named events for the callbacks, cancel by exception.

Epoch 0 validates the model the run starts from (the linear probe's head), so it competes with every fine-tuned epoch:
the run keeps whichever is best on val and can never end below its probe. The test split is scored once, at the end.
What the run was built with is its `TrainContext`; what changes is its `TrainState` (`engine/train/state.py`).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import DataError
from engine.model.adapt import Adaptation
from engine.metrics import per_class_accuracy
from engine.model.profile import architecture
from engine.model.device import autocast, pick_device, precision_name
from engine.plan.config import TrainConfig
from engine.plan.domain import Targets, keeps_epoch, load_targets
from engine.plan.make import Planned, load_data, load_planned
from engine.runs.events import Cancelled, CancelToken, StopCheck
from engine.runs.result import RunResult
from engine.runs.store import Run, RunLock
from engine.train import distributed
from engine.train.build import build
from engine.train.callbacks import Callback, default_callbacks
from engine.train.finish import end_result, failure_line, final_metrics, record_end
from engine.train.distill import answers, distill_loss, soft_loss
from engine.train.losses import make_loss, sample_order
from engine.train.optim import (
    Schedule,
    apply_schedule,
    build_optimizer,
    freeze,
    set_bn_momentum,
    set_plan,
    set_train_mode,
)
from engine.model.predict import predict_logits
from engine.train.routes import FullPath, make_path
from engine.progress import QUIET_STEP, Step
from engine.train.setup_steps import SetupProgress
from engine.train.state import EVENT_NAMES, RANK_EVENTS, Event, PhaseState, TrainContext, TrainState


class Trainer:
    """Runs one plan into one run folder. `fit()` never raises for training errors: it records them.

    The Trainer never plans: it runs the plan it is handed, or the one stored in the run folder (a run submitted with
    its plan, a resumed run, the other ranks under torchrun). `engine.service.training.train` plans a run that was
    queued without one first, under the same lock.

    Args:
        cfg: the run's configuration.
        run: the run folder it writes (None for the LR finder, which only calls `setup` and `one_batch`).
        cancel: set it to stop the run at the next step.
        planned: the plan to run (as the dashboard showed it); without one, the run folder's.
        callbacks: what happens around the loop; `default_callbacks()` when not given. The loop trains, validates
            and scores without any.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run: Run,
        cancel: CancelToken | None = None,
        planned: Planned | None = None,
        callbacks: Sequence[Callback] | None = None,
    ):
        self.cfg, self.run, self.cancel, self.planned = cfg, run, cancel or CancelToken(), planned
        self.rank, self.world = distributed.init()
        if self.rank != 0 and run is not None:
            self.run = distributed.ReadOnlyRun(run)
        self.device = pick_device(cfg.runtime.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.callbacks = sorted(default_callbacks() if callbacks is None else callbacks, key=lambda c: c.order)
        self.check_cancel = StopCheck(self.run, self.cancel)
        self.report = SetupProgress(self.run if self.rank == 0 else None, cancel=self.check_cancel)
        self.ctx: TrainContext | None = None  # made by `setup`
        self.state = TrainState()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise ValueError(f"{event!r} is not an event; the events are {', '.join(EVENT_NAMES)}")
        for cb in self.callbacks if self.rank == 0 or event in RANK_EVENTS else []:
            cb(event, self.ctx, self.state)  # other ranks validate and keep statistics, but write nothing

    def _planned(self) -> Planned:
        """The plan this run executes: the one it was given, else the one stored in its folder."""
        if self.planned is not None:
            return self.planned
        if self.run is None or not (self.run.path / "plan.json").exists():
            raise ValueError(
                f"run {getattr(self.run, 'id', '')} has no plan (plan.json); queue it through the runner or "
                f"engine.service.training.train, which plan it first"
            )
        self.report("load and check data", 0.0)
        self.planned = load_planned(self.run.path, load_data(self.cfg))
        self.report("load and check data", 1.0)
        return self.planned

    def setup(self, done: int = 0) -> TrainContext:
        """Builds what the plan describes: the model, its groups, the optimiser, the loss and the labels; the run is
        expected to take what the plan counts after `done` epochs (a resumed run's own remaining steps)."""
        cfg, planned = self.cfg, self._planned()
        self.report.expect(planned.plan.seconds_left(done))
        torch.manual_seed(cfg.runtime.seed)  # the new head's initialisation and dropout masks follow the run's seed
        b = build(cfg, planned, self.device)  # refuses a plan that fails preflight
        ytr, yva = (torch.tensor([it.label for it in items]) for items in (b.ds.train, b.ds.val))
        counts = torch.bincount(ytr, minlength=len(b.ds.classes))
        n_shard = len(distributed.shard(np.arange(len(ytr)), self.rank, self.world))
        plan = b.plan
        targets = self._targets(b.ds, plan)
        adapt = None
        if plan.target.adapt != "none":
            if self.world > 1:
                raise ValueError("adaptation (dann, mmd) runs in one process; start it without torchrun")
            adapt = Adaptation(plan.target.adapt, b.model.num_features, plan.target.adapt_strength).to(self.device)
        teacher = teacher_target = None
        if plan.distill.on:
            shown = self.report.step("the teacher's answers")
            photos = targets.photos.paths if plan.distill.n_target and targets is not None else []
            teacher, teacher_target = answers(self.run, plan.distill, b.ds, photos, self.device, shown)
        self.ctx = TrainContext(
            cfg=cfg,
            run=self.run,
            device=self.device,
            precision=precision_name(self.device),
            rank=self.rank,
            world=self.world,
            ds=b.ds,
            spec=b.spec,
            model=b.model,
            weights=b.weights,
            groups=b.groups,
            plan=plan,
            split=b.split,
            opt=build_optimizer(b.model, b.groups, cfg.optim.weight_decay, adapt),
            loss_fn=make_loss(cfg.regularisation.balance, counts, cfg.regularisation.label_smoothing),
            ytr=ytr,
            yva=yva,
            counts=counts,
            steps_per_epoch=-(-n_shard // cfg.optim.batch_size),
            phases=((1, 0, plan.phases.head_epochs), (2, plan.phases.head_epochs, plan.phases.finetune_epochs)),
            report=self.report,
            targets=targets,
            adapt=adapt,
            teacher=teacher,
            teacher_target=teacher_target,
        )
        return self.ctx

    def _targets(self, ds, plan) -> Targets | None:
        """The plan's target photos and target test, read again and checked against what the plan was made with."""
        if not plan.target.folder and not plan.target.n_test:
            return None
        targets = load_targets(self.cfg, ds)
        if targets.photos is not None and targets.photos.fingerprint() != plan.target.fingerprint:
            raise DataError(
                f"the target photos in {plan.target.folder} changed since the plan was made; make the plan again"
            )
        return targets

    def one_batch(self, path, idx: np.ndarray, x: torch.Tensor, soft: torch.Tensor | None) -> tuple[float, int]:
        """Forward, loss, backward, optimiser step on one batch; returns (loss, correct). The LR finder runs it too."""
        ctx = self.ctx
        with autocast(ctx.device):
            logits, adapt_loss = self._forward(path, x)
        logits, y = logits.float(), ctx.ytr[idx].to(ctx.device)
        loss = ctx.loss_fn(logits, y) if soft is None else F.cross_entropy(logits, soft)  # MixUp's soft targets
        if ctx.teacher is not None:
            d = ctx.plan.distill
            loss = distill_loss(logits, loss, ctx.teacher[idx].to(ctx.device), d.weight, d.temperature)
        if adapt_loss is not None:
            loss = loss + adapt_loss
        ctx.opt.zero_grad(set_to_none=True)
        loss.backward()  # under torchrun, DDP averages the gradients across processes here
        self(Event.AFTER_BACKWARD)
        grads = [p for p in ctx.model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, ctx.cfg.optim.grad_clip)
        ctx.opt.step()
        loss_v, right = torch.stack([loss.detach(), (logits.argmax(1) == y).sum().float()]).tolist()  # one host sync
        return loss_v, int(right)

    def _forward(self, path, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's logits and, in a phase 2 that reads target photos beside it, the loss they add: the adaptation
        loss between the two batches' head inputs (its numbers kept for the epoch's log) and the teacher's answers on
        the target photos (a distilled run given target photos)."""
        ctx, st = self.ctx, self.state
        if not ctx.reads_targets or st.phase.number != 2 or not path.adapts:
            return path.logits(x), None
        head = ctx.model.head
        f = path.head_input(x)
        rows, xt = path.target_batch(len(x), st.step)
        ft = path.head_input(xt)
        losses = []
        if ctx.adapt is not None:
            losses.append(self._adapt_loss(head.standardise(f), head.standardise(ft)))
        if ctx.teacher_target is not None:
            d = ctx.plan.distill
            teacher = ctx.teacher_target[rows].to(ctx.device)
            losses.append(d.weight * soft_loss(head(ft).float(), teacher, d.temperature))
        return head(f), sum(losses[1:], losses[0])

    def _adapt_loss(self, f: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        """The adaptation loss between a batch's head input and the target photos', ramped up over phase 2."""
        ctx, st = self.ctx, self.state
        done = (st.step - st.phase.first * ctx.steps_per_epoch) / max(1, st.phase.epochs * ctx.steps_per_epoch)
        loss, shown = ctx.adapt.loss(f, ft, done)
        for k, v in shown.items():
            st.adapt_sums[k] = st.adapt_sums.get(k, 0.0) + v
        st.adapt_steps += 1
        return loss

    def _epoch(self, path, sched: Schedule, step0: int) -> None:
        """One training epoch of the current phase, then its validation."""
        ctx, st = self.ctx, self.state
        all_frozen = [True] * len(ctx.groups)
        set_train_mode(ctx.model, ctx.groups, all_frozen if ctx.plan.phases.bn_frozen_stats else st.phase.frozen)
        balanced = ctx.cfg.regularisation.balance == "sampler"
        order = sample_order(ctx.ytr, ctx.counts, balanced, ctx.cfg.runtime.seed + st.epoch)
        order = distributed.shard(order, ctx.rank, ctx.world)
        t0 = st.epoch_t0 = time.perf_counter()
        total, correct, seen = 0.0, 0, 0
        st.validated, st.adapt_sums, st.adapt_steps = False, {}, 0
        self(Event.BEFORE_EPOCH)
        for idx, x, soft in path.train_batches(order, st.epoch):
            self.check_cancel()
            lrs = apply_schedule(ctx.opt, sched.factor(st.step - step0))
            loss, right = self.one_batch(path, idx, x, soft)
            st.step += 1
            total += loss * len(idx)
            correct += right
            seen += len(idx)
            st.step_log = dict(loss=loss, lrs=lrs, running_loss=total / seen, running_acc=correct / seen)
            self(Event.AFTER_STEP)
        st.epoch_log = dict(
            train_loss=total / max(1, seen),
            train_acc=correct / max(1, seen),
            images_per_s=seen / max(time.perf_counter() - t0, 1e-9),
            adapt={k: v / st.adapt_steps for k, v in st.adapt_sums.items()} if st.adapt_steps else {},
        )
        self.validate(path)

    def validate(self, path, progress: Step = QUIET_STEP) -> None:
        """Validates on the val split (sharded across processes), then `after_validate` and `after_epoch`."""
        ctx, st = self.ctx, self.state
        t0 = time.perf_counter()
        logits = distributed.val_logits(lambda rows: path.val_logits(rows, progress), len(ctx.yva), ctx.rank, ctx.world)
        pred = logits.argmax(1)
        st.epoch_log.update(
            val_loss=float(F.cross_entropy(logits, ctx.yva)),
            val_acc=float((pred == ctx.yva).float().mean()),
            per_class=list(per_class_accuracy(ctx.yva.numpy(), pred.numpy(), ctx.classes).values()),
            val_seconds=time.perf_counter() - t0,
            seconds=time.perf_counter() - st.epoch_t0,
        )
        target_val = self._target_val()
        st.validated = True
        self(Event.AFTER_VALIDATE)
        val_acc = st.epoch_log["val_acc"]
        st.top_val = max(st.top_val, val_acc)
        kept = (st.best_acc, st.best_target)
        st.is_best = keeps_epoch(val_acc, target_val, kept, st.top_val, ctx.adapt is not None)
        if st.is_best:  # validated through the images, its logits are the final val score's: not computed again
            st.best_acc, st.best_epoch = val_acc, st.epoch
            st.best_target = -1.0 if target_val is None else target_val
            st.best_logits = logits if path.exact_val else None
        self(Event.AFTER_EPOCH)

    def _target_val(self) -> float | None:
        """The labelled target photos' accuracy (they choose the epoch of an adapted run), recorded in the epoch's
        log; None without them."""
        ctx = self.ctx
        photos = ctx.targets.photos if ctx.targets is not None else None
        if photos is None or not photos.labelled:
            return None
        logits = predict_logits(ctx.model, ctx.spec, [it.path for it in photos.labelled], ctx.device)
        labels = torch.tensor([it.label for it in photos.labelled])
        self.state.epoch_log["target_val_acc"] = acc = float((logits.argmax(1) == labels).float().mean())
        return acc

    def _validate_start(self) -> None:
        """Epoch 0 of a fresh run: the model as the plan starts it (the probe's head), validated through the images
        like any epoch, so it competes with every trained epoch. Every process runs it (validation is sharded)."""
        ctx, st, plan = self.ctx, self.state, self.ctx.plan
        n = len(ctx.groups)
        st.phase, st.epoch, st.is_best, st.epoch_t0 = PhaseState(number=0), 0, False, time.perf_counter()
        st.epoch_log = dict(
            train_loss=0.0, train_acc=0.0, images_per_s=0.0, seconds=0.0, grad_norm=[0.0] * n, drift=[0.0] * n
        )
        # the rest of the run's forward passes (caching, scoring) at the speed this validation shows, not the probe's;
        # the epochs as planned (their steps are measured once they run)
        step, passes = "validate the starting model", plan.cost.cache_s + plan.cost.score_s
        self.report.expect_after(
            step, passes, plan.cost.start_s or None, max(0.0, plan.cost.run_s - plan.cost.start_s - passes)
        )
        validating = self.report.step(step)
        validating(0.0)
        path = FullPath(ctx.model, None, None, ctx.spec, [it.path for it in ctx.ds.val], ctx.device, ctx.ytr)
        self.validate(path, validating)
        st.start_val_s = st.epoch_log["val_seconds"]
        validating(1.0)

    def _start_phase(self, phase: int, n_epochs: int, first: int, done: int):
        """Freezes, sets BatchNorm momentum and rates for `phase`; returns (path, schedule)."""
        ctx, plan, n = self.ctx, self.ctx.plan, len(self.ctx.groups)
        steps, floor, reg = n_epochs * ctx.steps_per_epoch, ctx.cfg.optim.min_lr_ratio, ctx.cfg.regularisation
        if phase == 1:
            frozen, lrs = [True] * (n - 1) + [False], [0.0] * (n - 1) + [plan.phases.head_lr]
            sched = Schedule(steps, floor=floor)
        else:
            frozen, lrs = list(plan.phases.frozen), list(plan.phases.lrs)
            sched = Schedule(steps, plan.phases.warmup_epochs * ctx.steps_per_epoch, floor=floor)
        freeze(ctx.model, ctx.groups, frozen, reg.train_bn and phase == 2)
        if phase == 2 and reg.bn_momentum is not None:
            set_bn_momentum(ctx.model, ctx.groups, frozen, reg.bn_momentum)
        set_plan(ctx.opt, lrs)
        path = make_path(ctx, self.state, phase)
        path.parallel(ctx.world)  # after freezing: DDP registers the parameters that train in this phase
        kept = plan.phases.bn_frozen_stats and phase == 2 and architecture(plan.backbone).has_batchnorm
        self.state.phase = PhaseState(
            number=phase,
            epochs=n_epochs,
            first=first,
            frozen=frozen,
            lrs=lrs,
            path_name=path.name + ("; BatchNorm statistics kept" if kept else ""),
            announce=done <= first,
        )
        self(Event.BEFORE_PHASE)
        return path, sched

    def _restore(self, ck: dict | None) -> int:
        """Loads the last checkpoint (model, optimiser, step, best, random state); returns its epoch, 0 for a fresh
        run."""
        return 0 if ck is None else self.state.from_checkpoint(self.ctx, ck)

    def _train(self, done: int) -> None:
        """The plan's phases, from the epoch after `done` (the last one a stopped attempt finished)."""
        for phase, first, n_epochs in self.ctx.phases:
            if n_epochs == 0 or done >= first + n_epochs:
                continue
            path, sched = self._start_phase(phase, n_epochs, first, done)
            for epoch in range(max(done, first) + 1, first + n_epochs + 1):
                self.state.epoch = epoch
                self._epoch(path, sched, first * self.ctx.steps_per_epoch)
                done = epoch
            path.close()

    def fit(self, held_since: float | None = None) -> RunResult:
        """Trains, or resumes, the run under its lock. Returns how it ended (what metrics.json holds).

        Args:
            held_since: when the caller took the run's lock and started this attempt (it planned the run under it);
                None: the Trainer takes the lock and the attempt starts now.
        """
        if held_since is not None:
            return self._fit(held_since)
        t_start = time.time()
        with RunLock(self.run) if self.rank == 0 else nullcontext():  # RunBusy when another process trains it
            self.run.set_status(state="running", pid=os.getpid(), started=t_start)
            self.run.clear_stop()
            self.run.reserve()
            return self._fit(t_start)

    def _fit(self, t_start: float) -> RunResult:
        try:
            ck = self.run.load_checkpoint("last")
            # no event of an interrupted attempt stays; a fresh run keeps the events of its planning
            self.run.truncate_events(ck["events_offset"] if ck else self.run.status().get("plan_events", 0))
            ctx = self.setup(ck["epoch"] if ck else 0)
            done = self._restore(ck)
            self.run.write_json("run_info.json", {"classes": ctx.classes, "weights": ctx.weights.to_dict()})
            self(Event.BEFORE_FIT)
            if not done and ctx.plan.head.init != "random":
                self._validate_start()
            self._train(done)
            metrics = final_metrics(ctx, self.state)
            self(Event.AFTER_FIT)
            return self._end(t_start, "finished", scores=metrics)
        except Cancelled:
            if self.ctx is not None:
                self(Event.AFTER_CANCEL)
            return self._end(t_start, "cancelled")
        except Exception as e:  # noqa: BLE001 - a failed run keeps its metrics and last checkpoint
            self.state.trace = traceback.format_exc()
            if self.rank:
                print(f"rank {self.rank}: {self.state.trace}", file=sys.stderr)
            if self.ctx is not None:
                self(Event.AFTER_FAIL)
            return self._end(t_start, "failed", failure_line(e, self.run))

    def _end(self, t_start: float, status: str, error: str = "", scores: dict | None = None) -> RunResult:
        """The run's result, recorded with its last event and its status (by rank 0)."""
        result = end_result(self.run, self.ctx, self.state, t_start, status, error, scores)
        if self.rank == 0:
            result = record_end(self.run, result, self.state.trace)
        self.state.result = result
        return result
