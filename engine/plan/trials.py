"""Auto's adaptation candidates with target photos, tried on the cached features before anything trains.

Each candidate (no adaptation; DANN and MMD, `engine.model.adapt`, at each of `STRENGTHS`) trains the same small
model for `TRIAL_STEPS` steps: a residual low-rank linear map of the head's input (starting at the identity,
standing in for the layers a fine-tune would move) and the head (starting from the plan's), on the training photos'
features, with the candidate's loss between them and the target photos'. Features are read as the run will read
them: standardised on the training photos' statistics, the target photos on their own when the plan standardises
them so. No photo is read: the features are the probe's cache.

A candidate is scored without target labels by reverse validation (`engine.probe.reverse`), or by the
labelled target photos when the target folder has some; it is chosen over no adaptation only when it scores higher
by more than the score's standard error and its validation accuracy is at most `MAX_VAL_LOSS` below.

What the trials found (bench/adapt_trials.py: the shared photo→painting pair and two shifted copies of the plant
photos, Lite0's final features, the target photos on their own statistics; target test in brackets, never read by
the choice): reverse validation put no adaptation first on the field pair (0.680; 0.575), and within its standard
error of the best on the painting pair (0.985 vs MMD at 0.3's 0.991; 0.720 vs 0.704) and the grey one (0.687 vs
0.700; 0.614 vs 0.598), so no adaptation is kept on all three; it did not see that DANN at 0.3 gains 5 points on the
paintings (0.768; its reverse score 0.865). The criterion is safe there, not sharp. On Lite1's last four stages of
the field pair it chose MMD at 1 (0.713 against 0.677), and that fine-tune ended 11 points below its starting head on
the target test: what `engine.train.reverse_check` is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.target import TargetSet
from engine.model.adapt import Adaptation
from engine.plan.config import TrainConfig
from engine.plan.rules import MAX_VAL_LOSS
from engine.probe.gap import target_features
from engine.probe.linear import LinearFit, ProbeResult
from engine.probe.reverse import reverse_accuracy
from engine.progress import QUIET_STEP, Step

STRENGTHS = (0.3, 1.0)  # the adaptation loss's weights tried (DANN's and DAN's papers use 0.1–1)
TRIAL_STEPS = 300  # optimiser steps per candidate
TRIAL_BATCH = 64  # training and target photos per step, each
TRIAL_LR = 1e-4  # Adam's rate: the head starts at the probe's optimum (as auto's fine-tune does)
TRIAL_RANK = 64  # the rank of the map that stands in for the layers below the head (a full one costs 10x the time)


@dataclass(frozen=True)
class Trial:
    """One candidate's result: its validation accuracy and its score (reverse validation or labelled target
    photos' accuracy)."""

    method: str
    strength: float
    val: float
    score: float

    @property
    def label(self) -> str:
        return "no adaptation" if self.method == "none" else f"{self.method.upper()} at {self.strength:g}"


@dataclass(frozen=True)
class TrialChoice:
    """The adaptation auto chose, every trial behind it, and the sentence that says so."""

    method: str
    strength: float
    trials: tuple[Trial, ...]
    reason: str


def candidates() -> list[tuple[str, float]]:
    """(method, strength) of every trial, no adaptation first."""
    return [("none", 0.0)] + [(m, s) for m in ("dann", "mmd") for s in STRENGTHS]


