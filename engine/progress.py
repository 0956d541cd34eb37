"""One way for a long function to say how far it is, how long the rest will take, and to learn that it should stop.

* `Progress` reports named steps (`progress(name, fraction)`), the run's expected seconds (`expect`, `expect_after`)
  and raises `Cancelled` from `check_cancel()` when asked to stop. The base class does all of that as nothing: a
  caller that does not watch passes nothing (`QUIET`).
* `Step` is one named step of a `Progress`, scaled into a share of it: what inner loops take (`step(fraction)`,
  `step.check_cancel()`); `step.sub(lo, hi)` hands a part of it to a helper.
* `Reporter` makes a `Progress` of a plain `(name, fraction)` callable and a cancel flag (background jobs, the CLI).

A step starts at 0 and ends at 1; every report in between is optional.
"""

from __future__ import annotations

import threading
from typing import Callable

from engine.runs.events import Cancelled


class Progress:
    """A do-nothing progress: subclasses record the reports they need."""

    def __call__(self, name: str, fraction: float) -> None:
        """Step `name` is `fraction` done (0 starts it, 1 ends it)."""

    def expect(self, seconds: float | None) -> None:
        """The rest of the work is expected to take `seconds` from now (None: unknown)."""

    def expect_after(self, name: str, rest_s: float, planned_s: float | None = None, fixed_s: float = 0.0) -> None:
        """Once step `name` ends, the work needs `rest_s + fixed_s` more; with `planned_s` (the step's planned
        seconds), `rest_s` scales with how the step's pace compares with the plan's (see `SetupProgress`)."""

    def check_cancel(self) -> None:
        """Raises `Cancelled` when the work was asked to stop."""

    def step(self, name: str) -> Step:
        """The named step `name`, for the functions that report one step's fraction."""
        return Step(self, name)


class Step:
    """The part [lo, hi] of the named step `name` of `parent`."""

    def __init__(self, parent: Progress, name: str, lo: float = 0.0, hi: float = 1.0):
        self.parent, self.name, self.lo, self.hi = parent, name, lo, hi

    def __call__(self, fraction: float) -> None:
        self.parent(self.name, self.lo + (self.hi - self.lo) * fraction)

    def check_cancel(self) -> None:
        self.parent.check_cancel()

    def sub(self, lo: float, hi: float) -> Step:
        """The part [lo, hi] of this step: 0 to 1 of the part reports lo to hi of this step, through it."""
        return _Part(self, lo, hi)


class _Part(Step):
    """A share of a step, reported through the step itself (so a step that watches its own reports sees them)."""

    def __init__(self, whole: Step, lo: float, hi: float):
        super().__init__(whole.parent, whole.name, lo, hi)
        self.whole = whole

    def __call__(self, fraction: float) -> None:
        self.whole(self.lo + (self.hi - self.lo) * fraction)

    def check_cancel(self) -> None:
        self.whole.check_cancel()


class Reporter(Progress):
    """A `Progress` over plain callables: `report(name, fraction)`, and `cancel` (an event set to stop, or a function
    that raises `Cancelled`)."""

    def __init__(
        self,
        report: Callable[[str, float], None] | None = None,
        cancel: threading.Event | Callable[[], None] | None = None,
    ):
        self.report, self.cancel = report, cancel

    def __call__(self, name: str, fraction: float) -> None:
        if self.report is not None:
            self.report(name, fraction)

    def check_cancel(self) -> None:
        if isinstance(self.cancel, threading.Event):
            if self.cancel.is_set():
                raise Cancelled()
        elif self.cancel is not None:
            self.cancel()


QUIET = Progress()
QUIET_STEP = QUIET.step("")
