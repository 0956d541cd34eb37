"""A run from where it stands to its end: planned first when it was queued without a plan, then trained.

The Trainer runs a plan it is handed and never plans. A run queued without one (the Quick demo, the lesson's arms,
`Runner.submit(cfg)`) is planned here, under the run's lock, so planning and training are one writer with one record:
the planning's steps are the run's setup steps (with the time left they imply), a stop asked while it plans stops it,
and a planning failure is the run's failure, recorded as the Trainer records one.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Sequence

from engine.errors import in_words
from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan
from engine.plan.stored import Planned, save_run_plan
from engine.runs.events import Cancelled, CancelToken, StopCheck
from engine.runs.result import RunResult
from engine.runs.store import Run, RunLock
from engine.train.callbacks import Callback
from engine.train.finish import end_result, record_end
from engine.train.loop import Trainer
from engine.train.setup_steps import SetupProgress
from engine.train.state import TrainState


def train(
    cfg: TrainConfig,
    run: Run,
    cancel: CancelToken | None = None,
    planned: Planned | None = None,
    callbacks: Sequence[Callback] | None = None,
) -> RunResult:
    """Trains `run` (resuming it when it has a checkpoint), planning it first when its folder holds no plan.

    Args:
        cfg: the run's configuration.
        run: the run folder.
        cancel: set it to stop the run at its next step (a stop asked through the run store works too).
        planned: the plan stored in the run folder, when the caller has it at hand (read from the folder otherwise).
        callbacks: the Trainer's callbacks (`default_callbacks()` when not given).

    Returns:
        How the run ended (what `metrics.json` holds).

    Raises:
        RunBusy: another process trains the run.
    """
    cancel = cancel or CancelToken()
    with RunLock(run):
        t_start = time.time()
        run.set_status(state="running", pid=os.getpid(), started=t_start)
        run.clear_stop()
        run.reserve()
        if planned is None and not (run.path / "plan.json").exists():
            ended = _plan(cfg, run, cancel, t_start)
            if ended is not None:
                return ended
        return Trainer(cfg, run, cancel, planned, callbacks).fit(held_since=t_start)


def _plan(cfg: TrainConfig, run: Run, cancel: CancelToken, t_start: float) -> RunResult | None:
    """Makes and stores the run's plan (its steps as the run's setup steps); None once stored, else the recorded
    result of a planning that was stopped or failed."""
    run.truncate_events(0)  # no event of an earlier attempt that never stored its plan
    report = SetupProgress(run, cancel=StopCheck(run, cancel))
    try:
        report.expect(cfg.optim.promised_seconds())
        save_run_plan(run, get_plan(cfg, report, pick_device(cfg.runtime.device)))
        return None
    except Cancelled:
        return record_end(run, end_result(run, None, TrainState(), t_start, "cancelled"))
    except Exception as e:  # noqa: BLE001 - a plan that cannot be made is the run's failure, recorded as one
        result = end_result(run, None, TrainState(), t_start, "failed", in_words(e))
        return record_end(run, result, traceback.format_exc())
