"""How right will it be out there: a run's accuracy expected on a folder of unlabelled photos, by Average Thresholded
Confidence (ATC; Garg, Balakrishnan, Lipton, Neyshabur & Sedghi, ICLR 2022).

On val, where the labels are known, a confidence threshold is fitted so that the share of val photos the model is
more confident than it on equals the model's val accuracy. On the new photos the expected accuracy is the share of
them above that threshold. The interval comes from resampling both the val photos (a new threshold each time) and
the new photos (`engine.probe.atc`): the 2.5th and 97.5th percentiles. The confidences are the run's calibrated
probabilities (the temperature fitted on val is in the saved model), so val and the new photos are read alike.

What it assumes, and where it fails: that the model's mistakes look alike in both places, the confident ones as
confident. Photos of a class the model was never taught get a confident wrong answer as easily as a right one: the
estimate cannot see them. Even when the mistakes do look alike, the balance ATC strikes on val (as many right answers
below the threshold as wrong ones above it) tilts as the accuracy falls: on synthetic scores whose right and wrong
answers keep their confidences, it reads high as the accuracy falls, within 5 points for a true 50-80%
(tests/engine/serve/test_estimate.py). The expected class mix is EM's (`engine.probe.priors`): counting the classes
predicted drifts toward the training mix on the photos the model hesitates on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.metrics import wilson
from engine.runs.result import RunResult
from engine.runs.store import Run, RunStore
from engine.probe.atc import atc, atc_interval, atc_threshold
from engine.probe.priors import em_mix, train_mix

MIX_HOW = (
    "Each class's expected share: the mix the model was trained under, re-estimated from its probabilities on these "
    "photos (EM); counting the classes it predicts would drift toward the training mix."
)
RECORD = "estimates.json"  # in the run folder: the estimates made for its model, by folder (the model card states them)
MIN_PHOTOS = 10  # fewer photos than this and the interval is too wide to say anything: refused
CAVEAT = (
    "It assumes the model's mistakes look alike on these photos and on val; photos of a class it was never taught "
    "are answered as confidently as the others, and the estimate cannot see them."
)


@dataclass(frozen=True)
class Estimate:
    """The accuracy a run's model is expected to reach on a folder of photos, and what it rests on."""

    run: str
    folder: str
    n: int  # photos scored
    accuracy: float  # expected, by ATC
    interval: tuple[float, float]
    threshold: float  # of confidence, fitted on val
    val_accuracy: float
    val_n: int
    class_mix: dict[str, float]  # each class's expected share of the photos (EM, from the training mix)
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
        if self.out_of_place:
            said += (
                f" {self.out_of_place:.0%} of them do not look like your training photos: Predict gives them no class, "
                "and the estimate cannot see how they would be answered."
            )
        if self.measured is not None:
            said += f" The {self.measured_n} labelled ones among them score {self.measured:.0%}: that measurement wins."
        return said

    @property
    def remarks(self) -> list[str]:
        """What was left out or sampled, one line each (the first five skipped files)."""
        return self.notes + self.skipped[:5]

    def to_dict(self) -> dict:
        return {**asdict(self), "sentence": self.sentence}

    @classmethod
    def from_dict(cls, d: dict) -> "Estimate":
        """An estimate as `to_dict` wrote it (its sentence is rendered again, never read)."""
        kept = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("interval", "measured_interval"):
            kept[k] = tuple(kept[k]) if kept.get(k) is not None else None
        return cls(**kept)


def record(run: Run, est: Estimate) -> None:
    """Keeps `est` in the run folder beside the estimates of other folders, under the model file it was made with."""
    from engine.serve.ood import weights_stamp

    kept = run.read_json(RECORD) or {}
    kept[est.folder] = {**est.to_dict(), "weights": weights_stamp(run)}
    run.write_json(RECORD, kept)


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


def _probs_and_place(run: Run, model, spec, paths: list[str]) -> tuple[np.ndarray, float | None]:
    """Class probabilities of the photos and the share of them out of place (None when the run's rule cannot be
    fitted), from one pass of the engine's prediction routine."""
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
        return probs, None
    return probs, float(np.mean(rule.scores(both[:, n:]) > rule.threshold))


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
    probs, out_of_place = _probs_and_place(run, model, spec, paths)
    conf, pred = probs.max(1), probs.argmax(1)
    train_labels = [classes.index(ds.classes[it.label]) for it in ds.train]
    learnt = train_mix(cfg.regularisation.balance, train_labels, len(classes))
    est = Estimate(
        run.id,
        str(Path(folder)),
        len(paths),
        atc(val_conf, val_right, conf),
        atc_interval(val_conf, val_right, conf),
        atc_threshold(val_conf, val_right),
        float(val_right.mean()),
        len(val_right),
        dict(zip(classes, map(float, em_mix(probs, learnt)))),
        out_of_place=out_of_place,
        skipped=[s.reason for s in target.skipped],
        notes=list(target.notes),
    )
    if target.labelled:
        start, n = len(target.unlabelled), len(target.labelled)
        right = sum(int(pred[start + i]) == classes.index(ds.classes[it.label]) for i, it in enumerate(target.labelled))
        est = replace(est, measured=right / n, measured_interval=wilson(right, n), measured_n=n)
    record(run, est)
    return est
