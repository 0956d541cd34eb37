"""How right will it be out there: a run's accuracy expected on a folder of unlabelled photos.

Average Thresholded Confidence (ATC; Garg, Balakrishnan, Lipton, Neyshabur & Sedghi, ICLR 2022) on val, where the
labels are known, fits a threshold so that the share of val photos scored above it equals the model's val accuracy; on
the new photos the expected accuracy is the share of them above it. The interval comes from resampling both the val
photos (a new threshold each time) and the new photos (`engine.probe.atc`): the 2.5th and 97.5th percentiles.

ATC is applied twice, and the lower estimate is given: to the model's own confidence, and to the support a reference
adapted to the folder gives the model's answer (`engine.probe.reference`: a linear head on the model's features of
the training photos, reading the folder's photos on their own statistics, refitted with those it labels surely). Each
fails by reading high: the model's own confidence where the folder is shifted so that it stays sure of wrong answers
(blurred, grey and field copies of the plant photos: 30-49 points high, the reference 0-6), the reference where it
shares the model's mistakes (a model already adapted to such photos reads them as the reference does). The features
and labels of the training and val photos are those the out-of-place rule keeps in the run folder
(`engine.serve.ood`), so no second pass reads them.

What it assumes, and where it fails: that the folder holds the classes in about the training mix (its statistics are
the folder's own: a folder of one class, standardised on itself, loses what tells that class apart, and the reference
reads 20-70 points low there), so the sentence names the case when the expected class mix is dominated by a few
classes and gives the estimate by the model's own confidence; and, like any estimate without labels, that
photos of a class the model was never taught are not in the folder: they are answered as confidently as the others.
The expected class mix is EM's (`engine.probe.priors`): counting the classes predicted drifts toward the training mix on
the photos the model hesitates on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import DataError
from engine.metrics import wilson
from engine.runs.result import RunResult
from engine.runs.store import Run, RunStore
from engine.probe.atc import atc, atc_interval, atc_threshold
from engine.probe.priors import em_mix, train_mix
from engine.probe.reference import Supported, adapted_reference, supported_accuracy

if TYPE_CHECKING:
    from engine.serve.ood import OutOfPlace

MIX_HOW = (
    "Each class's expected share: the mix the model was trained under, re-estimated from its probabilities on these "
    "photos (EM); counting the classes it predicts would drift toward the training mix."
)
RECORD = "estimates.json"  # in the run folder: the estimates made for its model, by folder (the model card states them)
MIN_PHOTOS = 10  # fewer photos than this and the interval is too wide to say anything: refused
CAVEAT = (
    "It judges each answer by a second head adapted to these photos, which assumes the folder holds your classes in "
    "about the training mix (on photos of one class it reads low: the model's own confidence is given beside it); "
    "photos of a class the model was never taught are answered as confidently as the others, and the estimate cannot "
    "see them."
)
MOSTLY = 0.8  # a folder is "mostly" a few classes when at most a quarter of the classes hold this share of its mix
BY_REFERENCE = "ATC on the support of a reference adapted to these photos"
BY_CONFIDENCE = "ATC on the model's own confidence"


@dataclass(frozen=True)
class Estimate:
    """The accuracy a run's model is expected to reach on a folder of photos, and what it rests on."""

    run: str
    folder: str
    n: int  # photos scored
    accuracy: float  # expected: the lower of ATC on the model's own confidence and on the reference's support (`by`)
    interval: tuple[float, float]
    threshold: float  # of the support (or of confidence), fitted on val
    val_accuracy: float
    val_n: int
    class_mix: dict[str, float]  # each class's expected share of the photos (EM, from the training mix)
    own_confidence: float = 0.0  # expected by ATC on the model's own confidence
    own_interval: tuple[float, float] = (0.0, 0.0)
    by: str = BY_REFERENCE  # or BY_CONFIDENCE: the lower, or the training photos' features could not be read
    reference: float | None = None  # expected by ATC on the reference's support (None: it could not be made)
    measured: float | None = None  # labelled photos in the folder (class subfolders): their accuracy, which wins
    measured_interval: tuple[float, float] | None = None
    measured_n: int = 0
    out_of_place: float | None = None  # share of the photos unlike the training ones (None: no rule)
    skipped: list[str] = field(default_factory=list)  # files that could not be read, one line each
    notes: list[str] = field(default_factory=list)
    caveat: str = CAVEAT
    mix_how: str = MIX_HOW

    @property
    def sentence(self) -> str:
        """The answer in words."""
        lo, hi = self.interval
        said = (
            f"Expected accuracy on these {self.n} photos: about {self.accuracy:.0%} ({lo:.0%}–{hi:.0%}, 95%), "
            f"against {self.val_accuracy:.0%} on the {self.val_n} val photos."
        )
        few = self.mostly
        if few and self.by == BY_REFERENCE:
            said += (
                f" They seem to be mostly {', '.join(few)}: the estimate assumes your classes come in about the "
                f"training mix and reads low on photos of one class; by the model's own confidence it is "
                f"{self.own_confidence:.0%}."
            )
        elif self.by == BY_REFERENCE and self.own_confidence > hi:
            said += (
                f" The model's own confidence would say {self.own_confidence:.0%}: on these photos it is surer than "
                "it is right."
            )
        if self.out_of_place:
            said += (
                f" {self.out_of_place:.0%} of them do not look like your training photos: Predict gives them no class, "
                "and the estimate cannot see how they would be answered."
            )
        if self.measured is not None:
            said += f" The {self.measured_n} labelled ones among them score {self.measured:.0%}: that measurement wins."
        return said

    @property
    def how(self) -> str:
        """How the number was made, in words."""
        lo, hi = self.own_interval
        if self.by == BY_CONFIDENCE:
            said = (
                f"{BY_CONFIDENCE}: the share of these photos the model is more sure of than {self.threshold:.3f}, the "
                "threshold at which that share on the val photos is the val accuracy."
            )
            if self.reference is not None:
                said += (
                    f" A reference adapted to these photos says {self.reference:.0%}; the lower of the two is given."
                )
            return said
        return (
            f"{BY_REFERENCE}: each answer is scored by the probability a second head gives it (fitted on the training "
            "photos, reading these on their own statistics, refitted with those it labels surely); the estimate is "
            f"the share scored above {self.threshold:.3f}, the threshold at which that share on the val photos is the "
            f"val accuracy. By the model's own confidence: {self.own_confidence:.0%} ({lo:.0%}–{hi:.0%}); the lower of "
            "the two is given."
        )

    @property
    def mostly(self) -> list[str]:
        """The fewest classes that hold `MOSTLY` of the folder's expected mix, largest first, when they are at most a
        quarter of the classes (at least one); [] when the mix is spread wider."""
        shares = sorted(self.class_mix.items(), key=lambda kv: -kv[1])
        held = np.cumsum([v for _, v in shares])
        n = int(np.searchsorted(held, MOSTLY)) + 1
        return [name for name, _ in shares[:n]] if n <= max(1, len(shares) // 4) else []

    @property
    def remarks(self) -> list[str]:
        """What was left out or sampled, one line each (the first five skipped files)."""
        return self.notes + self.skipped[:5]

    def to_dict(self) -> dict:
        return {**asdict(self), "sentence": self.sentence, "how": self.how}

    @classmethod
    def from_dict(cls, d: dict) -> "Estimate":
        """An estimate as `to_dict` wrote it (its sentence is rendered again, never read)."""
        kept = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "by" not in d:  # kept by a version that estimated by the model's own confidence alone
            kept |= {"by": BY_CONFIDENCE, "own_confidence": d["accuracy"], "own_interval": d["interval"]}
        for k in ("interval", "measured_interval", "own_interval"):
            kept[k] = tuple(kept[k]) if kept.get(k) is not None else None
        return cls(**kept)


def record(run: Run, est: Estimate) -> None:
    """Keeps `est` in the run folder beside the estimates of other folders, under the model file it was made with."""
    from engine.serve.ood import weights_stamp

    entry = {**est.to_dict(), "weights": weights_stamp(run)}
    run.update_json(RECORD, lambda kept: kept | {est.folder: entry})


def recorded(run: Run) -> list[Estimate]:
    """The estimates kept for the model the run predicts with now (one made with a model file since replaced is
    left out), oldest folder first."""
    from engine.serve.ood import weights_stamp

    stamp = weights_stamp(run)
    return [Estimate.from_dict(d) for d in (run.read_json(RECORD) or {}).values() if d.get("weights") == stamp]


def _val_scores(run: Run) -> tuple[np.ndarray, np.ndarray]:
    result = RunResult.read(run)
    if result is None or not result.val_conf or len(result.val_conf) != len(result.val_labels):
        raise DataError(
            f"run {run.id} has no scored val photos (status {run.status().get('state')}): the estimate fits its "
            "threshold on them; finish or resume the run, or train one with a val split"
        )
    return np.array(result.val_conf), np.array(result.val_pred) == np.array(result.val_labels)


def _read(run: Run, model, spec, paths: list[str]) -> tuple[np.ndarray, np.ndarray, OutOfPlace | None]:
    """Class probabilities and unit-length features of the photos, from one pass of the engine's prediction routine,
    and the run's out-of-place rule (None when it cannot be fitted: the training or val photos are gone)."""
    import torch

    from engine.model.device import pick_device
    from engine.model.predict import predict_logits
    from engine.serve import ood

    device = pick_device()
    both = predict_logits(
        ood.WithFeatures(model).to(device, memory_format=torch.channels_last), spec, paths, device
    ).numpy()
    n = model.head.fc.out_features
    probs = torch.from_numpy(both[:, :n]).softmax(-1).numpy()
    try:
        rule = ood.run_rule(run, model, spec)
    except DataError:
        return probs, both[:, n:], None
    return probs, both[:, n:], rule


def _by_reference(rule: OutOfPlace, features: np.ndarray, answers: np.ndarray, n_classes: int) -> Supported:
    """ATC on the support of a reference adapted to the photos, from the training and val features the rule keeps."""
    known = rule.labels >= 0
    ref = adapted_reference(rule.reference[known], rule.labels[known], features, n_classes)
    val_right = rule.val_answers == rule.val_labels
    return supported_accuracy(ref, rule.val, rule.val_answers, val_right, features, answers)


def estimate_accuracy(run: Run | str, folder: str, root: str | None = None) -> Estimate:
    """The accuracy `run`'s model is expected to reach on the photos in `folder` (unlabelled; photos in subfolders
    named after the run's classes are labelled and also scored as they are), kept in the run folder (`record`).

    Raises:
        DataError: The run has no scored val photos, or the folder is missing, holds fewer than `MIN_PHOTOS`
            readable photos, holds class subfolders the run does not know, or holds the training photos.
    """
    from engine.data.target import load_target
    from engine.plan.config import TrainConfig
    from engine.plan.make import load_data
    from engine.plan.trained import load_run_model

    run = RunStore().open(run) if isinstance(run, str) else run
    val_conf, val_right = _val_scores(run)
    cfg = TrainConfig.from_dict(run.config)
    ds = load_data(cfg)
    target = load_target(folder, ds, root=root)
    paths = target.paths
    if len(paths) < MIN_PHOTOS:
        lo, hi = wilson(len(paths) // 2, len(paths))
        raise DataError(
            f"{folder}: {len(paths)} readable photo(s); with fewer than {MIN_PHOTOS} the estimate's interval would "
            f"span about {hi - lo:.0%}: add more photos from where the model will be used"
        )
    model, spec, classes = load_run_model(run)
    probs, features, rule = _read(run, model, spec, paths)
    conf, pred = probs.max(1), probs.argmax(1)
    train_labels = [classes.index(ds.classes[it.label]) for it in ds.train]
    learnt = train_mix(cfg.regularisation.balance, train_labels, len(classes))
    own = atc(val_conf, val_right, conf), atc_interval(val_conf, val_right, conf), atc_threshold(val_conf, val_right)
    notes = list(target.notes)
    by_ref: tuple = ()
    if rule is not None:
        found = _by_reference(rule, features, pred, len(classes))
        by_ref = found.accuracy, found.interval, found.threshold
        chosen, by = (by_ref, BY_REFERENCE) if found.accuracy <= own[0] else (own, BY_CONFIDENCE)
    else:
        chosen, by = own, BY_CONFIDENCE
        notes.append(
            "the training photos' features could not be read, so the estimate rests on the model's own "
            "confidence, which reads high where the photos are shifted"
        )
    est = Estimate(
        run.id,
        str(Path(folder)),
        len(paths),
        *chosen,
        float(val_right.mean()),
        len(val_right),
        dict(zip(classes, map(float, em_mix(probs, learnt)))),
        own_confidence=own[0],
        own_interval=own[1],
        by=by,
        reference=by_ref[0] if rule is not None else None,
        out_of_place=float(np.mean(rule.scores(features) > rule.threshold)) if rule is not None else None,
        skipped=[s.reason for s in target.skipped],
        notes=notes,
    )
    if target.labelled:
        start, n = len(target.unlabelled), len(target.labelled)
        right = sum(int(pred[start + i]) == classes.index(ds.classes[it.label]) for i, it in enumerate(target.labelled))
        est = replace(est, measured=right / n, measured_interval=wilson(right, n), measured_n=n)
    record(run, est)
    return est
