"""Out-of-place photos: does a photo look like the ones the model was trained on?

The score is the distance from the photo's features (the pooled features the head reads, before the head's
standardisation, scaled to unit length) to its K-th nearest training photo: 1 - cosine similarity (deep nearest
neighbours, Sun et al., ICML 2022). Standardised features were tried and flag far fewer foreign photos at K = 1: once
every feature has unit variance, the many that carry little about the photo weigh as much as the few that do.

The threshold is fitted on the val photos: the share QUANTILE of them scores below it, so about 1 - QUANTILE of photos
like the training ones are called out of place by mistake. At 0.95 the shared plant set's test photos were flagged
6.1% of the time (bench/ood.py, 300 val photos): the percentile of a few hundred photos is itself uncertain by a few
points, so the rule aims lower, at 2%; the foreign photos measured there score four times the threshold.

A photo above it is answered "this photo does not look like your training photos" instead of with a class. A confident
probability cannot say this: a painting given to a plant model reads "99%" because the softmax only compares the
classes it knows.

The rule is fitted once per run, from the run's model, on first use, and kept in the run folder (out_of_place.npz).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.model.taps import TapModel
from engine.paths import atomic_write
from engine.runs.store import Run

K = 5
QUANTILE = 0.98  # 2% of val wrongly flagged: the percentile of a few hundred photos is uncertain by a few points
MAX_REFERENCE = 4000  # training photos kept as the reference (a round-robin over the classes beyond that)
BATCH = 32
CHUNK = 1024  # photos scored against the reference at once
FILE = "out_of_place.npz"


@dataclass(frozen=True)
class OutOfPlace:
    """The rule: out of place when the distance to the K-th nearest training photo is above `threshold`.

    Attributes:
        threshold: The QUANTILE of the val photos' scores.
        k: Which nearest training photo the distance is measured to.
        quantile: The share of val photos below the threshold.
        n_reference: Training photos in the reference.
        n_val: Val photos the threshold was fitted on.
        reference: Their unit-length features (n_reference, features).
        weights: The model file it was fitted for (name, size, modification time): a rule of an earlier best
            checkpoint is fitted again.
        labels: The reference photos' classes (the model's class indices; -1: a class the model does not know).
        val: The val photos' unit-length features, as the estimate's reference reads them (engine.serve.estimate).
        val_labels: Their classes (as `labels`).
        val_answers: The model's answers on them.
    """

    threshold: float
    k: int
    quantile: float
    n_reference: int
    n_val: int
    reference: np.ndarray = field(repr=False)
    weights: str = ""
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    val: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32), repr=False)
    val_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    val_answers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def labelled(self) -> bool:
        """Whether it keeps the classes of its photos and the model's answers on val (a rule kept by an earlier
        version does not)."""
        return len(self.labels) == len(self.reference) and len(self.val_answers) == len(self.val) > 0

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The distance of each row of unit-length features to its K-th nearest reference photo (0 = the same), a
        block of rows at a time (memory bounded by CHUNK x the reference)."""
        k = min(self.k, len(self.reference))
        out = [
            1.0 - np.partition(features[b : b + CHUNK] @ self.reference.T, -k, axis=1)[:, -k]
            for b in range(0, len(features), CHUNK)
        ]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def sentence(self, score: float) -> str:
        """What a score means, in words ("" when the photo looks like the training photos)."""
        if score <= self.threshold:
            return ""
        return (
            f"This photo does not look like your training photos (distance {score:.2f} to its {self.k}th nearest "
            f"training photo; {self.quantile:.0%} of the validation photos are within {self.threshold:.2f}), so no "
            "class is given: a model only knows the classes it was shown."
        )

    def to_dict(self) -> dict:
        """The rule in words and numbers, as the model card carries it."""
        return {
            "score": f"1 - cosine similarity of the features the head reads to the {self.k}th nearest of "
            f"{self.n_reference} training photos",
            "threshold": self.threshold,
            "fitted_on": f"{self.n_val} validation photos: {self.quantile:.0%} score below the threshold",
            "k": self.k,
        }


