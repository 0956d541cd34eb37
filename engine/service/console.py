"""Following a run in the terminal: a progress bar from the run's events (read from the store, as the dashboard
reads them), and the result in words or JSON."""

from __future__ import annotations

import json
import sys
import threading
import time

from engine.errors import in_words
from engine.timeleft import Clock, perf_clock, Meter
from engine.plan.stored import read_plan_checked
from engine.progress import Progress
from engine.runs.events import EpochEnded, SetupStep, StepEnded
from engine.runs.result import RunResult
from engine.serve.summary import target_phrase, test_phrase

RESULT_KEYS = (
    "run_id",
    "run_dir",
    "status",
    "best_val_acc",
    "chosen_on",
    "best_epoch",
    "test_accuracy",
    "test_interval",
    "test_n",
    "test_source",
    "cv_estimate",
    "probe_accuracy",
    "head_accuracy",
    "target_test_accuracy",
    "target_test_interval",
    "target_test_n",
    "start_target_test_accuracy",
    "start_target_test_interval",
    "seconds",
    "error",
)


def progress_line(stage: str, frac: float, left: float | None = None, run_left: float | None = None) -> None:
    """One terminal line for a step: its progress, its time left and the whole run's, when known."""
    words = "".join(
        [
            f" · about {left:.0f} s left" if left is not None and frac < 1 else "",
            f" (run: about {run_left:.0f} s left)" if run_left is not None and frac < 1 else "",
        ]
    )
    print(f"\r{stage:>32} {frac:6.1%}{words}      ", end="" if frac < 1 else "\n", file=sys.stderr, flush=True)


class StepClock(Progress):
    """Progress reports (step, fraction) as terminal lines with the step's time left from its pace (`engine.timeleft`;
    for the commands that report in-process: probe, plan, lr-find, a weights download)."""

    def __init__(self, clock: Clock = perf_clock):
        self.name, self.meter = "", Meter(clock)

    def __call__(self, name: str, fraction: float) -> None:
        if name != self.name:
            self.name = name
            self.meter.restart()
        self.meter.report(fraction)
        progress_line(name, fraction, self.meter.left())


def watch(run, thread: threading.Thread) -> None:
    """Progress from the run's events (the CLI reads the store like the dashboard does)."""
    from tqdm import tqdm

    bar, seen = None, 0
    while thread.is_alive():
        evs = run.events()
        for e in evs[seen:]:
            if isinstance(e, SetupStep):
                progress_line(e.name, e.fraction, e.eta_s, e.run_eta_s)
            elif isinstance(e, StepEnded):
                if bar is None:
                    bar = tqdm(total=None, unit="step", file=sys.stderr)
                bar.update(1)
                bar.set_postfix(
                    epoch=e.epoch,
                    loss=f"{e.running_loss:.3f}",
                    left=f"{e.eta_s:.0f}s" if e.eta_s is not None else "?",
                )
            elif isinstance(e, EpochEnded):
                print(f"\nepoch {e.epoch}/{e.total_epochs}: val {e.val_acc:.1%}", file=sys.stderr)
        seen = len(evs)
        time.sleep(0.5)
    if bar is not None:
        bar.close()


def train_result(run, as_json: bool, returned: RunResult | None = None) -> int:
    """Prints the run's result (its metrics.json, else what the training thread returned, else its status)."""
    try:
        stored = RunResult.read(run)
    except (OSError, ValueError):
        stored = None
    result = stored or returned or RunResult(status=run.status().get("state", ""), run_id=run.id, run_dir=str(run.path))
    out = {k: getattr(result, k) for k in RESULT_KEYS}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        plan, unreadable = read_plan_checked(run.path)
        test = f"test accuracy {test_phrase(result, plan, unreadable)}"
        if result.target_test_accuracy is not None:
            test += f"; {target_phrase(result)}"
        val = (
            f"val {out['best_val_acc']:.1%} (chosen on) at epoch {out['best_epoch']}"
            if out["best_epoch"] is not None and out["best_epoch"] >= 0
            else "no epoch scored on val"
        )
        print(
            f"run {out['run_id']} {out['status']}: {test}; {val}, in {out['seconds'] or 0:.0f}s"
            f"{' - ' + out['error'] if out['error'] else ''}\n  {out['run_dir']}"
        )
    return 0 if out["status"] == "finished" else 1


def fit_in_thread(run, cfg, quiet: bool, planned=None) -> RunResult | None:
    """Trains `run` (`engine.service.training.train`: with `planned`, that plan; planned first when its folder has
    none) in a thread while the main thread shows progress; a busy run (another writer) is raised here. Ctrl-C stops
    it at its next step. Returns the run's result as the thread saw it (the record on disk may be missing: a folder
    that could not be written)."""
    from engine.runs.events import CancelToken
    from engine.runs.store import RunLock
    from engine.service.training import train

    lock = RunLock(run)
    lock.acquire()  # fails fast with RunBusy before any thread starts
    lock.release()
    token, out = CancelToken(), {}

    def work() -> None:
        try:
            out["result"] = train(cfg, run, token, planned)
        except OSError as e:  # the run folder could not be written even to start: the error is the result
            out["result"] = RunResult(status="failed", error=in_words(e), run_id=run.id, run_dir=str(run.path))

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        if not quiet:
            watch(run, t)
        t.join()
    except KeyboardInterrupt:
        token.cancel()
        t.join()
    return out.get("result")
