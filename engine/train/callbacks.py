"""What happens around the loop, at its named events (fastai's callbacks): the run's event log, per-group diagnostics,
checkpoints, the time left, the training photos' statistics. None of them is needed to train and score: a trainer
given no callbacks still runs its plan, validates every epoch, scores val and test and records how the run ended.

A callback implements the `Event`s it needs as methods of the same name, each called with `(ctx, state)`; a method
with any other `before_`/`after_` name is refused when the class is defined.
"""

from __future__ import annotations


from engine.data.drift import data_stats
from engine.model.resources import checkpoint_bytes, need_disk
from engine.timeleft import Clock, perf_clock, UnitTimes
from engine.runs.events import EpochEnded, PhaseStarted, RunStarted, StepEnded
from engine.train.finish import scoring_seconds
from engine.train.optim import group_drift, group_grad_norms
from engine.train.state import EVENT_NAMES, Event, TrainContext, TrainState


class Callback:
    """A hook for each `Event` it names; `order` sets who runs first at the same event."""

    order = 0

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        wrong = [n for n in vars(cls) if n.startswith(("before_", "after_")) and n not in EVENT_NAMES]
        if wrong:
            raise TypeError(
                f"{cls.__name__}: {', '.join(wrong)} is not an event; the events are {', '.join(EVENT_NAMES)}"
            )

    def __call__(self, event: Event, ctx: TrainContext, state: TrainState) -> None:
        hook = getattr(self, event.value, None)
        if hook is not None:
            hook(ctx, state)


class Diagnostics(Callback):
    """Per group: the gradient norm (mean over the epoch's steps) and the drift from the pretrained weights."""

    order = 10

    def before_fit(self, ctx: TrainContext, state: TrainState) -> None:
        self.initial = {n: p.detach().float().cpu().clone() for n, p in ctx.model.named_parameters()}
        self.norms, self.steps = None, 0

    def after_backward(self, ctx: TrainContext, state: TrainState) -> None:  # summed on the device: read once an epoch
        norms = group_grad_norms(ctx.model, ctx.groups)
        self.norms = norms if self.norms is None else self.norms + norms
        self.steps += 1

    def after_epoch(self, ctx: TrainContext, state: TrainState) -> None:
        n = len(ctx.groups)
        state.epoch_log["grad_norm"] = (self.norms / self.steps).tolist() if self.steps else [0.0] * n
        state.epoch_log["drift"] = group_drift(ctx.model, ctx.groups, self.initial)
        self.norms, self.steps = None, 0


class TimeLeft(Callback):
    """An honest time left: measured seconds per step (`engine.timeleft.UnitTimes`, one per phase) and per validation in
    the current phase, the plan's estimate for phases not started yet, and the final scoring."""

    order = 5

    def __init__(self, clock: Clock = perf_clock):
        self.clock = clock
        self.steps: dict[int, UnitTimes] = {}  # per phase: its steps' seconds
        self.val_s: dict[int, float] = {}  # per phase: seconds of its last validation

    def before_fit(self, ctx: TrainContext, state: TrainState) -> None:
        self.steps = {}
        self.val_s = {}

    def _phase(self, state: TrainState) -> UnitTimes:
        return self.steps.setdefault(state.phase.number, UnitTimes(self.clock))

    def before_epoch(self, ctx: TrainContext, state: TrainState) -> None:
        self._phase(state).begin()

    def after_step(self, ctx: TrainContext, state: TrainState) -> None:
        self._phase(state).done()

    def after_validate(self, ctx: TrainContext, state: TrainState) -> None:
        self.val_s[state.phase.number] = state.epoch_log.get("val_seconds", 0.0)

    def seconds_left(self, ctx: TrainContext, state: TrainState) -> float | None:
        """Steps and validations left in this phase and the next, at the measured pace (the plan's estimate for a
        phase not started yet), plus the final scoring; None until there is a pace to go by."""
        per_epoch, left, current = ctx.steps_per_epoch, 0.0, state.phase.number
        for phase, first, n_epochs in ctx.phases:
            if n_epochs == 0 or phase < current:
                continue
            if phase == current:
                steps_left = n_epochs * per_epoch - (state.step - first * per_epoch)
                vals_left = first + n_epochs - state.epoch + (0 if state.validated else 1)
            else:
                steps_left, vals_left = n_epochs * per_epoch, n_epochs
            measured = self.steps[phase].typical() if phase in self.steps else None
            if measured is not None:
                step_s = measured
            elif phase == 2 and ctx.plan.cost.finetune_epoch_s:
                step_s = ctx.plan.cost.finetune_epoch_s / max(1, per_epoch)
            else:
                return None
            left += max(0, steps_left) * step_s + max(0, vals_left) * self.val_s.get(phase, self.val_s.get(0, 0.0))
        return left + scoring_seconds(ctx, state)