class WithFeatures(torch.nn.Module):
    """A `TapModel` whose output is its logits followed by its unit-length features: one forward for both, through
    the engine's one prediction routine (`predict_logits`)."""

    def __init__(self, model: TapModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model.features(x)
        z = f.float() / f.float().norm(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.cat([self.model.head(f).float(), z], dim=1)


def unit_features(model: TapModel, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The logits and the unit-length features of a prepared batch, from one forward."""
    with torch.inference_mode():
        both = WithFeatures(model).eval()(x)
    n = model.head.fc.out_features
    return both[:, :n].numpy(), both[:, n:].numpy()


def answers_and_features(model: TapModel, spec: InputSpec, photos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The model's answers on image files and their unit-length features, as the rule compares them."""
    answers, features = [], []
    for b in range(0, len(photos), BATCH):
        x = spec.normalize(torch.stack(load_images(spec, photos[b : b + BATCH], keep=False)))
        logits, z = unit_features(model, x)
        answers.append(logits.argmax(1))
        features.append(z)
    return np.concatenate(answers).astype(np.int64), np.concatenate(features).astype(np.float32)


def photo_features(model: TapModel, spec: InputSpec, photos: list[str]) -> np.ndarray:
    """The unit-length features of image files, as the rule compares them."""
    return answers_and_features(model, spec, photos)[1]


def _spread(photos: list[str], labels: list[int], n: int) -> tuple[list[str], list[int]]:
    """At most `n` photos taken round-robin over the classes, with their classes."""
    by_class: dict[int, list[str]] = {}
    for p, y in zip(photos, labels):
        by_class.setdefault(y, []).append(p)
    out: list[tuple[str, int]] = []
    depth = 0
    while len(out) < min(n, len(photos)):
        out += [(ps[depth], y) for y, ps in by_class.items() if depth < len(ps)][: n - len(out)]
        depth += 1
    return [p for p, _ in out], [y for _, y in out]


def fit(
    model: TapModel, spec: InputSpec, train: tuple[list[str], list[int]], val: tuple[list[str], list[int]]
) -> OutOfPlace:
    """The rule from the model's features of the training photos (the reference) and the val photos (the threshold),
    each with its class (the model's class indices), and the model's answers on val.

    Raises:
        DataError: There are no val photos to fit the threshold on.
    """
    if not val[0] or not train[0]:
        raise DataError("out-of-place rule: the run's data has no train or val photos left to fit it on")
    photos, labels = _spread(*train, MAX_REFERENCE)
    reference = photo_features(model, spec, photos)
    val_answers, val_features = answers_and_features(model, spec, val[0])
    rule = OutOfPlace(0.0, K, QUANTILE, len(reference), len(val[0]), reference)
    return replace(
        rule,
        threshold=float(np.quantile(rule.scores(val_features), QUANTILE)),
        labels=np.asarray(labels, dtype=np.int64),
        val=val_features,
        val_labels=np.asarray(val[1], dtype=np.int64),
        val_answers=val_answers,
    )


def save(rule: OutOfPlace, path: Path) -> None:
    def write(f) -> None:
        buffer = io.BytesIO()
        meta = np.array([rule.threshold, rule.k, rule.quantile, rule.n_reference, rule.n_val], dtype=np.float64)
        np.savez(
            buffer,
            meta=meta,
            reference=rule.reference.astype(np.float16),
            weights=np.array(rule.weights),
            labels=rule.labels,
            val=rule.val.astype(np.float16),
            val_labels=rule.val_labels,
            val_answers=rule.val_answers,
        )
        f.write(buffer.getvalue())

    atomic_write(path, write)


def load(path: Path) -> OutOfPlace | None:
    """The rule kept at `path` (None when there is none, or it cannot be read)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            threshold, k, quantile, n_reference, n_val = z["meta"].tolist()
            reference = z["reference"].astype(np.float32)
            weights = str(z["weights"]) if "weights" in z.files else ""
            kept = {name: z[name] for name in ("labels", "val", "val_labels", "val_answers") if name in z.files}
    except (OSError, KeyError, ValueError):
        return None
    rule = OutOfPlace(threshold, int(k), quantile, int(n_reference), int(n_val), reference, weights)
    if "val" in kept:
        kept["val"] = kept["val"].astype(np.float32)
    return replace(rule, **kept)


def weights_stamp(run: Run) -> str:
    """The model file a run's predictions come from (its final weights, else its best checkpoint), as name, size and
    modification time."""
    for name in ("model.safetensors", "best.pt"):
        path = run.path / name
        if path.exists():
            st = path.stat()
            return f"{name}:{st.st_size}:{st.st_mtime_ns}"
    return ""


def run_rule(run: Run, model: TapModel, spec: InputSpec) -> OutOfPlace:
    """The run's rule: read from its folder when it was fitted for the model file the run predicts with now, else
    fitted from its data and kept there.

    Raises:
        DataError: The run's photos are gone, or it has no val photos.
    """
    from engine.plan.config import TrainConfig
    from engine.plan.make import load_data

    kept = load(run.path / FILE)
    stamp = weights_stamp(run)
    if kept is not None and kept.weights == stamp and kept.labelled:
        return kept
    ds = load_data(TrainConfig.from_dict(run.config))
    classes = (run.read_json("run_info.json") or {}).get("classes") or ds.classes
    index = [classes.index(name) if name in classes else -1 for name in ds.classes]  # the model's class order

    def split(name: str) -> tuple[list[str], list[int]]:
        there = [it for it in ds.split(name) if Path(it.path).exists()]
        return [it.path for it in there], [index[it.label] for it in there]

    val = split("val")
    rule = replace(fit(model, spec, split("train"), val), weights=stamp)
    rule = replace(rule, val_answers=_as_scored(run, val[0], rule.val_answers))
    save(rule, run.path / FILE)
    return rule


def _as_scored(run: Run, paths: list[str], answers: np.ndarray) -> np.ndarray:
    """The model's answers on the val photos as the run scored them, where it kept them: a head that reads target
    photos on their own statistics scored val on the training photos' (engine.train.finish), while the saved model
    carries the target photos'."""
    from engine.runs.result import RunResult

    result = RunResult.read(run)
    scored = dict(zip(result.val_paths, result.val_pred)) if result is not None else {}
    if not paths or not all(p in scored for p in paths):
        return answers
    return np.array([scored[p] for p in paths], dtype=np.int64)
