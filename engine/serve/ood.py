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
    """

    threshold: float
    k: int
    quantile: float
    n_reference: int
    n_val: int
    reference: np.ndarray = field(repr=False)
    weights: str = ""

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


def photo_features(model: TapModel, spec: InputSpec, photos: list[str]) -> np.ndarray:
    """The unit-length features of image files, as the rule compares them."""
    out = []
    for b in range(0, len(photos), BATCH):
        x = spec.normalize(torch.stack(load_images(spec, photos[b : b + BATCH], keep=False)))
        out.append(unit_features(model, x)[1])
    return np.concatenate(out).astype(np.float32)


def _spread(photos: list[str], labels: list[int], n: int) -> list[str]:
    """At most `n` photos taken round-robin over the classes."""
    by_class: dict[int, list[str]] = {}
    for p, y in zip(photos, labels):
        by_class.setdefault(y, []).append(p)
    out: list[str] = []
    depth = 0
    while len(out) < min(n, len(photos)):
        out += [ps[depth] for ps in by_class.values() if depth < len(ps)][: n - len(out)]
        depth += 1
    return out


def fit(model: TapModel, spec: InputSpec, train: tuple[list[str], list[int]], val: list[str]) -> OutOfPlace:
    """The rule from the model's features of the training photos (the reference) and the val photos (the threshold).

    Raises:
        DataError: There are no val photos to fit the threshold on.
    """
    if not val or not train[0]:
        raise DataError("out-of-place rule: the run's data has no train or val photos left to fit it on")
    reference = photo_features(model, spec, _spread(*train, MAX_REFERENCE))
    rule = OutOfPlace(0.0, K, QUANTILE, len(reference), len(val), reference)
    threshold = float(np.quantile(rule.scores(photo_features(model, spec, val)), QUANTILE))
    return OutOfPlace(threshold, K, QUANTILE, len(reference), len(val), reference)


def save(rule: OutOfPlace, path: Path) -> None:
    def write(f) -> None:
        buffer = io.BytesIO()
        meta = np.array([rule.threshold, rule.k, rule.quantile, rule.n_reference, rule.n_val], dtype=np.float64)
        np.savez(buffer, meta=meta, reference=rule.reference.astype(np.float16), weights=np.array(rule.weights))
        f.write(buffer.getvalue())

    atomic_write(path, write)


def load(path: Path) -> OutOfPlace | None:
    """The rule kept at `path` (None when there is none, or it cannot be read)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            threshold, k, quantile, n_reference, n_val = z["meta"].tolist()
            reference = z["reference"].astype(np.float32)
            weights = str(z["weights"]) if "weights" in z.files else ""
    except (OSError, KeyError, ValueError):
        return None
    return OutOfPlace(threshold, int(k), quantile, int(n_reference), int(n_val), reference, weights)


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
    if kept is not None and kept.weights == stamp:
        return kept
    ds = load_data(TrainConfig.from_dict(run.config))
    train = [it for it in ds.split("train") if Path(it.path).exists()]
    val = [it.path for it in ds.split("val") if Path(it.path).exists()]
    rule = replace(fit(model, spec, ([it.path for it in train], [it.label for it in train]), val), weights=stamp)
    save(rule, run.path / FILE)
    return rule
