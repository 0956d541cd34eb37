"""One run as the Compare page and `engine runs` compare it: the probe-vs-fine-tune gap measured on the test split.

Every number comes from what the run stored (its plan, metrics and event log); nothing is scored again here.
"""

from __future__ import annotations

from pathlib import Path

from engine.plan.stored import read_plan
from engine.runs.result import RunResult
from engine.runs.store import Run


def _seconds_to_start(events: list[dict]) -> float | None:
    """Seconds from the run's first start to its starting head's validation (epoch 0): what the probe's head cost."""
    start = next((e["t"] for e in events if e["kind"] == "run_started"), None)
    head = next((e["t"] for e in events if e["kind"] == "epoch" and e["epoch"] == 0), None)
    return head - start if start is not None and head is not None else None


def compare_row(run: Run) -> dict:
    """The run's dataset, backbone and strategy; the probe's val accuracy; on test, the starting head (the probe's
    head on the pretrained backbone, epoch 0) and the chosen model (its best epoch on val), each with its 95%
    interval; and the seconds to each."""
    plan, r = read_plan(run.path), RunResult.read(run)
    events, status = run.events(), run.status()
    epochs = [e for e in events if e["kind"] == "epoch"]
    return {
        "run": run.id,
        "dataset": Path(plan.data.path).name if plan else "?",
        "backbone": plan.backbone if plan else None,
        "strategy": plan.strategy if plan else None,
        "status": status.get("state"),
        "probe": plan.head.probe_accuracy if plan else None,
        "val": status.get("best_val_acc") if r is None else r.best_val_acc,
        "test": r and r.test_accuracy,
        "test_interval": r and r.test_interval,
        "test_n": r and r.test_n,
        "start_test": r and r.start_test_accuracy,
        "start_test_interval": r and r.start_test_interval,
        "best_epoch": r and r.best_epoch,
        "epochs_trained": max([e["epoch"] for e in epochs] or [0]),
        "start_seconds": _seconds_to_start(events),
        "seconds": r and r.seconds,
    }


def gap_sentence(rows: list[dict]) -> str:
    """What the chart shows in words: the largest gain of a run's chosen model over its starting head, on test."""
    both = [r for r in rows if r["test"] is not None and r["start_test"] is not None]
    if not both:
        return (
            "No run here has a test split scored for both its starting head and its chosen model yet (runs "
            "started before this version, or too few photos for a test split)."
        )
    top = max(both, key=lambda r: r["test"] - r["start_test"])
    gain = top["test"] - top["start_test"]
    if top["best_epoch"] == 0 or gain <= 0:
        return (
            "No trained epoch beat the probe's head on val in these runs, so each kept its head: the linear probe "
            "is the model here."
        )
    return (
        f"Run {top['run']} ({top['strategy']}) went from {top['start_test']:.0%} with the probe's head to "
        f"{top['test']:.0%} after fine-tuning (epoch {top['best_epoch']}), on {top['test_n']} test photos nothing "
        "was chosen on; the bars' whiskers are 95% intervals, so a gain inside them may be chance."
    )
