"""Typed training events and the cancel token. The loop emits events; the run store records them; the dashboard reads
only the store. Cancelling sets the token; the loop checks it before every step and stops with `Cancelled`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.timeleft import Meter, countdown, damp


class Cancelled(Exception):
    """Raised inside the loop when the cancel token is set."""


class CancelToken:
    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class StopCheck:
    """A run's cancel check: raises `Cancelled` when `token` is set or a stop was asked through the run store (by
    another process, `Run.request_stop`), which it looks at twice a second at most.

    Args:
        run: the run folder (anything with `stop_requested()`), or None for a run-less job.
        token: this process's cancel token.
    """

    def __init__(self, run: Any, token: CancelToken):
        self.run, self.token = run, token
        self._looked = 0.0

    def __call__(self) -> None:
        if self.run is not None and time.monotonic() - self._looked > 0.5:
            self._looked = time.monotonic()
            if self.run.stop_requested():
                self.token.cancel()
        if self.token.cancelled:
            raise Cancelled()


@dataclass(frozen=True)
class Record:
    """One line of a run's event log (every event type derives from it; `engine.train.state.Event` names the
    trainer's callback hooks instead): `kind` names the type in the store, `t` is wall-clock time."""

    kind: str = field(init=False, default="event")
    t: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """The record of this type that `data` (a line of the log) holds; fields it does not know are left out, so a
        log written by a newer version still reads."""
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunStarted(Record):
    kind: str = field(init=False, default="run_started")
    config: dict = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    device: str = ""
    precision: str = ""
    resumed_from_epoch: int = 0
    world_size: int = 1  # processes training together (torchrun)


@dataclass(frozen=True)
class SetupStep(Record):
    """Progress of one named step before or after training: load and check data, probe, choose the head, cache
    features, score the test split. `fraction` goes from 0 to 1; `eta_s` is the step's time left (None: unknown)."""

    kind: str = field(init=False, default="setup")
    name: str = ""
    fraction: float = 0.0
    eta_s: float | None = None
    run_eta_s: float | None = None  # the whole run's time left, as well as it is known (None: unknown)


@dataclass(frozen=True)
class PhaseStarted(Record):
    """A phase begins: the freeze map (per group: frozen or trainable, and its learning rate)."""

    kind: str = field(init=False, default="phase_started")
    phase: int = 0
    name: str = ""
    epochs: int = 0
    frozen: list[bool] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    path: str = ""  # how the phase runs: "cached features", "cached activations at <group>", "full forward"
    first_epoch: int = 1
    steps_per_epoch: int = 0


@dataclass(frozen=True)
class StepEnded(Record):
    kind: str = field(init=False, default="step")
    phase: int = 0
    epoch: int = 0
    step: int = 0  # global step
    loss: float = 0.0
    lrs: list[float] = field(default_factory=list)
    running_loss: float = 0.0  # the epoch's mean loss so far
    running_acc: float = 0.0  # the epoch's training accuracy so far
    eta_s: float | None = None  # time left in the run (steps, validation and the final scoring)


@dataclass(frozen=True)
class EpochEnded(Record):
    """An epoch was validated. Epoch 0 (phase 0) is the model the run starts from (the linear probe's head)."""

    kind: str = field(init=False, default="epoch")
    phase: int = 0
    epoch: int = 0  # global epoch, 1-based
    total_epochs: int = 0
    train_loss: float = 0.0
    train_acc: float = 0.0
    val_loss: float = 0.0
    val_acc: float = 0.0
    per_class: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images_per_s: float = 0.0
    eta_s: float = 0.0
    grad_norm: list[float] = field(default_factory=list)  # per group, mean over the epoch's steps
    drift: list[float] = field(default_factory=list)  # per group, ||w - w0|| / ||w0||
    best: bool = False
    adapt: dict[str, float] = field(default_factory=dict)  # the adaptation's epoch means: domain loss and accuracy, MMD
    target_val_acc: float | None = None  # the labelled target photos, when the run has some


@dataclass(frozen=True)
class RunEnded(Record):
    kind: str = field(init=False, default="run_ended")
    status: str = "finished"  # finished | cancelled | failed
    best_val_acc: float = 0.0
    best_epoch: int = 0
    seconds: float = 0.0
    error: str = ""
    test_accuracy: float | None = None


EVENT_TYPES: dict[str, type[Record]] = {
    c.kind: c for c in (RunStarted, SetupStep, PhaseStarted, StepEnded, EpochEnded, RunEnded)
}


def read_record(data: dict[str, Any]) -> Record | None:
    """The typed event a line of the log holds (`EVENT_TYPES` by its kind); None for a kind this version does not
    know (it is never written by it)."""
    kind = EVENT_TYPES.get(data.get("kind", ""))
    return None if kind is None else kind.from_dict(data)


def time_left(events: list[Record], now: float) -> float | None:
    """The whole run's time left at wall time `now`, as the dashboard shows it (one number): the estimates the run
    made (a setup step's `run_eta_s`, a training step's `eta_s`), each newer one weighed in by `engine.timeleft.damp`
    (no tenfold swing from one slow step), counted down by the time since the newest. When that countdown runs out
    while a setup step is still under way, the step's own measured pace takes over: its progress since its first
    report over the time it has taken so far, so a stalled step's estimate grows instead of sitting at zero. Never
    below one second while the run goes on; None before the run has an estimate."""
    shown, at, newest = None, 0.0, None
    for e in events:
        if e.t > now:
            break
        eta = e.run_eta_s if isinstance(e, SetupStep) else e.eta_s if isinstance(e, StepEnded) else None
        if eta is None:
            continue
        shown = eta if shown is None else damp(countdown(shown, at, e.t), eta, e.t - at)
        at, newest = e.t, e
    if shown is None:
        return None
    left = countdown(shown, at, now)
    if left < 1.0 and isinstance(newest, SetupStep):
        left = max(left, _step_pace_left(events, newest, now))
    return max(1.0, left)


def _step_pace_left(events: list[Record], last: SetupStep, now: float) -> float:
    """The rest of setup step `last` at the pace it has kept since its first report (an `engine.timeleft.Meter` read
    back from its events: no progress since `last` slows that pace as time passes), plus what its estimate counted
    after the step."""
    same = [e for e in events if isinstance(e, SetupStep) and e.name == last.name and e.t <= last.t]
    left = Meter.of([(e.t, e.fraction) for e in same]).left(now, since_first=True)
    if left is None or last.fraction >= 1:
        return 0.0
    after = (last.run_eta_s or 0.0) - (last.eta_s or 0.0)  # the estimate's share for later steps
    return left + max(0.0, after)
