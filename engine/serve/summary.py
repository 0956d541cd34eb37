"""What a finished run means, in plain words, and the mistakes worth looking at: computed once, shown by every page."""

from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path

from engine.plan.parts import Plan
from engine.runs.result import RunResult


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def run_header(config: dict, plan: Plan | None) -> str:
    """The run in one line for a person: the dataset by its folder's name, its split sizes, backbone and strategy
    (from the plan, else the configuration before the plan exists); no server path, no raw configuration."""
    optim = config.get("optim") or {}
    data = plan.data.path if plan else (config.get("data") or {}).get("path") or ""
    name = Path(str(data)).name or "dataset"
    counts = (plan.data.n_train, plan.data.n_val, plan.data.n_test) if plan else ()
    sizes = " / ".join(f"{n:,} {label}" for n, label in zip(counts, ("train", "val", "test")) if n)
    backbone = plan.backbone if plan else optim.get("backbone") or config.get("backbone") or "?"
    strategy = plan.strategy if plan else optim.get("strategy") or "?"
    return " · ".join(x for x in (name, f"{sizes} photos" if sizes else "", backbone, strategy) if x)


def test_phrase(result: RunResult, plan: Plan | None, plan_unreadable: bool = False) -> str:
    """The run's test figure in words (model card, CLI): the accuracy with its interval; or why there is none: the
    run stopped before its plan or before scoring the test split it has, or the data was too small to hold one out.
    `plan_unreadable`: the run has a plan this version cannot read, so whether it held out test photos is not known."""
    if result.test_accuracy is not None:
        lo, hi = result.test_interval
        return (
            f"{result.test_accuracy:.1%} on {result.test_n} test photos nothing was chosen on (95% "
            f"interval {lo:.1%}–{hi:.1%})"
        )
    if plan is None and plan_unreadable:
        return "no test score recorded; its plan cannot be read by this version of TransferLab"
    if plan is None and result.status and result.status != "finished":
        return f"not scored: the run {result.status} before its plan was made"
    if plan and plan.data.n_test:
        return (
            f"not scored: the run {result.status or 'stopped'} before scoring its test split "
            f"({plan.data.n_test} photos); resume it to finish"
        )
    if result.cv_estimate is not None:
        return f"no test split (too little data); cross-validated estimate {result.cv_estimate:.1%}"
    return "no test split (too little data)"


def target_phrase(result: RunResult) -> str:
    """The target test figure in words: the chosen model on photos from where it will be used, against the starting
    head without adaptation."""
    lo, hi = result.target_test_interval
    out = (
        f"{result.target_test_accuracy:.1%} on {result.target_test_n} target test photos (95% interval "
        f"{lo:.1%}–{hi:.1%})"
    )
    base = result.start_target_test_accuracy
    if base is not None and result.start_target_test_interval:
        blo, bhi = result.start_target_test_interval
        out += (
            f", {100 * (result.target_test_accuracy - base):+.1f} points over the starting head without adaptation "
            f"({base:.1%}, {blo:.1%}–{bhi:.1%})"
        )
    return out


def no_epoch_sentence(start_acc: float, plan: Plan | None, state: str) -> str:
    """What the curves would show when only the starting head (epoch 0) has been scored: one sentence instead of an
    axis with a single point."""
    planned = plan.phases.total_epochs if plan else 0
    if state in ("running", "queued") and planned:
        return (
            f"The head the run starts from gets {start_acc:.1%} of the validation photos (epoch 0); the curves "
            f"begin with the first of {planned} training epochs."
        )
    return (
        f"No epoch was trained: the linear head the run started from is the model ({start_acc:.1%} of the "
        f"validation photos)."
    )


def _probe_phrase(probe: float, start: float | None, run_scored: bool) -> str:
    """The probe's val figure and, where it differs, the starting head's: scored by the run itself (`run_scored`),
    as every epoch is, or by the plan."""
    out = f"The linear probe on the final features got {_pct(probe)} of the validation photos"
    if start is None or round(start, 3) == round(probe, 3):
        return out
    if not run_scored:
        return out + f"; the head the run started from got {_pct(start)}"
    return (
        out + " on the features the plan cached; the head the run started from got "
        f"{_pct(start)} as the run scores every epoch"
    )


def run_summary(result: RunResult, plan: Plan | None) -> str:
    """One paragraph: the honest number first (test), then what the probe and the fine-tuning each contributed."""
    test, val = result.test_accuracy, result.best_val_acc
    if test is not None:
        lo, hi = result.test_interval
        lead = (
            f"{test:.0%} of the {result.test_n} photos it has never seen are right (test split; 95% interval "
            f"{lo:.0%}–{hi:.0%})."
        )
    elif result.cv_estimate is not None:
        lead = (
            f"There was too little data to hold out a test split; cross-validation estimates "
            f"{result.cv_estimate:.0%} on new photos."
        )
    else:
        lead = "There was too little data to hold out a test split, so there is no honest estimate on new photos."
    planned = plan.head.accuracy if plan else None
    start = result.start_val_accuracy if result.start_val_accuracy is not None else planned
    probe = plan.head.probe_accuracy if plan else None
    parts = [lead]
    if result.target_test_accuracy is not None:
        parts.append(f"On photos from where it will be used: {target_phrase(result)}.")
    if result.target_reverse:
        parts.append(result.target_reverse["sentence"])
    if probe is not None:
        parts.append(_probe_phrase(probe, start, result.start_val_accuracy is not None) + ".")
    trained = [g for g, f in zip(plan.phases.groups, plan.phases.frozen) if not f] if plan else []
    if result.best_epoch > 0 and start is not None and val is not None:
        parts.append(
            f"Training ({', '.join(trained)}) added {100 * (val - start):+.1f} points on the validation "
            f"photos (the split the epoch was chosen on)."
        )
    elif start is not None and plan and plan.phases.total_epochs == 0:
        parts.append("The plan trains no epoch, so the run's model is the head it started from.")
    elif start is not None:
        parts.append("No trained epoch beat the starting head on the validation photos, so the run kept that head.")
    if plan and plan.data.leaks:
        parts.append(f"Careful: {plan.data.leak_note}, so the scores on them are higher than on new photos.")
    parts.append("Next: 5 Compare, then 6 Predict & export.")
    return " ".join(parts)


@dataclass(frozen=True)
class Mistake:
    """A photo the run's model got wrong: its path, true and predicted class, the model's confidence (None when the
    run kept none) and the split it was scored on."""

    path: str
    true: str
    predicted: str
    confidence: float | None
    split: str


def worst_mistakes(result: RunResult, k: int = 8) -> list[Mistake]:
    """The wrong predictions of the split the run was scored on (test, else val), most confident first; a photo
    moved or deleted since the run is left out (there is nothing to show)."""
    split, classes = result.scored_split, result.classes
    paths, labels, preds, conf = result.predictions()
    conf = conf or [None] * len(paths)
    wrong = [
        Mistake(p, classes[y], classes[q], c, split)
        for p, y, q, c in zip(paths, labels, preds, conf)
        if y != q and Path(p).is_file()
    ]
    return sorted(wrong, key=lambda w: -(w.confidence or 0.0))[:k]
