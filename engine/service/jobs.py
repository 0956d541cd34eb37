"""Short background jobs (probes, shoot-outs, LR range tests) with progress, for callers that must not block.

A job runs a function on a daemon thread, passing it a `Progress` (`progress(stage, fraction)`, and a cancel check
that stops it once the job is cancelled); any number of readers
take snapshots. The dashboard keeps one `Jobs` per process; nothing here knows about Streamlit.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.timeleft import Meter
from engine.progress import Reporter
from engine.runs.events import Cancelled


@dataclass
class Job:
    key: str
    state: str = "running"  # running | done | failed | cancelled
    stage: str = ""
    fraction: float = 0.0
    result: Any = None
    error: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)  # set by `Jobs.cancel`; cancellable jobs watch it
    meter: Meter = field(default_factory=Meter, repr=False)  # the current stage's pace

    def report(self, stage: str, fraction: float) -> None:
        """The job's stage `stage` is `fraction` done."""
        if stage != self.stage:
            self.meter.restart()
        self.stage, self.fraction = stage, fraction
        self.meter.report(fraction)

    @property
    def left_s(self) -> float | None:
        """The current stage's time left at its pace (`engine.timeleft.Meter`); None while unknown or once it ended."""
        return self.meter.left() if self.state == "running" else None


class Jobs:
    """A keyed registry of background jobs; starting a key that is already running returns the running job."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self, key: str, fn: Callable[..., Any], *args: Any, cancellable: bool = False, **kwargs: Any) -> Job:
        """Runs `fn(*args, progress=..., **kwargs)` on a thread; with `cancellable`, also `cancel=` the job's event.

        A running job of the same key is returned as it is; a finished one is replaced."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "running":
                return job
            job = self._jobs[key] = Job(key)
            if cancellable:
                kwargs["cancel"] = job.cancel

        def work() -> None:
            try:
                job.result = fn(*args, progress=Reporter(job.report, job.cancel), **kwargs)
                job.state = "done"
            except Cancelled:
                job.state, job.error = "cancelled", "cancelled"
            except Exception as e:  # noqa: BLE001 - reported to the reader
                job.error = str(e) if hasattr(e, "args") and e.args else traceback.format_exc()
                job.state = "cancelled" if job.cancel.is_set() else "failed"
            finally:
                job.ended = time.time()

        threading.Thread(target=work, name=f"job-{key}", daemon=True).start()
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def cancel(self, key: str) -> None:
        """Asks the running job `key` to stop (a job started with `cancellable`); a no-op otherwise."""
        job = self.get(key)
        if job is not None and job.state == "running":
            job.cancel.set()
