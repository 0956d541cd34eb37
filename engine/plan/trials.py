"""Auto's candidates with target photos, tried on the cached features before anything trains: the simple fixes
first, then the adaptations on the fix kept.

Each candidate trains the same small model for `TRIAL_STEPS` steps: a residual low-rank linear map of the head's
input (starting at the identity, standing in for the layers a fine-tune would move) and the head (starting from the
plan's), on the training photos' features, with the candidate's loss between them and the target photos'. Features
are read as the run will read them: standardised on the training photos' statistics, the target photos on their own
when the plan standardises them so. The rates warm up over the share of the steps the plan's phase 2 warms up over.

* The simple fixes (`Fix`), each as a trial can stand for it: rates `SLOWER` times the plan's below the head (the
  map's rate), a warm-up `LONGER_WARMUP` times longer (`longer_warmup`), and stronger augmentation (the training
  features of one `STRONG_AUGMENT` view of each photo, `engine.probe.augmented`: the only trial that reads photos,
  so it runs when that pass costs at most `STRONG_SHARE` of the budget). A fix the config sets is not tried. The
  trial for the plan as it is reads the cached features of the photos as they are, not under the plan's own
  augmentation, so the stronger augmentation's trial is credited with all of augmenting, not only the extra.
* The adaptations: DANN and MMD (`engine.model.adapt`) at each of `STRENGTHS`, on the fix kept.

A candidate is scored without target labels by reverse validation (`engine.probe.reverse`), or by the labelled target
photos when the target folder has some, and each states the accuracy expected on the target photos by the reference
`engine estimate` uses (ATC on the support of a reference adapted to them: `engine.probe.reference`), which does not
choose here: on the three pairs below it is 4.4 points from the target test on average over 24 trials, yet it puts
DANN below no adaptation on the paintings, where the target test has it 3.4 points above, and chosen by it (above no
adaptation's interval) no trial is kept, as by reverse validation. A candidate is kept over its reference (the plan
as it is, then the fix kept) only when it scores higher by more than the reference's standard error and its
validation accuracy is at most `MAX_VAL_LOSS` below. A kept fix is written into the plan (`apply_fix`), so the run is
what was tried.

What the trials found (bench/adapt_trials.py, results-adapt-trials-cpu.txt: the shared photo→painting pair and two
shifted copies of the plant photos, Lite0's final features, the target photos on their own statistics; reverse
validation, then the target test, never read by the choice): no fix moved the target test by more than 2.2 points
(PACS 0.722 as planned, 0.726 smaller rates, 0.722 stronger augmentation; field 0.575, 0.589, 0.589; grey 0.614,
0.636, 0.610), and reverse validation kept the plan as it is on all three (the largest gain it saw, stronger
augmentation on PACS, 0.994 against 0.988, is at its standard error). Of the adaptations it put none first on the
field pair and within its standard error of the best on the others, so no adaptation is kept on all three; it did
not see that DANN gains 3–4 points on the paintings (0.756 at 0.3; its reverse score 0.913). Safe, not sharp. On
Lite1's last four stages of the field pair it chose MMD at 1 (0.713 against 0.677), and that fine-tune ended 11 points
below its starting head on the target test: what `engine.train.reverse_check` is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.target import TargetSet
from engine.model.adapt import Adaptation
from engine.plan.config import DEFAULT_BUDGET_S, TrainConfig
from engine.plan.reasons import Decision
from engine.plan.parts import Phases, Plan
from engine.plan.rules import MAX_VAL_LOSS
from engine.probe.augmented import augmented_features
from engine.probe.gap import target_features
from engine.probe.linear import LinearFit, ProbeResult
from engine.probe.reference import Reference, adapted_reference, supported_accuracy
from engine.probe.reverse import reverse_accuracy
from engine.progress import QUIET_STEP, Step

STRENGTHS = (0.3, 1.0)  # the adaptation loss's weights tried (DANN's and DAN's papers use 0.1–1)
TRIAL_STEPS = 300  # optimiser steps per candidate
TRIAL_BATCH = 64  # training and target photos per step, each
TRIAL_LR = 1e-4  # Adam's rate: the head starts at the probe's optimum (as auto's fine-tune does)
TRIAL_RANK = 64  # the rank of the map that stands in for the layers below the head (a full one costs 10x the time)
WARMUP_START = 0.1  # the rates' share at the first step of a warm-up (the run's `Schedule` starts there too)
SLOWER = 0.1  # "smaller rates": the layers below the head at a tenth of the plan's rates (the lesson's 5–10x)
LONGER_WARMUP = 3  # "a longer warm-up": three times the plan's warm-up epochs, at most half of phase 2
STRONG_AUGMENT = "randaugment"  # "stronger augmentation": RandAugment(2, 9) instead of the plan's preset
STRONG_SHARE = 0.1  # the pass over the training photos it needs is made when it costs at most this share of the budget
FIX_TEXT = {
    "slower": f"rates {1 / SLOWER:.0f}x smaller below the head",
    "warm-up": f"a {LONGER_WARMUP}x longer warm-up",
    "stronger": "stronger augmentation (RandAugment)",
}


@dataclass(frozen=True)
class Fix:
    """A simple fix as a trial runs it: the rate of the map (the layers below the head) as a share of the plan's,
    the share of the steps the rates warm up over, and the training features it reads instead of the cached ones
    (a stronger augmentation's). The unnamed one is the plan as it is."""

    name: str = ""
    map_scale: float = 1.0
    warmup: float = 0.0
    train: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Trial:
    """One candidate's result: its validation accuracy and its score (reverse validation or labelled target
    photos' accuracy)."""

    method: str
    strength: float
    val: float
    score: float
    fix: str = ""
    expected: tuple[float, float, float] | None = None  # on the target photos: estimate, interval low and high

    @property
    def label(self) -> str:
        adapt = "" if self.method == "none" else f"{self.method.upper()} at {self.strength:g}"
        fix = FIX_TEXT.get(self.fix, "")
        if adapt and fix:
            return f"{adapt} with {fix}"
        return adapt or fix or "no adaptation"


@dataclass(frozen=True)
class TrialChoice:
    """The adaptation auto chose (and the simple fix under it), every trial behind it, and the decisions that say
    so (the fix, when fixes were tried; the adaptation; a fix not tried and why)."""

    method: str
    strength: float
    trials: tuple[Trial, ...]
    decisions: tuple[Decision, ...]
    fix: str = ""


def candidates() -> list[tuple[str, float]]:
    """(method, strength) of every adaptation trial, no adaptation first."""
    return [("none", 0.0)] + [(m, s) for m in ("dann", "mmd") for s in STRENGTHS]


def longer_warmup(warmup: int, epochs: int) -> int:
    """The warm-up epochs of the fix "a longer warm-up" for a phase 2 of `epochs` that warms up for `warmup`
    (not longer than `warmup` when phase 2 is too short to hold more)."""
    return max(warmup, min(max(warmup + 1, LONGER_WARMUP * warmup), epochs // 2))


def simple_fixes(
    warmup: int,
    epochs: int,
    asked_lr: bool = False,
    asked_warmup: bool = False,
    strong: np.ndarray | None = None,
) -> list[Fix]:
    """The plan as it is, then every simple fix a trial can stand for: smaller rates and a longer warm-up unless
    the config sets them (`asked_*`), stronger augmentation when its features `strong` were made."""
    share = warmup / epochs if epochs else 0.0
    fixes = [Fix(warmup=share)]
    if not asked_lr:
        fixes.append(Fix("slower", SLOWER, share))
    longer = longer_warmup(warmup, epochs)
    if not asked_warmup and longer > warmup:
        fixes.append(Fix("warm-up", 1.0, longer / epochs))
    if strong is not None:
        fixes.append(Fix("stronger", 1.0, share, strong))
    return fixes


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


@dataclass(frozen=True)
class _WarmUp:
    """The rates' factor at a step: linear from `WARMUP_START` to 1 over the first `steps`, then 1 (the run's
    `engine.train.optim.Schedule` warms up the same way; the trials have no cosine after it)."""

    steps: int

    def __call__(self, step: int) -> float:
        if step >= self.steps:
            return 1.0
        return WARMUP_START + (1 - WARMUP_START) * step / self.steps


# PLR0913: the candidate, the starting head, the three feature sets, the seed and the simple fix
def run_trial(  # noqa: PLR0913
    method: str,
    strength: float,
    head: LinearFit,
    train: tuple[np.ndarray, np.ndarray],
    zt: np.ndarray,
    seed: int = 0,
    steps: int = TRIAL_STEPS,
    fix: Fix = Fix(),
) -> _Adapted:
    """One candidate trained for `steps` on the standardised training features `train` (x, y), or the fix's own
    training features, and target features `zt`; the map at `fix.map_scale` of the rate, every rate warmed up
    linearly from `WARMUP_START` over `fix.warmup` of the steps."""
    torch.manual_seed(seed)
    model = _Adapted(head)
    adapt = Adaptation(method, zt.shape[1], strength) if method != "none" else None
    groups = [
        {"params": list(model.fc.parameters()) + (list(adapt.parameters()) if adapt is not None else [])},
        {"params": list(model.map.parameters()), "lr": TRIAL_LR * fix.map_scale},
    ]
    opt = torch.optim.Adam(groups, lr=TRIAL_LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _WarmUp(int(fix.warmup * steps)))
    x = train[0] if fix.train is None else fix.train
    xs, ys, xt = torch.from_numpy(x).float(), torch.from_numpy(train[1]).long(), torch.from_numpy(zt).float()
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
        sched.step()
    return model.eval()


@dataclass(frozen=True)
class _Scoring:
    """What every trial is scored on: val (features, labels), the target features, the labelled target photos, and
    the reference its expected accuracy on the target photos is read by."""

    head: LinearFit
    val: tuple[np.ndarray, np.ndarray]
    zt: np.ndarray
    labelled: tuple[np.ndarray, np.ndarray] | None
    ref: Reference

    def score(self, model: _Adapted) -> tuple[float, float, tuple[float, float, float]]:
        """(val accuracy, score, expected accuracy on the target photos with its interval) of a trained trial."""
        with torch.no_grad():
            fv = model.features(torch.from_numpy(self.val[0]).float()).numpy()
            ft = model.features(torch.from_numpy(self.zt).float()).numpy()
            w = model.fc.weight.numpy()
            b = model.fc.bias.numpy()
            answers_v = (fv @ w.T + b).argmax(1)
            acc = float((answers_v == self.val[1]).mean())
            found = supported_accuracy(
                self.ref, self.val[0], answers_v, answers_v == self.val[1], self.zt, (ft @ w.T + b).argmax(1)
            )
            expected = (found.accuracy, *found.interval)
            if self.labelled is not None:
                fl = model.features(torch.from_numpy(self.labelled[0]).float()).numpy()
                return acc, float(((fl @ w.T + b).argmax(1) == self.labelled[1]).mean()), expected
            fitted = LinearFit(acc, np.empty(0), np.empty(0), w, b, self.head.mean, self.head.scale)
            return acc, reverse_accuracy(fitted, ft, fv, self.val[1]), expected

    @property
    def n_scored(self) -> int:
        return len(self.labelled[1]) if self.labelled is not None else len(self.val[1])


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
    fixes: list[Fix] | None = None,
) -> TrialChoice:
    """The simple fixes first (`fixes`, the plan as it is first; without them only the plan), then every
    adaptation on the fix kept; each tried and scored. `train`, `val` and the target features `zt` are standardised
    as the head reads them, `labelled` (features, labels) are labelled target photos among `zt`'s reading, when
    there are some. `progress` moves after each trial, and a cancel stops the trials between two."""
    fixes = fixes or [Fix()]
    scoring = _Scoring(head, val, zt, labelled, adapted_reference(*train, zt, head.std_coef.shape[0]))
    total = len(fixes) + len(candidates()) - 1
    done: list[Trial] = []

    def tried(method: str, strength: float, fix: Fix) -> Trial:
        progress.check_cancel()
        model = run_trial(method, strength, head, train, zt, seed=seed, steps=steps, fix=fix)
        acc, score, expected = scoring.score(model)
        done.append(Trial(method, strength, acc, score, fix.name, expected))
        progress(len(done) / total)
        return done[-1]

    fixed = [tried("none", 0.0, f) for f in fixes]
    kept, margin = _best(fixed, scoring.n_scored)
    fix = next(f for f in fixes if f.name == kept.fix)
    adapted = [kept] + [tried(m, s, fix) for m, s in candidates()[1:]]
    how = f"on your {scoring.n_scored} labelled target photos" if labelled is not None else "by reverse validation"
    said = (_fix_decision(fixed, kept, margin, how, steps),) if len(fixes) > 1 else ()
    chose = choose_trial(adapted, scoring.n_scored, labelled is not None, steps)
    return TrialChoice(chose.method, chose.strength, (*fixed, *adapted[1:]), said + chose.decisions, fix.name)


def _best(trials: list[Trial], n_scored: int) -> tuple[Trial, float]:
    """The trial with the highest score among those within `MAX_VAL_LOSS` of the first on val, when it beats the
    first's score by more than that score's standard error on the `n_scored` photos it is measured on (a difference
    the photos can tell from chance); the first otherwise. And that standard error."""
    first = trials[0]
    margin = float(np.sqrt(first.score * (1 - first.score) / max(1, n_scored)))
    fair = [t for t in trials if t.val >= first.val - MAX_VAL_LOSS]
    best = max(fair, key=lambda t: t.score)
    if best.score <= first.score + margin:
        best = first
    return best, margin


def _rows(trials: list[Trial], label: Callable[[Trial], str]) -> list[dict]:
    """The trials as a decision's evidence lists them: each one's label, score and val, and whether the val rule
    (at most `MAX_VAL_LOSS` below the first) lets it be chosen."""
    first = trials[0]
    return [
        {"label": label(t), "score": t.score, "val": t.val, "eligible": t.val >= first.val - MAX_VAL_LOSS}
        | ({"expected": list(t.expected)} if t.expected is not None else {})
        for t in trials
    ]


def _fix_decision(fixed: list[Trial], kept: Trial, margin: float, how: str, steps: int) -> Decision:
    """What the simple fixes scored and which one phase 2 takes."""
    rows = _rows(fixed, lambda t: "the plan as it is" if not t.fix else t.label)
    evidence = {"trials": rows, "how": how, "steps": steps, "margin": margin, "max_val_loss": MAX_VAL_LOSS}
    evidence |= {"kept_label": kept.label, "kept_val": kept.val, "plan_val": fixed[0].val}
    return Decision("fix", kept.fix, tuple(r["label"] for r in rows), evidence, about="target")


def choose_trial(trials: list[Trial], n_scored: int, by_labels: bool, steps: int = TRIAL_STEPS) -> TrialChoice:
    """The adaptation with the highest score among those within `MAX_VAL_LOSS` of no adaptation on val (the first
    trial), when it beats no adaptation's score by more than that score's standard error on the `n_scored` photos it
    is measured on (a difference the photos can tell from chance); no adaptation otherwise."""
    best, margin = _best(trials, n_scored)
    none = trials[0]
    how = f"on your {n_scored} labelled target photos" if by_labels else "by reverse validation"
    rows = _rows(trials, lambda t: t.label)
    evidence = {"trials": rows, "how": how, "steps": steps, "margin": margin, "max_val_loss": MAX_VAL_LOSS}
    evidence |= {"kept_label": best.label, "kept_val": best.val, "none_val": none.val}
    chosen = "none" if best is none else f"{best.method} {best.strength:g}"
    said = Decision("adaptation", chosen, tuple(r["label"] for r in rows), evidence, about="target")
    return TrialChoice(best.method, best.strength, tuple(trials), (said,), none.fix)


# PLR0913: the probe and the head, the plan, the target photos and how the head reads them, the config, who watches
def try_adaptation(  # noqa: PLR0913
    probe: ProbeResult,
    head: LinearFit,
    plan: Plan,
    photos: TargetSet,
    target_norm: bool,
    cfg: TrainConfig,
    train_paths: list[str],
    progress: Step = QUIET_STEP,
) -> TrialChoice:
    """`adapt_trials` on the probe's cached features at the plan's taps and the target photos' (from the feature
    cache), each read as the run reads them: the target photos on their own statistics when `target_norm`; with the
    simple fixes the plan and the config leave open (stronger augmentation when its pass over `train_paths` fits,
    `strong_features`)."""
    taps = plan.head.taps
    xt = target_features(photos, probe.backbone, cfg.weights, cfg.data.in_chans).x("target", taps)  # cached
    if target_norm:
        zt = ((xt - xt.mean(0)) / (xt.std(0) + 1e-6)).astype(np.float32)
    else:
        zt = _as_head_reads(xt, head)
    f = probe.features
    train = (_as_head_reads(f.x("train", taps), head), f.y("train"))
    val = (_as_head_reads(f.x("val", taps), head), f.y("val"))
    labelled = None
    if photos.labelled:
        rows = np.arange(len(photos.unlabelled), len(photos.paths))
        labelled = (zt[rows], np.array([it.label for it in photos.labelled]))
    strong, note = strong_features(plan, cfg, train_paths, f.images_per_s, progress.sub(0, 0.5))
    if strong is not None:
        strong = _as_head_reads(strong, head)
    fixes = simple_fixes(
        plan.phases.warmup_epochs,
        plan.phases.finetune_epochs,
        asked_lr=cfg.optim.lr is not None,
        asked_warmup=cfg.optim.warmup_epochs is not None,
        strong=strong,
    )
    trying = progress.sub(0.5 if strong is not None else 0.0, 1.0)
    chose = adapt_trials(head, train, val, zt, labelled, cfg.runtime.seed, progress=trying, fixes=fixes)
    return replace(chose, decisions=chose.decisions + ((note,) if note is not None else ()))


def _as_head_reads(x: np.ndarray, head: LinearFit) -> np.ndarray:
    """Features standardised on the training photos' statistics, as the head reads them."""
    return ((x - head.mean) / head.scale).astype(np.float32)


def strong_features(
    plan: Plan, cfg: TrainConfig, train_paths: list[str], pace: float, progress: Step = QUIET_STEP
) -> tuple[np.ndarray | None, Decision | None]:
    """The head's input for one view of each training photo under `STRONG_AUGMENT` (raw, not standardised), when
    the fix is open (the config sets no augmentation, the plan's is not already a policy, the photos take colour
    operations) and its pass costs at most `STRONG_SHARE` of the budget at the probe's `pace` (images a second);
    else None, and the decision that says why it was not tried (None when the fix is not open)."""
    if cfg.regularisation.augment is not None or plan.phases.augment in ("randaugment", "autoaugment"):
        return None, None
    if plan.in_chans not in (1, 3):
        return None, None
    budget = cfg.optim.budget or DEFAULT_BUDGET_S
    seconds = len(train_paths) / pace if pace > 0 else float("inf")
    if seconds > STRONG_SHARE * budget:
        evidence = {"n_train": len(train_paths), "seconds": seconds, "share": STRONG_SHARE, "budget_s": budget}
        return None, Decision("fix-skipped", "stronger", (), evidence, about="target")
    x = augmented_features(
        train_paths,
        plan.backbone,
        plan.head.taps,
        STRONG_AUGMENT,
        weights=cfg.weights,
        in_chans=plan.in_chans,
        seed=cfg.runtime.seed,
        progress=progress,
    )
    return x, None


def apply_fix(phases: Phases, fix: str) -> Phases:
    """`phases` with the simple fix `fix` (a `FIX_TEXT` key, or "" for none): the rates below the head scaled by
    `SLOWER`, the warm-up `longer_warmup`, or the augmentation `STRONG_AUGMENT`."""
    head = len(phases.groups) - 1
    if fix == "slower":
        return replace(phases, lrs=tuple(lr * SLOWER if i < head else lr for i, lr in enumerate(phases.lrs)))
    if fix == "warm-up":
        return replace(phases, warmup_epochs=longer_warmup(phases.warmup_epochs, phases.finetune_epochs))
    if fix == "stronger":
        return replace(phases, augment=STRONG_AUGMENT)
    return phases