class _Adapted(nn.Module):
    """The head's input plus a low-rank linear map of it (zero at the start), then the head."""

    def __init__(self, head: LinearFit):
        super().__init__()
        dim, n_cls = head.std_coef.shape[1], head.std_coef.shape[0]
        self.map = nn.Sequential(nn.Linear(dim, TRIAL_RANK, bias=False), nn.Linear(TRIAL_RANK, dim))
        nn.init.zeros_(self.map[1].weight)
        nn.init.zeros_(self.map[1].bias)
        self.fc = nn.Linear(dim, n_cls)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(head.std_coef))
            self.fc.bias.copy_(torch.from_numpy(head.std_intercept))

    def features(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.map(z)


# PLR0913: the candidate, the starting head, the three feature sets and the seed
def run_trial(  # noqa: PLR0913
    method: str,
    strength: float,
    head: LinearFit,
    train: tuple[np.ndarray, np.ndarray],
    zt: np.ndarray,
    seed: int = 0,
    steps: int = TRIAL_STEPS,
) -> _Adapted:
    """One candidate trained for `steps` on the standardised training features `train` (x, y) and target features
    `zt`."""
    torch.manual_seed(seed)
    model = _Adapted(head)
    adapt = Adaptation(method, zt.shape[1], strength) if method != "none" else None
    params = list(model.parameters()) + (list(adapt.parameters()) if adapt is not None else [])
    opt = torch.optim.Adam(params, lr=TRIAL_LR, weight_decay=1e-4)
    xs, ys, xt = torch.from_numpy(train[0]).float(), torch.from_numpy(train[1]).long(), torch.from_numpy(zt).float()
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        i = torch.randint(len(xs), (TRIAL_BATCH,), generator=g)
        fs = model.features(xs[i])
        loss = F.cross_entropy(model.fc(fs), ys[i])
        if adapt is not None:
            j = torch.randint(len(xt), (TRIAL_BATCH,), generator=g)
            extra, _ = adapt.loss(fs, model.features(xt[j]), step / steps)
            loss = loss + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


# PLR0913: the head and the feature sets it is tried on
def adapt_trials(  # noqa: PLR0913
    head: LinearFit,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    zt: np.ndarray,
    labelled: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    steps: int = TRIAL_STEPS,
    progress: Step = QUIET_STEP,
) -> TrialChoice:
    """Every candidate tried and scored; `train`, `val` and the target features `zt` are standardised as the head
    reads them, `labelled` (features, labels) are labelled target photos among `zt`'s reading, when there are some.
    `progress` moves after each trial, and a cancel stops the trials between two."""
    trials = []
    tried = candidates()
    for i, (method, strength) in enumerate(tried):
        progress.check_cancel()
        model = run_trial(method, strength, head, train, zt, seed, steps)
        with torch.no_grad():
            fv, ft = (model.features(torch.from_numpy(z).float()) for z in (val[0], zt))
            w, b = model.fc.weight.numpy(), model.fc.bias.numpy()
            acc = float(((fv.numpy() @ w.T + b).argmax(1) == val[1]).mean())
            if labelled is not None:
                fl = model.features(torch.from_numpy(labelled[0]).float()).numpy()
                score = float(((fl @ w.T + b).argmax(1) == labelled[1]).mean())
            else:
                fitted = LinearFit(acc, np.empty(0), np.empty(0), w, b, head.mean, head.scale)
                score = reverse_accuracy(fitted, ft.numpy(), fv.numpy(), val[1])
        trials.append(Trial(method, strength, acc, score))
        progress((i + 1) / len(tried))
    n_scored = len(labelled[1]) if labelled is not None else len(val[1])
    return choose_trial(trials, n_scored, labelled is not None, steps)


def choose_trial(trials: list[Trial], n_scored: int, by_labels: bool, steps: int = TRIAL_STEPS) -> TrialChoice:
    """The candidate with the highest score among those within `MAX_VAL_LOSS` of no adaptation on val (the first
    trial), when it beats no adaptation's score by more than that score's standard error on the `n_scored` photos it
    is measured on (a difference the photos can tell from chance); no adaptation otherwise."""
    none = trials[0]
    margin = float(np.sqrt(none.score * (1 - none.score) / max(1, n_scored)))
    fair = [t for t in trials if t.val >= none.val - MAX_VAL_LOSS]
    best = max(fair, key=lambda t: t.score)
    if best.score <= none.score + margin:
        best = none
    how = f"on your {n_scored} labelled target photos" if by_labels else "by reverse validation"
    table = ", ".join(f"{t.label} {t.score:.1%}" for t in trials)
    verdict = (
        f"none beats no adaptation by more than {margin:.1%} (its standard error), so phase 2 adds no adaptation loss."
        if best is none
        else f"so phase 2 adds {best.label} (val {best.val:.1%}, {none.val:.1%} without)."
    )
    reason = f"Adaptation tried on the cached features for {steps} steps each, scored {how}: {table}; {verdict}"
    return TrialChoice(best.method, best.strength, tuple(trials), reason)


# PLR0913: the probe and the head, the target photos and how the head reads them, the config, who watches
def try_adaptation(  # noqa: PLR0913
    probe: ProbeResult,
    head: LinearFit,
    taps: tuple[int, ...],
    photos: TargetSet,
    target_norm: bool,
    cfg: TrainConfig,
    progress: Step = QUIET_STEP,
) -> TrialChoice:
    """`adapt_trials` on the probe's cached features at `taps` and the target photos' (from the feature cache), each
    read as the run reads them: the target photos on their own statistics when `target_norm`."""
    xt = target_features(photos, probe.backbone, cfg.weights, cfg.data.in_chans).x("target", taps)  # cached
    mean, scale = (xt.mean(0), xt.std(0) + 1e-6) if target_norm else (head.mean, head.scale)
    zt = ((xt - mean) / scale).astype(np.float32)
    f = probe.features
    train = (((f.x("train", taps) - head.mean) / head.scale).astype(np.float32), f.y("train"))
    val = (((f.x("val", taps) - head.mean) / head.scale).astype(np.float32), f.y("val"))
    labelled = None
    if photos.labelled:
        rows = np.arange(len(photos.unlabelled), len(photos.paths))
        labelled = (zt[rows], np.array([it.label for it in photos.labelled]))
    return adapt_trials(head, train, val, zt, labelled, cfg.runtime.seed, progress=progress)
