"""Background runs: one worker thread per device, others queued, cancel through a token, snapshots for any reader.

The worker never touches the UI; readers (the dashboard, the CLI) read the run store. `status()` of a run that was
running when its process died reports "interrupted", and `resume()` continues it from its last checkpoint.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from engine.errors import RunBusy
from engine.plan.config import TrainConfig
from engine.plan.stored import Planned, read_plan, save_run_plan
from engine.runs.events import CancelToken
from engine.runs.store import TERMINAL, EventTail, Run, RunStore
from engine.service.training import train

Fit = Callable[[TrainConfig, Run, CancelToken], object]  # trains one run to its end (tests pass a fake)


class Runner:
    """Thread-safe queue of runs executed one at a time on a daemon worker thread.

    Args:
        store: the run store (default: TRANSFERLAB_HOME/runs).
        fit: what trains one run: `engine.service.training.train`, which plans a run queued without a plan first.
    """

    def __init__(self, store: RunStore | None = None, fit: Fit = train):
        self.store = store or RunStore()
        self._fit = fit
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[str] = deque()
        self._tokens: dict[str, CancelToken] = {}
        self._active: str | None = None
        self._tails: dict[str, EventTail] = {}
        self._thread = threading.Thread(target=self._work, name="transferlab-runner", daemon=True)
        self._thread.start()

    def submit(self, cfg: TrainConfig, name: str = "", planned: Planned | None = None) -> str:
        """Creates a run for `cfg` and queues it; returns its id. With `planned`, the run executes that plan (as the
        page showed it, edits included); without, the worker plans it first."""
        run = self.store.create(cfg.to_dict(), name)
        if planned is not None:
            save_run_plan(run, planned)
        self._enqueue(run.id)
        return run.id

    def resume(self, run_id: str) -> str:
        """Queues an interrupted, cancelled or failed run to continue from its last checkpoint."""
        run = self.store.open(run_id)
        if run.status().get("state") in ("running", "queued") and run_id in self._tokens:
            return run_id
        run.check_resumable()
        run.clear_stop()
        run.set_status(state="queued")
        self._enqueue(run_id)
        return run_id

    def _enqueue(self, run_id: str) -> None:
        with self._wake:
            self._tokens[run_id] = CancelToken()
            self._queue.append(run_id)
            self._wake.notify()

    def cancel(self, run_id: str) -> str:
        """Stops a run within one step, or removes it from the queue. A run trained by another process (the CLI) is
        asked to stop through the run store. Returns what was done, in words."""
        run = self.store.open(run_id)
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                run.set_status(state="cancelled")
                return "removed from the queue"
            if run_id in self._tokens:
                self._tokens[run_id].cancel()
                return "stopping at the next step"
        status = run.status()
        if status.get("state") == "running":
            run.request_stop()
            return f"asked process {status.get('pid')} to stop at its next step"
        return f"not running ({status.get('state')})"

    @property
    def active(self) -> str | None:
        with self._lock:
            return self._active

    @property
    def queued(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def snapshot(self, run_id: str) -> dict:
        """A copy of the run's status, config and events (read incrementally): safe to read from any thread."""
        run = self.store.open(run_id)
        with self._lock:
            if run_id not in self._tails:
                self._tails[run_id] = EventTail(run)
            tail = self._tails[run_id]
        return {
            "id": run_id,
            "status": run.status(),
            "config": run.config,
            "events": tail.read(),
            "metrics": run.read_json("metrics.json"),
            "plan": read_plan(run.path),
        }

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Blocks until the run reaches a terminal state (for tests and the CLI)."""
        import time

        end = None if timeout is None else time.time() + timeout
        while self.store.open(run_id).status().get("state") not in TERMINAL:
            if end is not None and time.time() > end:
                return False
            time.sleep(0.05)
        return True

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                run_id = self._queue.popleft()
                self._active = run_id
                token = self._tokens[run_id]
            try:
                run = Run(self.store.root / run_id)
                self._fit(TrainConfig.from_dict(run.config), run, token)
            except RunBusy:
                pass  # another process trains it: its status is that process's to write
            except Exception as e:  # noqa: BLE001 - the worker must survive any run
                Run(self.store.root / run_id).set_status(state="failed", error=str(e))
            finally:
                with self._lock:
                    self._active = None
                    self._tokens.pop(run_id, None)
