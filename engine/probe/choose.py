"""Choosing the head by evidence: candidate probes (stages, concatenations of stages, mirror images, regularisation,
backbones) scored by stratified k-fold cross-validation over train + val on cached features.

One 300-image validation split is too noisy to choose a stage, a regularisation and a backbone at once: its standard
error is about two points. Five folds over all labelled non-test images cost seconds on cached features and cut the
noise. The test split is never read here.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

from engine.model.taps import FINAL
from engine.probe.features import FeatureSet, cap_rows, fit_rows
from engine.probe.linear import ProbeResult, fit_linear
from engine.progress import QUIET_STEP, Step

Keep = Callable[[str, tuple[int, ...]], bool]  # whether a backbone read at some taps fits a budget

FOLDS = 5
BASE_C = 0.1  # regularisation of the candidates; the winner is then tried at other strengths
C_GRID = (0.03, 0.3, 1.0)
IMBALANCE = 2.0  # largest / smallest class at which the choice weighs every class equally (balanced accuracy)


@dataclass(frozen=True)
class HeadChoice:
    """One candidate head and its cross-validated score (`cv` is the mean over folds, `cv_sd` their spread)."""

    backbone: str
    taps: tuple[int, ...]
    flip: bool
    c: float
    balanced: bool
    label: str
    cv: float | None = None
    cv_sd: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HeadChoice":
        return cls(**{**d, "taps": tuple(d["taps"])})


def _pooled(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train + val rows and their labels."""
    rows = np.flatnonzero(np.isin(fs.splits, ("train", "val")))
    return rows, fs.labels[rows]


