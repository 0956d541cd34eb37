"""One pace model: how fast a piece of work is going, measured, and the time left that pace implies.

Every time left TransferLab shows comes from here:

* `Meter` follows one step's fraction done over time (decoding and caching photos, a probe's forward passes, scoring,
  a download's bytes) and says its time left at its recent pace. The run's setup steps (`SetupProgress` in
  `engine.train.setup_steps`), the CLI's progress line (`StepClock`), the probe's early forecast of the whole run
  (`_PacedProbe`), the background jobs of the pages (a download's time left) and the dashboard's countdown of a
  stalled step all read one.
* `UnitTimes` keeps the seconds each unit of work took (a training step) and says the typical one: the trainer's
  time left multiplies it by the steps still to run.
* `countdown` turns an estimate made earlier into the time left now; `damp` moves it towards a newer estimate at a
  pace set by the time between them, so one slow step under load does not swing the time left tenfold.

The plan's own estimate is made before anything ran, from the paces the probes measured (`engine.plan.budget.Pace`,
images a second, scaled between backbones by their FLOPs); once the run moves, these measurements take over.

Each takes its clock as an argument (by default `time.perf_counter`, looked up at each reading, so a benchmark that
replaces it is obeyed), so a test drives it with a fake one.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

Clock = Callable[[], float]

MOVED = 0.02  # a step's pace is known once it has moved this far past the report it is measured from
RECENT = 1 / 3  # the pace is measured over the last (1 - RECENT) of the progress since the first report
RECENT_UNITS = 50  # the typical unit's seconds: the median of the newest this many
DAMPING = 0.1  # a newer estimate is followed with a time constant of this share of the time left...
DAMPING_S = (2.0, 30.0)  # ...kept between these seconds


def perf_clock() -> float:
    """The default clock: `time.perf_counter`, read when called."""
    return time.perf_counter()


class Meter:
    """The pace of one step from its (time, fraction) reports.

    The pace is measured from the first report past 0, so a fixed start (building a model, loading weights, opening
    a connection) does not count as pace, and over the last two thirds of the progress since then, since a step often
    speeds up after its first batches.
    """

    def __init__(self, clock: Clock = perf_clock):
        self.clock = clock
        self.started = clock()
        self.seen: list[tuple[float, float]] = []  # (time, fraction) of the reports past 0

    def restart(self) -> None:
        """Forgets the reports: a new step begins now."""
        self.started, self.seen = self.clock(), []

    def report(self, fraction: float, now: float | None = None) -> None:
        """The step is `fraction` done at `now` (default: the clock)."""
        if fraction > 0:
            self.seen.append((self.clock() if now is None else now, fraction))

    @property
    def fraction(self) -> float:
        return self.seen[-1][1] if self.seen else 0.0

    def left(self, now: float | None = None, since_first: bool = False) -> float | None:
        """Seconds until the step ends at its recent pace, counted from `now` (default: the clock), so a step that
        has not moved since its last report grows its time left; 0 once it is done; None until it has moved `MOVED`
        past its first report. With `since_first`, at its pace since its first report (what a short look at a step
        can measure), known as soon as it moved at all."""
        fraction = self.fraction
        if fraction >= 1:
            return 0.0
        if not self.seen:
            return None
        now = self.clock() if now is None else now
        t1, f1 = self.seen[0]
        if since_first:
            return (now - t1) * (1 - fraction) / (fraction - f1) if fraction > f1 else None
        t1, f1 = next((t, f) for t, f in self.seen if f >= f1 + (fraction - f1) * RECENT)
        if fraction - f1 <= MOVED:
            t1, f1 = self.seen[0]
        return (now - t1) * (1 - fraction) / (fraction - f1) if fraction - f1 > MOVED else None

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the step began."""
        return (self.clock() if now is None else now) - self.started

    @classmethod
    def of(cls, reports: list[tuple[float, float]], clock: Clock = perf_clock) -> Meter:
        """A meter holding `reports` ((time, fraction), oldest first): the pace of a step read back from its events."""
        meter = cls(clock)
        meter.started = reports[0][0] if reports else meter.started
        for t, f in reports:
            meter.report(f, t)
        return meter


class UnitTimes:
    """The seconds each unit of a repeated piece of work took (a training step), and the typical unit's."""

    def __init__(self, clock: Clock = perf_clock):
        self.clock = clock
        self.last = clock()
        self.seconds: list[float] = []

    def begin(self) -> None:
        """The next unit starts now (after a pause that is not a unit's: a validation, a checkpoint)."""
        self.last = self.clock()

    def done(self) -> None:
        """A unit ended now."""
        now = self.clock()
        self.seconds.append(now - self.last)
        self.last = now

    def typical(self) -> float | None:
        """The median of the newest `RECENT_UNITS` units' seconds; None before the first."""
        return statistics.median(self.seconds[-RECENT_UNITS:]) if self.seconds else None


def countdown(estimate_s: float, made_at: float, now: float) -> float:
    """An estimate of `estimate_s` seconds made at `made_at`, seen at `now`."""
    return estimate_s - (now - made_at)


def damp(predicted_s: float, newer_s: float, dt: float) -> float:
    """The time left once a newer estimate `newer_s` arrives `dt` seconds after the one shown (counted down to
    `predicted_s` by now): the two weighed in log space, the newer by `1 - exp(-dt / tau)` with `tau` a `DAMPING`
    share of the time left (2 to 30 s). A sustained change of pace is followed within a few `tau`; a tenfold estimate
    from one stalled step moves the time left by a little only."""
    predicted_s, newer_s = max(predicted_s, 1.0), max(newer_s, 1.0)
    tau = min(max(DAMPING * predicted_s, DAMPING_S[0]), DAMPING_S[1])
    w = 1.0 - math.exp(-max(dt, 0.0) / tau)
    return math.exp((1.0 - w) * math.log(predicted_s) + w * math.log(newer_s))
