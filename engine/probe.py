"""Linear probe: frozen features → standardised → logistic regression; per stage and across backbones.

The probe answers "how good are these pretrained features for my data" in seconds, and feeds the recommendation.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from engine.catalogue import get_entry
from engine.data import Dataset
from engine.evaluate import confusion, per_class_accuracy
from engine.errors import TransferLabError, WeightsUnavailable
from engine.features import FeatureSet, InputSpec, current_precision, extract, feature_key, load_cached, save_cached
from engine.recommend import Recommendation, recommend
from engine.weights import WeightsInfo, create_backbone, find_weights, how_to_provide, sha256_file

Progress = Callable[[str, float], None]


@dataclass
class LinearFit:
    """A fitted probe: accuracy, predictions and the classifier in the original feature space."""

    accuracy: float
    predictions: np.ndarray
    probabilities: np.ndarray
    coef: np.ndarray  # (classes, D), applies to raw (unstandardised) features
    intercept: np.ndarray
    std_coef: np.ndarray  # the same classifier on standardised features, with the scaler's mean and scale
    std_intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


def fit_linear(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               n_classes: int, c: float = 1.0, tol: float = 1e-4) -> LinearFit:
    """Standardises features and fits a multinomial logistic regression."""
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=c, tol=tol, max_iter=2000).fit(scaler.transform(x_train), y_train)
    probs = np.zeros((len(x_val), n_classes), dtype=np.float32)
    probs[:, clf.classes_] = clf.predict_proba(scaler.transform(x_val))
    preds = probs.argmax(1)
    w, b = clf.coef_, clf.intercept_
    if w.shape[0] == 1:  # binary: sklearn keeps one row; as softmax logits that is [0, w.x + b]
        w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
    coef = np.zeros((n_classes, x_train.shape[1]), dtype=np.float32)
    intercept = np.full(n_classes, -1e4, dtype=np.float32)  # classes absent from training are never predicted
    std_coef, std_intercept = np.zeros_like(coef), intercept.copy()
    coef[clf.classes_] = w / scaler.scale_
    intercept[clf.classes_] = b - (w * scaler.mean_ / scaler.scale_).sum(1)
    std_coef[clf.classes_], std_intercept[clf.classes_] = w, b
    return LinearFit(float((preds == y_val).mean()) if len(y_val) else 0.0, preds, probs, coef, intercept,
                     std_coef, std_intercept, scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32))


@dataclass
class ProbeResult:
    """Everything a probe measured; `to_dict()` is the CLI's JSON."""

    backbone: str
    accuracy: float
    per_class: dict[str, float]
    confusion: list[list[int]]
    classes: list[str]
    seconds: float
    cached: bool
    weights: WeightsInfo
    input_spec: InputSpec
    precision: str
    n_train: int
    n_val: int
    params_m: float
    recommendation: Recommendation
    stage_curve: list[dict] | None = None
    val_paths: list[str] = field(default_factory=list)
    val_labels: list[int] = field(default_factory=list)
    val_predictions: list[int] = field(default_factory=list)
    val_confidence: list[float] = field(default_factory=list)
    head: LinearFit | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("head", "recommendation", "weights", "input_spec")}
        d.update(recommendation=self.recommendation.to_dict(), weights=self.weights.to_dict(),
                 input_spec=asdict(self.input_spec))
        return d