# PLR0913: one candidate head's fields plus the folds
def cross_validate(  # noqa: PLR0913
    fs: FeatureSet,
    taps: tuple[int, ...],
    flip: bool,
    c: float,
    balanced: bool,
    n_classes: int,
    metric: str = "accuracy",
    folds: int = FOLDS,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Mean and standard deviation over stratified folds of train + val; None when a class has under 2 images."""
    rows, y = _pooled(fs)
    views = range(fs.views if flip else 1)
    kept = cap_rows(np.arange(len(rows)), y, fit_rows(fs.dim(taps), len(views)), seed)  # a budget-sized sample
    rows, y = rows[kept], y[kept]
    counts = np.bincount(y, minlength=n_classes)
    k = min(folds, int(counts[counts > 0].min()))
    if k < 2:
        return None
    feats = [fs.rows(rows, taps, v) for v in views]
    scores = []
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y):
        fit = fit_linear(
            np.concatenate([f[tr] for f in feats]),
            np.concatenate([y[tr]] * len(feats)),
            np.mean([f[te] for f in feats], axis=0),
            y[te],
            n_classes,
            c,
            balanced,
            tol=1e-3,
        )
        scores.append(_metric(y[te], fit.predictions, metric))
    return float(np.mean(scores)), float(np.std(scores))


def _metric(y: np.ndarray, pred: np.ndarray, metric: str) -> float:
    """Accuracy, or balanced accuracy (the mean recall of the classes present in `y`)."""
    if metric == "balanced accuracy":
        with warnings.catch_warnings():  # a fold's predictions may name a class its labels lack: not counted
            warnings.simplefilter("ignore", UserWarning)
            return float(balanced_accuracy_score(y, pred))
    return float(accuracy_score(y, pred))


def label_of(taps: tuple[int, ...], names: dict[int, str], flip: bool) -> str:
    body = [names[t] for t in taps if t != FINAL]
    parts = ([f"{body[0]} to {body[-1]}" if len(body) > 2 else " + ".join(body)] if body else []) + (
        ["final features"] if FINAL in taps else []
    )
    return " + ".join(parts) + (", with mirror images" if flip else "")


def candidate_taps(probe: ProbeResult, keep: Keep | None = None) -> list[tuple[int, ...]]:
    """Tap sets worth scoring: the final features, the best stage, the best stage with the one below, and windows of
    up to four consecutive stages ending at the best stage and at the last stage. Under `keep` (a parameter budget:
    `engine.plan.param_budget`), only the sets it keeps, the best and last stages being those among the stages it
    keeps."""
    fits = keep or (lambda backbone, taps: True)
    accuracy = {c["tap"]: c["accuracy"] for c in probe.stage_curve if c["tap"] != FINAL}
    body = [t for t in accuracy if fits(probe.backbone, (t,))]
    if not body:
        return [(FINAL,)] if fits(probe.backbone, (FINAL,)) else []
    best = max(body, key=accuracy.get)
    last = body[-1]
    sets = [
        (FINAL,),
        (best,),
        tuple(t for t in (best - 1, best) if t in body),
        tuple(t for t in range(best - 3, best + 1) if t in body),
        tuple(t for t in range(last - 3, last + 1) if t in body),
    ]
    return list(dict.fromkeys(s for s in sets if s and fits(probe.backbone, s)))


# PLR0913: the probes and their classes, the imbalance, the time allowed, who watches, the budget
def choose_head(  # noqa: PLR0913
    probes: list[ProbeResult],
    n_classes: int,
    imbalance: float,
    seconds: float | None = None,
    progress: Step = QUIET_STEP,
    keep: Keep | None = None,
) -> tuple[HeadChoice, list[HeadChoice], str]:
    """Scores the candidates of every probed backbone and returns (the best, all scored, the metric used).

    Candidates are scored in order of promise; when `seconds` runs out the rest are skipped (the first candidate of
    the first backbone is always scored). Without enough images for 2 folds, the best stage probe on val wins (under a
    budget, the first candidate). `keep` leaves out the tap sets over a parameter budget.
    """
    metric = "balanced accuracy" if imbalance >= IMBALANCE else "accuracy"
    todo = _candidates(probes, metric == "balanced accuracy", keep)
    t0, scored = time.perf_counter(), []
    by_name = {p.backbone: p for p in probes}
    steps = len(todo) + len(C_GRID)  # the candidates, then the winner at other strengths
    for i, cand in enumerate(todo):
        progress.check_cancel()
        if scored and seconds is not None and time.perf_counter() - t0 > seconds:
            break
        progress(i / steps)
        scored.append(_score(by_name[cand.backbone].features, cand, n_classes, metric))
    if scored[0].cv is None:  # too few images to cross-validate: the val probe decides
        return _on_val(probes[0], todo[0], keep), scored, "val accuracy"
    best = max(scored, key=lambda h: h.cv)
    for j, c in enumerate(C_GRID):  # the winner at other regularisation strengths
        if seconds is not None and time.perf_counter() - t0 > seconds:
            break
        progress.check_cancel()
        progress((len(todo) + j) / steps)
        trial = _score(
            by_name[best.backbone].features, HeadChoice(**{**asdict(best), "c": c, "cv": None}), n_classes, metric
        )
        scored.append(trial)
        if trial.cv > best.cv:
            best = trial
    progress(1.0)
    return best, scored, metric


def _candidates(probes: list[ProbeResult], balanced: bool, keep: Keep | None) -> list[HeadChoice]:
    """Every probed backbone's candidate heads, unscored, in order of promise.

    Raises:
        ValueError: None fits the budget of `keep` (the planner says so in words first: `engine.plan.param_budget`).
    """
    todo: list[HeadChoice] = []
    for p in probes:
        names = {c["tap"]: c["name"] for c in p.stage_curve}
        mirrored = p.features.views > 1  # large datasets are probed without the mirror view
        for taps in candidate_taps(p, keep):
            for flip in (False, True) if taps == (FINAL,) and mirrored else (mirrored,):
                todo.append(HeadChoice(p.backbone, taps, flip, BASE_C, balanced, label_of(taps, names, flip)))
    if not todo:
        raise ValueError("no candidate head fits the parameter budget")
    return todo


def _on_val(p: ProbeResult, first: HeadChoice, keep: Keep | None) -> HeadChoice:
    """The head when too few images cross-validate: the best stage of the first probe on val, if it beats the final
    features (under a budget: the first candidate, which fits)."""
    if keep is not None:
        return first
    best = p.best_stage if p.best_stage and p.best_stage["accuracy"] > p.accuracy else None
    taps = (best["tap"],) if best else (FINAL,)
    names = {c["tap"]: c["name"] for c in p.stage_curve}
    return HeadChoice(p.backbone, taps, False, 1.0, False, label_of(taps, names, False))


def _score(fs: FeatureSet, cand: HeadChoice, n_classes: int, metric: str) -> HeadChoice:
    t0 = time.perf_counter()
    cv = cross_validate(fs, cand.taps, cand.flip, cand.c, cand.balanced, n_classes, metric)
    return HeadChoice(
        **{
            **asdict(cand),
            "cv": None if cv is None else cv[0],
            "cv_sd": None if cv is None else cv[1],
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