EPOCH_FIELDS = {
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "per_class",
    "seconds",
    "images_per_s",
    "grad_norm",
    "drift",
    "adapt",
    "target_val_acc",
}


class Recorder(Callback):
    """The run's event log and its status while it trains: what the dashboard and the CLI read. (How the run ended is
    recorded by the loop itself.) `timer` gives the time left each event carries."""

    order = 20

    def __init__(self, timer: TimeLeft | None = None):
        self.timer = timer

    def _left(self, ctx: TrainContext, state: TrainState) -> float | None:
        return None if self.timer is None else self.timer.seconds_left(ctx, state)

    def before_fit(self, ctx: TrainContext, state: TrainState) -> None:
        ctx.run.append(
            RunStarted(
                config=ctx.cfg.to_dict(),
                groups=list(ctx.plan.phases.groups),
                device=str(ctx.device),
                precision=ctx.precision,
                resumed_from_epoch=state.resumed_from,
                world_size=ctx.world,
            )
        )

    def before_phase(self, ctx: TrainContext, state: TrainState) -> None:
        p = state.phase
        if p.announce:
            ctx.run.append(
                PhaseStarted(
                    phase=p.number,
                    name="train head" if p.number == 1 else "fine-tune",
                    epochs=p.epochs,
                    frozen=p.frozen,
                    lrs=p.lrs,
                    path=p.path_name,
                    first_epoch=p.first + 1,
                    steps_per_epoch=ctx.steps_per_epoch,
                )
            )

    def after_step(self, ctx: TrainContext, state: TrainState) -> None:
        s = state.step_log
        ctx.run.append(
            StepEnded(
                phase=state.phase.number,
                epoch=state.epoch,
                step=state.step,
                loss=s["loss"],
                lrs=s["lrs"],
                running_loss=s["running_loss"],
                running_acc=s["running_acc"],
                eta_s=self._left(ctx, state),
            )
        )

    def after_epoch(self, ctx: TrainContext, state: TrainState) -> None:
        m, total = state.epoch_log, ctx.plan.phases.total_epochs
        eta = self._left(ctx, state)
        ctx.run.append(
            EpochEnded(
                phase=state.phase.number,
                epoch=state.epoch,
                total_epochs=total,
                best=state.is_best,
                eta_s=eta or 0.0,
                **{k: v for k, v in m.items() if k in EPOCH_FIELDS},
            )
        )
        ctx.run.set_status(
            state="running",
            epoch=state.epoch,
            total_epochs=total,
            val_acc=m["val_acc"],
            best_val_acc=state.best_acc,
            eta_s=eta,
        )


class Checkpoints(Callback):
    """The best model on val (the run's result, the starting head included), the last epoch (to resume) and, where
    the run has a test split, the starting model (so the end can score the head the run started from on test).
    Without it a run scores its last epoch's model and cannot resume."""

    order = 30

    def before_fit(self, ctx: TrainContext, state: TrainState) -> None:
        need_disk(ctx.run.path, checkpoint_bytes(ctx.model), f"run {ctx.run.id}'s checkpoints")

    def after_epoch(self, ctx: TrainContext, state: TrainState) -> None:
        if state.is_best:
            ctx.run.save_checkpoint("best", state.to_checkpoint(ctx, resumable=False))
        if state.epoch == 0:
            if (ctx.ds.test or ctx.plan.target.n_test) and ctx.plan.phases.total_epochs > 0:
                ctx.run.save_checkpoint("start", state.to_checkpoint(ctx, resumable=False))
            return
        ctx.run.save_checkpoint("last", state.to_checkpoint(ctx))

    def after_fit(self, ctx: TrainContext, state: TrainState) -> None:
        for stored in ctx.run.path.glob("views-*.pt"):  # kept for a resume; a finished run needs them no more
            stored.unlink(missing_ok=True)


class DataStats(Callback):
    """The training photos' colour and size statistics, for drift warnings when predicting."""

    def after_fit(self, ctx: TrainContext, state: TrainState) -> None:
        step = ctx.report.step("record the training photos' statistics")
        step(0.0)
        ctx.run.write_json("data_stats.json", data_stats(ctx.ds, ctx.spec))
        step(1.0)


def default_callbacks() -> list[Callback]:
    """What a run from the dashboard or the CLI records: time left, diagnostics, the event log, checkpoints, the
    training photos' statistics."""
    timer = TimeLeft()
    return [timer, Diagnostics(), Recorder(timer), Checkpoints(), DataStats()]
