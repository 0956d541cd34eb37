"""The progress of named setup steps (load and check data, probe, choose the head, cache features, score the test
split) as `SetupStep` events: each step's own time left from its pace, and the whole run's, from the plan's estimate
as the engine refines it (`expect`, `expect_after`)."""

from __future__ import annotations

import math
from typing import Callable

from engine.timeleft import Clock, perf_clock, Meter
from engine.progress import Progress
from engine.runs.events import SetupStep


class SetupProgress(Progress):
    """Turns (step name, fraction) reports into `SetupStep` events, with the step's time left from its pace: measured
    after its first progress report, so a fixed start (building a model, loading weights) does not count as pace.
    `cancel` raises `Cancelled` when the run was asked to stop."""

    def __init__(
        self,
        run,
        cancel: Callable[[], None] | None = None,
        min_interval: float = 0.25,
        clock: Clock = perf_clock,
    ):
        self.run, self.cancel, self.min_interval, self.clock = run, cancel, min_interval, clock
        self.name, self.last = "", 0.0
        self.meter = Meter(clock)  # the current step's pace
        self.deadline: float | None = None  # when the whole run is expected to end (on `clock`)
        self.after: tuple[str, float, float | None, float] | None = None  # (step, seconds after it that scale with
        # its pace, its planned seconds, seconds after it that do not)

    def expect(self, seconds: float | None) -> None:
        """The rest of the run is expected to take `seconds` from now (auto's budget before its plan exists, then the
        plan's estimate, then the final scoring's)."""
        self.deadline, self.after = None if seconds is None else self.clock() + seconds, None

    def expect_after(self, name: str, rest_s: float, planned_s: float | None = None, fixed_s: float = 0.0) -> None:
        """Once step `name` ends, the run needs `rest_s + fixed_s` more. While it runs, the run's time left is the
        step's own (from its pace) plus that; with `planned_s`, the step's planned length, `rest_s` is scaled by how
        the step's pace compares with the plan's (the steps after it that are forward passes like it: caching,
        scoring), `fixed_s` is not (training epochs, whose pace the trainer measures once they run)."""
        self.after = (name, rest_s, planned_s, fixed_s)

    def check_cancel(self) -> None:
        if self.cancel is not None:
            self.cancel()

    def __call__(self, name: str, fraction: float) -> None:
        if self.run is None:  # a process other than rank 0, or a run-less trainer (the LR finder)
            return
        now = self.clock()
        if name != self.name:
            self.name, self.last = name, 0.0
            self.meter.restart()
        if 0 < fraction < 1 and now - self.last < self.min_interval:
            return
        self.last = now
        self.meter.report(fraction, now)
        eta = self.meter.left(now) if fraction > 0 else None
        eta = None if eta is None or not math.isfinite(eta) else round(eta, 1)
        run_eta = None if self.deadline is None else round(max(self.deadline - now, eta or 0.0), 1)
        if self.after is not None and self.after[0] == name and eta is not None:
            _, rest, planned, fixed = self.after
            rest = rest * ((self.meter.elapsed(now) + eta) / planned if planned else 1.0) + fixed  # projected / planned
            run_eta = round(eta + rest, 1)
            if fraction >= 1:  # the step is over: what remains is a deadline again
                self.deadline, self.after = now + rest, None
        self.run.append(
            SetupStep(name=name, fraction=float(min(1.0, max(0.0, fraction))), eta_s=eta, run_eta_s=run_eta)
        )