def features_for(ds: Dataset, backbone: str, weights: str = "auto", progress: Progress | None = None,
                 batch_size: int | None = None, in_chans: int = 3) -> tuple[FeatureSet, WeightsInfo, InputSpec]:
    """Features of every item, from the disk cache when (backbone, weights, data, transform, precision) match."""
    found = find_weights(backbone, None if weights == "auto" else weights)
    if found is None:
        raise WeightsUnavailable(how_to_provide(backbone))
    source, path = found
    spec, precision = InputSpec.for_backbone(backbone, in_chans), current_precision()
    sha = sha256_file(path)
    key = feature_key(backbone, sha, ds.fingerprint(), spec, precision)
    labels = np.array([it.label for it in ds.items])
    splits = np.array([it.split for it in ds.items])
    if (fs := load_cached(key)) is not None and len(fs.labels) == len(labels):
        return fs, WeightsInfo(source, str(path), sha), spec
    model, info = create_backbone(backbone, weights, in_chans)
    cb = (lambda done, total: progress("features", done / total)) if progress else None
    final, stages, names = extract(model, spec, [it.path for it in ds.items], batch_size=batch_size or 16, progress=cb)
    fs = FeatureSet(final, stages, names, labels, splits, cached=False)
    save_cached(key, fs)
    return fs, info, spec


def probe(ds: Dataset, backbone: str, weights: str = "auto", per_stage: bool = True, in_channels: int = 3,
          progress: Progress | None = None) -> ProbeResult:
    """Linear probe of `backbone` on `ds`, with the per-stage curve and a recommendation.

    Raises:
        WeightsUnavailable: No pretrained weights for `backbone` (the message says how to provide them).
        DataError: The dataset has no validation images.
    """
    from engine.errors import DataError
    t0 = time.perf_counter()
    if not ds.val:
        raise DataError(f"{ds.root}: no validation images; add a val/ folder or let TransferLab split the data")
    fs, info, spec = features_for(ds, backbone, weights, progress, in_chans=in_channels)
    n_cls = len(ds.classes)
    xtr, ytr = fs.select("train")
    xva, yva = fs.select("val")
    fit = fit_linear(xtr, ytr, xva, yva, n_cls)
    curve = None
    if per_stage:
        curve = []
        for i, name in enumerate(fs.stage_names):
            if progress:
                progress("stages", i / len(fs.stage_names))
            (s_tr, _), (s_va, _) = fs.select("train", i), fs.select("val", i)
            curve.append({"group": i, "name": str(name), "dim": int(s_tr.shape[1]),
                          "accuracy": fit_linear(s_tr, ytr, s_va, yva, n_cls, tol=1e-3).accuracy})
    groups = [*fs.stage_names, "head"]
    rec = recommend(fit.accuracy, groups, len(ytr), [c["accuracy"] for c in curve] if curve else None, in_channels)
    val_paths = [it.path for it in ds.items if it.split == "val"]
    if progress:
        progress("done", 1.0)
    return ProbeResult(
        backbone, fit.accuracy, per_class_accuracy(yva, fit.predictions, ds.classes),
        confusion(yva, fit.predictions, n_cls), ds.classes,
        round(time.perf_counter() - t0, 3), fs.cached, info, spec, current_precision(), len(ytr), len(yva),
        get_entry(backbone).params_m, rec, curve, val_paths, yva.tolist(), fit.predictions.tolist(),
        fit.probabilities.max(1).round(4).tolist(), fit)


def shootout(ds: Dataset, backbones: list[str], per_stage: bool = False,
             progress: Progress | None = None) -> list[dict]:
    """Probes several backbones on the same data, each on its own cached features, ranked by accuracy.

    A backbone that fails (no weights, say) gets a row with its error instead of stopping the others.
    """
    rows = []
    for i, name in enumerate(backbones):
        if progress:
            progress(name, i / len(backbones))
        try:
            r = probe(ds, name, per_stage=per_stage)
            rows.append({"backbone": name, "accuracy": r.accuracy, "seconds": r.seconds, "params_m": r.params_m,
                         "cached": r.cached, "weights": r.weights.source, "error": None, "result": r})
        except TransferLabError as e:
            rows.append({"backbone": name, "accuracy": None, "seconds": None, "params_m": get_entry(name).params_m,
                         "cached": False, "weights": None, "error": str(e), "result": None})
    return sorted(rows, key=lambda r: (r["accuracy"] is None, -(r["accuracy"] or 0.0)))
