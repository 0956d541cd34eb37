"""Whether the run's model reads the target photos with its BatchNorm statistics re-estimated on them (AdaBN), chosen
on evidence like the other simple fixes.

The candidate is scored as the run would use it: the backbone's statistics averaged over a seeded sample of the target
photos (`engine.model.bn_stats`), the head the run starts from reading the features so made, standardised on their
own statistics (with the training photos' statistics the re-estimated features land where the head never looked:
0.105 of the field pair's target test). It is compared with the reading the run starts from on the same photos:

* with labelled target photos: the share of them each gets right;
* without: reverse validation (`engine.probe.reverse`), scored on val (read with the backbone's own statistics, as the
  run reads photos like the training ones).

It is kept only when it scores higher by more than the reference score's standard error. What it found
(bench/domain.py, Lite0's final features, 256 target photos, reverse validation; target test with the re-estimated
statistics and without in brackets, never read by the choice): photo→painting 0.967 against 0.970 (0.662; 0.699),
field pair 0.470 against 0.617 (0.371; 0.617), grey 0.473 against 0.560 (0.357; 0.636): turned down on all three,
rightly. Auto's heads on Lite1 and Lite2 turned it down too (0.393 / 0.643, 0.407 / 0.650, 0.970 / 0.982).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.target import TargetSet
from engine.model.bn_stats import bn_sample
from engine.probe.gap import target_features
from engine.probe.head_adapt import logits_of
from engine.probe.linear import LinearFit, ProbeResult, photo_features
from engine.probe.reference import adapted_reference, supported_accuracy
from engine.probe.reverse import reverse_accuracy
from engine.plan.reasons import Decision
from engine.progress import QUIET_STEP, Step


@dataclass(frozen=True)
class BnChoice:
    """Whether the evidence re-estimates the statistics, the re-estimated reading's score (reverse validation, or the
    labelled target photos' accuracy: the run's start if it is kept), the reading it was compared with, and how."""

    use: bool
    score: float
    without: float
    margin: float  # the standard error of `without` on the photos scored
    how: str  # "by reverse validation", or "on your N labelled target photos"
    n_sample: int  # target photos the statistics were averaged over
    expected: dict | None = None  # each reading's accuracy expected on the photos scored ({} with labelled photos)

    def decision(self, asked: bool | None) -> Decision:
        """The decision, with what the config asked for (None: the evidence decides)."""
        use = self.use if asked is None else asked
        evidence = {"asked": asked, "use": self.use, "score": self.score, "without": self.without}
        evidence |= {"margin": self.margin, "how": self.how, "n_sample": self.n_sample}
        if self.expected:
            evidence["expected"] = self.expected
        chosen = "re-estimated" if use else "the backbone's own"
        return Decision("adabn", chosen, ("re-estimated", "the backbone's own"), evidence, about="target")


def _own(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _acc(head: LinearFit, z: np.ndarray, y: np.ndarray) -> float:
    return float(((z @ head.std_coef.T + head.std_intercept).argmax(1) == y).mean())


# PLR0913: the head, the features it reads on each side, and the photos it is expected on
def _expected(  # noqa: PLR0913
    head: LinearFit,
    probe: ProbeResult,
    taps: tuple[int, ...],
    xt: np.ndarray,
    rows: list[int],
    za: np.ndarray,
    zt: np.ndarray,
) -> dict:
    """The accuracy expected on the photos scored with the statistics re-estimated (`za`) and without (`zt`), as
    `engine estimate` makes it: one reference adapted to the target photos (`xt`, the backbone's own statistics)
    judges both readings' answers (ATC on its support). Stated beside the choice, which it does not make."""
    xs, xv, yv = probe.features.x("train", taps), probe.features.x("val", taps), probe.features.y("val")
    ref = adapted_reference(xs, probe.features.y("train"), xt, head.std_coef.shape[0])
    val_answers = logits_of(head, (xv - head.mean) / head.scale).argmax(1)
    out = {}
    for k, z in (("re-estimated", za), ("without", zt)):
        found = supported_accuracy(ref, xv, val_answers, val_answers == yv, xt[rows], logits_of(head, z).argmax(1))
        out[k] = {"estimate": found.accuracy, "low": found.interval[0], "high": found.interval[1]}
    return out


# PLR0913: the probe, the head and how it reads, the target photos, the weights, the seed, who watches
def choose_target_bn(  # noqa: PLR0913
    probe: ProbeResult,
    head: LinearFit,
    taps: tuple[int, ...],
    photos: TargetSet,
    norm: bool,
    c: float = 1.0,
    weights: str = "auto",
    in_chans: int = 3,
    seed: int = 0,
    progress: Step = QUIET_STEP,
) -> BnChoice:
    """The evidence for re-estimating the BatchNorm statistics of `probe`'s backbone on `photos`, for `head` (the
    run's starting head at `taps`), against reading the target photos as the run starts (`norm`: standardised on
    their own statistics)."""
    sample = bn_sample(photos.paths, seed)
    n_unlabelled = len(photos.unlabelled)
    labelled = list(range(n_unlabelled, len(photos.paths)))
    scored = [photos.paths[i] for i in labelled] if labelled else sample
    fa = photo_features(scored, probe.backbone, weights, in_chans, progress=progress.sub(0.0, 0.9), bn_from=sample)
    za = _own(fa.rows(np.arange(len(scored)), taps))
    xt = target_features(photos, probe.backbone, weights, in_chans).x("target", taps)  # cached
    mean, scale = (xt.mean(0), xt.std(0) + 1e-6) if norm else (head.mean, head.scale)
    index = {p: i for i, p in enumerate(photos.paths)}
    zt = (xt[[index[p] for p in scored]] - mean) / scale
    if labelled:
        y = np.array([it.label for it in photos.labelled])
        score = _acc(head, za, y)
        without = _acc(head, zt, y)
        n = len(y)
        how = f"on your {n} labelled target photos"
    else:
        zv = (probe.features.x("val", taps) - head.mean) / head.scale
        yv = probe.features.y("val")
        score = reverse_accuracy(head, za, zv, yv, c)
        without = reverse_accuracy(head, zt, zv, yv, c)
        n = len(yv)
        how = "by reverse validation"
    expected = _expected(head, probe, taps, xt, [index[p] for p in scored], za, zt) if not labelled else None
    progress(1.0)
    margin = float(np.sqrt(without * (1 - without) / max(1, n)))
    return BnChoice(score > without + margin, score, without, margin, how, len(sample), expected)
