"""A run as a page or the terminal shows it: one typed view computed from the run's snapshot (status, events, plan,
metrics), so what is on screen is read from the engine's own events and never worked out again by a page.

`RunView.of(snapshot)` takes what `Runner.snapshot` (or `engine.service.experiment.snapshot`) returns: its "plan" is
the stored `Plan` (`engine.plan.stored.read_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from engine.plan.parts import Plan
from engine.runs.events import EpochEnded, PhaseStarted, SetupStep, StepEnded, time_left
from engine.runs.result import RunResult
from engine.runs.store import LIVE


R = TypeVar("R")


@dataclass(frozen=True)
class Bar:
    """A progress bar: how far, and what it says."""

    fraction: float
    text: str


@dataclass(frozen=True)
class RunView:
    """The run's state and its events split by kind, with what is shown of them."""

    id: str
    state: str
    config: dict = field(default_factory=dict)
    plan: Plan | None = None  # the plan the run executes (None before it is made)
    result: RunResult | None = None  # how it ended, once it has
    epochs: list[EpochEnded] = field(default_factory=list)  # epoch 0 is the model the run starts from
    steps: list[StepEnded] = field(default_factory=list)
    phases: list[PhaseStarted] = field(default_factory=list)
    setups: list[SetupStep] = field(default_factory=list)  # the named steps outside the epochs
    error: str = ""  # why a run failed, in one line

    @classmethod
    def of(cls, snap: dict) -> RunView:
        events = snap.get("events") or []

        def kind(k: type[R]) -> list[R]:
            return [e for e in events if isinstance(e, k)]

        status = snap.get("status") or {}
        result = None if snap.get("metrics") is None else RunResult.from_dict(snap["metrics"])
        return cls(
            id=snap.get("id", ""),
            state=status.get("state", "queued"),
            config=snap.get("config") or {},
            plan=snap.get("plan"),
            result=result,
            epochs=kind(EpochEnded),
            steps=kind(StepEnded),
            phases=kind(PhaseStarted),
            setups=kind(SetupStep),
            error=(result.error if result else "") or status.get("error") or "",
        )

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def trained(self) -> list[EpochEnded]:
        """The epochs that trained (epoch 0, the starting model, is validated only)."""
        return [e for e in self.epochs if e.epoch > 0]

    @property
    def epochs_trained(self) -> int:
        return max([e.epoch for e in self.trained] or [0])

    @property
    def total_epochs(self) -> int:
        """The plan's epochs, both phases."""
        return self.plan.phases.total_epochs if self.plan else 0

    @property
    def phase(self) -> PhaseStarted | None:
        """The phase that runs (or ran last)."""
        return self.phases[-1] if self.phases else None

    @property
    def in_epoch(self) -> StepEnded | None:
        """The last training step while its epoch is still under way (not yet validated) and the run goes on."""
        if not self.steps or self.state != "running":
            return None
        last = self.steps[-1]
        return last if not self.epochs or last.epoch > self.epochs[-1].epoch else None

    @property
    def best_val_acc(self) -> float | None:
        return max((e.val_acc for e in self.epochs), default=None)

    def setup_step(self) -> SetupStep | None:
        """The named step under way, when it is newer than any training (a step after the epochs counts too)."""
        last_train_t = max([e.t for e in self.steps + self.trained + self.phases] or [0.0])
        return self.setups[-1] if self.setups and self.setups[-1].t >= last_train_t else None

    def bars(self) -> list[Bar]:
        """What the run is doing now, as progress bars: waiting, a named step, and the epochs."""
        out, setup = [], self.setup_step()
        if self.state == "queued" and not self.setups:
            out.append(Bar(0.0, "queued: waiting for the runner…"))
        if setup is not None and self.live:
            out.append(Bar(min(1.0, setup.fraction), f"{setup.name} · {setup.fraction:.0%}"))
        total = self.total_epochs
        if total and (self.steps or self.trained):
            out.append(self._training_bar(total))
        elif not total and self.state == "running" and setup is None:
            out.append(Bar(1.0, "no training epochs: the linear probe's head is the model"))
        return out

    def _training_bar(self, total: int) -> Bar:
        per_epoch = max(1, self.phase.steps_per_epoch if self.phase else 1)
        done = self.epochs_trained
        current = self.steps[-1].epoch if self.steps else done
        in_epoch = len([s for s in self.steps if s.epoch == current]) if current > done else 0
        text = f"training: epoch {max(current, done)} of {total}"
        if current > done:
            text += f", step {in_epoch} of {per_epoch}"
        return Bar(min(1.0, (done + in_epoch / per_epoch) / total), text)

    def time_left(self, now: float) -> float | None:
        """The whole run's time left at wall time `now` while it runs (`engine.runs.events.time_left` over its named
        steps and its training steps, each estimate damped into the last); None otherwise."""
        if self.state != "running":
            return None
        return time_left(sorted(self.setups + self.steps, key=lambda e: e.t), now)
