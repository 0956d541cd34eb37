"""What happens around the loop, at named points (fastai's events): the run's event log and status, per-group
diagnostics, checkpoints, the time left. The loop calls the `EVENTS` below by name; a callback implements the ones it
needs, and the loop refuses a name that is not one of them.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.data.drift import data_stats
from engine.model.resources import checkpoint_bytes, need_disk
from engine.runs.events import EpochEnded, PhaseStarted, RunEnded, RunStarted, StepEnded
from engine.train.optim import group_drift, group_grad_norms

if TYPE_CHECKING:
    from engine.train.loop import Trainer


EVENTS = ("before_fit", "before_phase", "before_epoch", "after_backward", "after_step", "after_validate",
          "after_epoch", "after_fit", "after_cancel", "after_fail")
RANK_EVENTS = ("before_fit", "after_backward", "after_epoch")  # run on every process under torchrun, not only rank 0


class Callback:
    """A named hook for each of `EVENTS`; a method with any other `before_`/`after_` name is refused when the
    callback is defined (a misspelt event would otherwise never run)."""

    order = 0

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        wrong = [n for n in vars(cls) if n.startswith(("before_", "after_")) and n not in EVENTS]
        if wrong:
            raise TypeError(f"{cls.__name__}: {', '.join(wrong)} is not an event; the events are {', '.join(EVENTS)}")

    def __call__(self, event: str, learner: "Trainer") -> None:
        getattr(self, event, lambda _: None)(learner)


class Diagnostics(Callback):
    """Per group: the gradient norm (mean over the epoch's steps) and the drift from the pretrained weights."""

    order = 10

    def before_fit(self, learn: "Trainer") -> None:
        self.initial = {n: p.detach().float().cpu().clone() for n, p in learn.model.named_parameters()}
        self.norms, self.steps = None, 0

    def after_backward(self, learn: "Trainer") -> None:  # summed on the device: read once per epoch
        norms = group_grad_norms(learn.model, learn.groups)
        self.norms, self.steps = norms if self.norms is None else self.norms + norms, self.steps + 1

    def after_epoch(self, learn: "Trainer") -> None:
        n = len(learn.groups)
        learn.epoch_log["grad_norm"] = (self.norms / self.steps).tolist() if self.steps else [0.0] * n
        learn.epoch_log["drift"] = group_drift(learn.model, learn.groups, self.initial)
        self.norms, self.steps = None, 0


class TimeLeft(Callback):
    """An honest time left: measured seconds per step and per validation in the current phase, the plan's estimate for
    phases not started yet, and the final scoring."""

    order = 5

    def before_fit(self, learn: "Trainer") -> None:
        self.step_s: dict[int, list[float]] = {}
        self.val_s: dict[int, float] = {}
        self.last = time.perf_counter()

    def before_epoch(self, learn: "Trainer") -> None:
        self.last = time.perf_counter()

    def after_step(self, learn: "Trainer") -> None:
        now = time.perf_counter()
        self.step_s.setdefault(learn.phase, []).append(now - self.last)
        self.last = now

    def after_validate(self, learn: "Trainer") -> None:
        self.val_s[learn.phase] = learn.epoch_log.get("val_seconds", 0.0)

    def seconds_left(self, learn: "Trainer") -> float | None:
        """Steps and validations left in this phase and the next, at the measured pace (the plan's estimate for a
        phase not started yet), plus the final scoring; None until there is a pace to go by."""
        per_epoch, left = learn.steps_per_epoch, 0.0
        for phase, first, n_epochs in learn.phases:
            if n_epochs == 0 or phase < learn.phase:
                continue
            if phase == learn.phase:
                steps_left = n_epochs * per_epoch - (learn.step - first * per_epoch)
                vals_left = first + n_epochs - learn.epoch + (0 if learn.validated else 1)
            else:
                steps_left, vals_left = n_epochs * per_epoch, n_epochs
            measured = self.step_s.get(phase)
            if measured:
                step_s = float(np.median(measured[-50:]))
            elif phase == 2 and learn.plan.finetune_epoch_s:
                step_s = learn.plan.finetune_epoch_s / max(1, per_epoch)
            else:
                return None
            left += max(0, steps_left) * step_s + max(0, vals_left) * self.val_s.get(phase, self.val_s.get(0, 0.0))
        return left + self.scoring_s(learn)

    def scoring_s(self, learn: "Trainer") -> float:
        """The final scoring (val, unless the best epoch's logits stand, and test, twice when a trained epoch beat the
        starting model) at the pace the starting model's validation measured through the same images path; the
        plan's estimate without it (a resumed run)."""
        n_val = len(learn.yva)
        if not self.val_s.get(0):
            return learn.plan.score_s or 0.0
        n_test = learn.plan.n_test * (2 if learn.best[1] > 0 else 1)  # a trained epoch won: the start is scored too
        return (n_test + (0 if learn.best_logits is not None else n_val)) * self.val_s[0] / max(1, n_val)


def _time_left(learn: "Trainer") -> TimeLeft:
    return next(cb for cb in learn.callbacks if isinstance(cb, TimeLeft))


def time_left(learn: "Trainer") -> float | None:
    return _time_left(learn).seconds_left(learn)


def scoring_seconds(learn: "Trainer") -> float:
    """The final scoring's expected seconds (`TimeLeft.scoring_s`)."""
    return _time_left(learn).scoring_s(learn)


class Recorder(Callback):
    """The run's event log and status: what the dashboard and the CLI read."""

    order = 20

    def before_fit(self, learn: "Trainer") -> None:
        learn.run.append(RunStarted(config=learn.cfg.to_dict(), groups=list(learn.plan.groups),
                                    device=str(learn.device), precision=learn.precision,
                                    resumed_from_epoch=learn.resumed_from, world_size=learn.world))

    def before_phase(self, learn: "Trainer") -> None:
        if learn.announce:
            learn.run.append(PhaseStarted(phase=learn.phase, name="train head" if learn.phase == 1 else "fine-tune",
                                          epochs=learn.phase_epochs, frozen=learn.phase_frozen, lrs=learn.phase_lrs,
                                          path=learn.path_name, first_epoch=learn.phase_first + 1,
                                          steps_per_epoch=learn.steps_per_epoch))

    def after_step(self, learn: "Trainer") -> None:
        s = learn.step_log
        learn.run.append(StepEnded(phase=learn.phase, epoch=learn.epoch, step=learn.step, loss=s["loss"],
                                   lrs=s["lrs"], running_loss=s["running_loss"], running_acc=s["running_acc"],
                                   eta_s=time_left(learn)))

    def after_epoch(self, learn: "Trainer") -> None:
        m, total = learn.epoch_log, learn.plan.total_epochs
        eta = time_left(learn)
        learn.run.append(EpochEnded(phase=learn.phase, epoch=learn.epoch, total_epochs=total, best=learn.is_best,
                                    eta_s=eta or 0.0, **{k: v for k, v in m.items() if k in EPOCH_FIELDS}))
        learn.run.set_status(state="running", epoch=learn.epoch, total_epochs=total, val_acc=m["val_acc"],
                             best_val_acc=learn.best[0], eta_s=eta)

    def after_fit(self, learn: "Trainer") -> None:
        self._end(learn, "finished")

    def after_cancel(self, learn: "Trainer") -> None:
        self._end(learn, "cancelled")

    def after_fail(self, learn: "Trainer") -> None:
        try:
            (learn.run.path / "error.txt").write_text(learn.trace)
        except OSError:
            pass  # the disk that failed the run may refuse this too; the status says why
        self._end(learn, "failed")

    def _end(self, learn: "Trainer", status: str) -> None:
        """Metrics, the last event and the status; each write is tried on its own, so a full disk that refuses the
        metrics still lets the (small) status say "failed" and why."""
        m = learn.metrics
        writes = (lambda: learn.run.write_json("metrics.json", m),
                  lambda: learn.run.append(RunEnded(status=status, best_val_acc=m["best_val_acc"],
                                                    best_epoch=m["best_epoch"], seconds=m["seconds"],
                                                    error=m.get("error", ""), test_accuracy=m.get("test_accuracy"))))
        problems = []
        for write in writes:
            try:
                write()
            except OSError as e:
                problems.append(e.strerror or str(e))
        if problems and status == "finished":
            status, m["error"] = "failed", f"the results could not be written: {problems[0]}"
        learn.run.set_status(state=status, ended=time.time(), best_val_acc=m["best_val_acc"],
                             test_accuracy=m.get("test_accuracy"), error=m.get("error", ""))


EPOCH_FIELDS = {"train_loss", "train_acc", "val_loss", "val_acc", "per_class", "seconds", "images_per_s", "grad_norm",
                "drift"}


class Checkpoints(Callback):
    """The best model on val (the run's result, the starting head included), the last epoch (to resume) and, where
    the run has a test split, the starting model (so the end can score the head the run started from on test)."""

    order = 30

    def before_fit(self, learn: "Trainer") -> None:
        need_disk(learn.run.path, checkpoint_bytes(learn.model), f"run {learn.run.id}'s checkpoints")

    def after_epoch(self, learn: "Trainer") -> None:
        if learn.is_best:
            learn.run.save_checkpoint("best", {"model": learn.model.state_dict(), "epoch": learn.epoch})
        if learn.epoch == 0:
            if learn.ds.test and learn.plan.total_epochs > 0:
                learn.run.save_checkpoint("start", {"model": learn.model.state_dict(), "epoch": 0})
            return
        learn.run.save_checkpoint("last", {
            "model": learn.model.state_dict(), "optimizer": learn.opt.state_dict(), "epoch": learn.epoch,
            "step": learn.step, "best_acc": learn.best[0], "best_epoch": learn.best[1],
            "rng": torch.random.get_rng_state(), "events_offset": learn.run.events_offset()})

    def after_fit(self, learn: "Trainer") -> None:
        for stored in learn.run.path.glob("views-*.pt"):  # kept for a resume; a finished run needs them no more
            stored.unlink(missing_ok=True)


def restore(learn: "Trainer", ck: dict | None) -> int:
    """Loads the last checkpoint into the trainer (model, optimiser, step, best, random state); returns its epoch, or
    0 when the run starts fresh."""
    if ck is None:
        return 0
    learn.model.load_state_dict(ck["model"])
    learn.opt.load_state_dict(ck["optimizer"])
    learn.step, learn.best = ck["step"], (ck["best_acc"], ck["best_epoch"])
    torch.random.set_rng_state(ck["rng"])
    learn.resumed_from = ck["epoch"]
    return ck["epoch"]


class StartingModel(Callback):
    """Epoch 0 of a fresh run: the model as the plan starts it (the probe's head), validated like any epoch, so it
    competes with every trained epoch. Runs on every process (validation is sharded)."""

    order = 25  # after the run is recorded as started

    def before_fit(self, learn: "Trainer") -> None:
        if learn.resumed_from or learn.plan.head_init == "random":
            return
        from engine.train.paths import FullPath
        learn.phase, learn.epoch, learn.is_best, learn.epoch_t0 = 0, 0, False, time.perf_counter()
        learn.epoch_log = dict(train_loss=0.0, train_acc=0.0, images_per_s=0.0, seconds=0.0,
                               grad_norm=[0.0] * len(learn.groups), drift=[0.0] * len(learn.groups))
        step, plan = "validate the starting model", learn.plan
        # the rest of the run's forward passes (caching, scoring) at the speed this validation shows, not the probe's;
        # the epochs as planned (their steps are measured once they run)
        passes = plan.cache_s + plan.score_s
        learn.report.expect_after(step, passes, plan.start_s or None, max(0.0, plan.run_s - plan.start_s - passes))
        learn.report(step, 0.0)
        learn.validate(FullPath(learn.model, None, None, learn.spec, [it.path for it in learn.ds.val], learn.device,
                                learn.ytr), progress=lambda f: learn.report(step, f))
        learn.report(step, 1.0)


class DataStats(Callback):
    """The training photos' colour and size statistics, for drift warnings when predicting."""

    order = 15  # written before the run is recorded as finished

    def after_fit(self, learn: "Trainer") -> None:
        learn.report("record the training photos' statistics", 0.0)
        learn.run.write_json("data_stats.json", data_stats(learn.ds, learn.spec))
        learn.report("record the training photos' statistics", 1.0)
