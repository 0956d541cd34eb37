"""Which head-level adaptation the run starts from, chosen by the accuracy expected on the target photos.

Once the target-norm decision has settled how the head reads target photos (`engine.plan.domain`), each method of
`engine.probe.head_adapt` makes a candidate head from the cached features in seconds: CORAL, T3A, SHOT's information
maximisation and the class-mix correction (EM). Each candidate, and the head as it stands ("none"), is scored by:

* the accuracy expected on the target photos without their labels, by the reference `engine estimate` also uses:
  ATC on the support one reference adapted to the target photos gives each candidate's answers
  (`engine.probe.reference`), the threshold fitted on val, with the bootstrap interval (on the source-only models of
  the plant and EuroSAT shifted copies and PACS within 5 points on average, where ATC on a model's own confidence was
  22 off, bench/estimate.py);
* its val accuracy (val photos read on the training photos' statistics, as the run reads them);
* the labelled target photos, when the folder has some: their accuracy, which takes over.

Auto keeps the head as it stands unless a candidate's gain over it in expected accuracy has a 95% interval above
zero and its val accuracy is at most `MAX_VAL_LOSS` below (with labelled target photos: more of them right, the same
val rule). The gain's interval is paired: each bootstrap draw resamples the val and target photos once for both heads
(`engine.probe.atc.atc_gain_interval`), so what moves both estimates together cancels. Comparing the candidate's
estimate with the far end of the standing head's own interval, as auto did before, counted that shared noise twice:
on the shared photo→art pair, where val is 98.8% right and the threshold rests on four val mistakes, the standing
head's interval spanned 52.7%–92.1%. A method asked for (`--target-head`) is used whatever the scores say; "none"
skips the step.

Judging every candidate by one reference means a method that only makes the predictions surer (SHOT's entropy term,
the sharper T3A prototypes) gains nothing by it, as it did when each was scored by its own confidence; what the
reference cannot see is where it is wrong itself: a candidate that is right where the reference is wrong is scored
down. The val rule and the interval guard the choice, and bench/estimate.py measures the estimate against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from engine.data.target import TargetSet
from engine.probe.atc import Scores, atc, atc_gain_interval, atc_interval
from engine.plan.config import HEAD_METHODS
from engine.plan.reasons import Decision
from engine.plan.rules import MAX_VAL_LOSS
from engine.probe.head_adapt import coral_head, em_head, logits_of, shot_head, t3a_head
from engine.probe.linear import LinearFit, ProbeResult
from engine.probe.reference import Reference, adapted_reference, supports
from engine.probe.reverse import reverse_accuracy

HEAD_TEXT = {
    "none": "the head as it stands",
    "coral": "CORAL (the training features recoloured as the target photos')",
    "t3a": "T3A (class prototypes from the target photos it labels surely)",
    "shot": "SHOT (confident and diverse target predictions, centroid pseudo-labels)",
    "em": "the class mix re-estimated on the target photos (EM)",
}


class Readings(NamedTuple):
    """The features a head-level method reads, standardised as the run reads them: training (`xs`, `ys`) and val
    (`zv`, `yv`) photos on the training statistics, target photos (`zt`) on the statistics the plan reads them with;
    `rows` are the labelled target photos among them (`yl` their labels)."""

    xs: np.ndarray
    ys: np.ndarray
    zv: np.ndarray
    yv: np.ndarray
    zt: np.ndarray
    rows: np.ndarray
    yl: np.ndarray


class Settings(NamedTuple):
    """How the candidates are made and chosen: the head's regularisation `c`, the class mix it learnt under, the
    method asked for (None: auto's rule; "none": no head-level adaptation) and the seed."""

    c: float
    train_mix: np.ndarray
    asked: str | None = None
    seed: int = 0


def as_read(xt: np.ndarray, head: LinearFit, norm: bool) -> np.ndarray:
    """The target photos' features `xt` standardised as the run reads them: on their own statistics when `norm`,
    else on `head`'s."""
    mean, scale = (xt.mean(0), xt.std(0) + 1e-6) if norm else (head.mean, head.scale)
    return (xt - mean) / scale


def readings(probe: ProbeResult, head: LinearFit, taps: tuple[int, ...], zt: np.ndarray, photos: TargetSet) -> Readings:
    """The features of `probe`'s photos at `taps` as a run with `head` reads them, beside the target photos' `zt`."""
    return Readings(
        (probe.features.x("train", taps) - head.mean) / head.scale,
        probe.features.y("train"),
        (probe.features.x("val", taps) - head.mean) / head.scale,
        probe.features.y("val"),
        zt,
        np.arange(len(photos.unlabelled), len(photos.paths)),
        np.array([it.label for it in photos.labelled], dtype=np.int64),
    )


def candidate(method: str, head: LinearFit, r: Readings, s: Settings) -> LinearFit:
    """The head `method` makes from `head` ("none": `head` itself)."""
    if method == "coral":
        return coral_head(head, r.xs, r.ys, r.zt, s.c)
    if method == "t3a":
        return t3a_head(head, r.zt, r.zv, r.yv)
    if method == "shot":
        return shot_head(head, r.zt, s.seed, anchor=(r.xs, r.ys))
    if method == "em":
        return em_head(head, r.zt, r.zv, r.yv, s.train_mix)
    return head


def reference_for(r: Readings, n_classes: int) -> Reference:
    """The reference the candidates are judged by: adapted to the target photos as `engine estimate` adapts it."""
    return adapted_reference(r.xs, r.ys, r.zt, n_classes)


def support_scores(head: LinearFit, r: Readings, ref: Reference) -> Scores:
    """What ATC reads for `head`: `ref`'s support for its val answers, whether each is right, and its support for
    its answers on the target photos."""
    val_answers = logits_of(head, r.zv).argmax(1)
    on_val, on_new = supports(ref, r.zv, val_answers, r.zt, logits_of(head, r.zt).argmax(1))
    return on_val, val_answers == r.yv, on_new


def scores(head: LinearFit, r: Readings, mine: Scores, standing: Scores | None = None) -> dict:
    """A head's val accuracy, the accuracy expected on the target photos (ATC on the reference's support for its
    answers, `mine`: its `support_scores`) with the interval, and the labelled target photos' accuracy (None
    without). Given the head as it stands (`standing`, its `support_scores`), also the 95% interval of the gain over it
    in expected accuracy, paired on the same photos (`gain_low`, `gain_high`)."""
    right = mine[1]
    labelled = None
    if len(r.rows):
        labelled = float(np.mean(logits_of(head, r.zt[r.rows]).argmax(1) == r.yl))
    low, high = atc_interval(*mine)
    found = {"estimate": atc(*mine), "low": low, "high": high, "val": float(right.mean()), "labelled": labelled}
    if standing is not None:
        found["gain_low"], found["gain_high"] = atc_gain_interval(mine, standing)
    return found


def ahead(s: dict, ref: dict) -> bool:
    """Whether a candidate scored `s` beats the head as it stands (`ref`) by auto's rule: val at most `MAX_VAL_LOSS`
    below, and more labelled target photos right, or without labels a gain in expected accuracy whose paired 95%
    interval lies above zero."""
    if s["val"] < ref["val"] - MAX_VAL_LOSS:
        return False
    if ref["labelled"] is not None:
        return s["labelled"] > ref["labelled"]
    return s["gain_low"] > 0


@dataclass(frozen=True)
class TargetHeadChoice:
    """The head-level adaptation the run starts from ("": none), its head, and every candidate's scores."""

    method: str
    head: LinearFit | None
    scored: dict = field(default_factory=dict)  # method → scores(); "none" is the head as it stands
    asked: str | None = None
    reverse: float = 0.0  # the chosen head's reverse validation score (the end check's start; 0: none chosen)

    def decision(self) -> Decision:
        labelled = self.scored.get("none", {}).get("labelled") is not None
        evidence = {"scored": self.scored, "asked": self.asked, "by": "labelled" if labelled else "reference"}
        evidence |= {"max_val_loss": MAX_VAL_LOSS, "text": HEAD_TEXT}
        return Decision("target-head", self.method or "none", ("none", *HEAD_METHODS), evidence, about="target")


def choose_target_head(head: LinearFit, r: Readings, s: Settings) -> TargetHeadChoice:
    """Every head-level candidate made and scored; the one asked for, else the best ahead of the head as it stands by
    `ahead` (the highest estimate, or the most labelled target photos right), else none."""
    heads = {m: candidate(m, head, r, s) for m in ("none", *HEAD_METHODS)}
    ref = reference_for(r, head.std_coef.shape[0])
    supported = {m: support_scores(h, r, ref) for m, h in heads.items()}
    scored = {m: scores(h, r, supported[m], None if m == "none" else supported["none"]) for m, h in heads.items()}
    asked = s.asked
    if asked is not None:
        method = "" if asked == "none" else asked
    else:
        key = "labelled" if scored["none"]["labelled"] is not None else "estimate"
        better = [m for m in HEAD_METHODS if ahead(scored[m], scored["none"])]
        method = max(better, key=lambda m: scored[m][key]) if better else ""
    if not method:
        return TargetHeadChoice("", None, scored, asked)
    chosen = replace(heads[method], accuracy=scored[method]["val"])  # as epoch 0 validates it
    return TargetHeadChoice(method, chosen, scored, asked, reverse_accuracy(chosen, r.zt, r.zv, r.yv, s.c))
