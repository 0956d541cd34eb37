"""Short background jobs (probes, shoot-outs, LR range tests) with progress, for callers that must not block.

A job runs a function on a daemon thread, passing it a `progress(stage, fraction)` callback; any number of readers
take snapshots. The dashboard keeps one `Jobs` per process; nothing here knows about Streamlit.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Job:
    key: str
    state: str = "running"  # running | done | failed
    stage: str = ""
    fraction: float = 0.0
    result: Any = None
    error: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None


class Jobs:
    """A keyed registry of background jobs; starting a key that is already running returns the running job."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "running":
                return job
            job = self._jobs[key] = Job(key)

        def progress(stage: str, fraction: float) -> None:
            job.stage, job.fraction = stage, fraction

        def work() -> None:
            try:
                job.result = fn(*args, progress=progress, **kwargs)
                job.state = "done"
            except Exception as e:  # noqa: BLE001 - reported to the reader
                job.error = str(e) if hasattr(e, "args") and e.args else traceback.format_exc()
                job.state = "failed"
            finally:
                job.ended = time.time()

        threading.Thread(target=work, name=f"job-{key}", daemon=True).start()
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)
