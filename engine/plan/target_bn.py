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
from engine.probe.linear import LinearFit, ProbeResult, photo_features
from engine.probe.reverse import reverse_accuracy
from engine.progress import QUIET_STEP, Step


@dataclass(frozen=True)
class BnChoice:
    """Whether the evidence re-estimates the statistics, the sentence with its numbers, and the re-estimated
    reading's score (reverse validation, or the labelled target photos' accuracy): the run's start if it is kept."""

    use: bool
    reason: str
    score: float


def _own(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _acc(head: LinearFit, z: np.ndarray, y: np.ndarray) -> float:
    return float(((z @ head.std_coef.T + head.std_intercept).argmax(1) == y).mean())


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
    progress(1.0)
    margin = float(np.sqrt(without * (1 - without) / max(1, n)))
    use = score > without + margin
    reason = (
        f"BatchNorm statistics re-estimated on {len(sample)} target photos (AdaBN), scored {how}: {score:.1%}, against "
        f"{without:.1%} with the backbone's own (standard error {margin:.1%})"
    )
    return BnChoice(use, reason, score)


def bn_verdict(choice: BnChoice, asked: bool | None) -> str:
    """The evidence's sentence and what the run does: re-estimate when the evidence says so or it was asked for."""
    if asked is None:
        does = "so the saved model reads" if choice.use else "so the backbone keeps its own statistics"
    else:
        does = (
            "as asked, the saved model reads"
            if choice.use
            else "the evidence alone keeps the backbone's own; as asked, the saved model reads"
        )
    if choice.use or asked:
        does += " target photos with the re-estimated statistics (val keeps the backbone's own)"
    return f"{choice.reason}; {does}."
