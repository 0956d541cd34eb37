"""Linear probe: frozen features → standardised → logistic regression, on the final features and after every stage.

The probe answers "how good are these pretrained features for my data" in seconds; its features then serve the
choice of the head (`engine.probe.choose`) and its fit is where every pretrained run's head starts.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.errors import DataError, WeightsUnavailable
from engine.metrics import confusion, per_class_accuracy
from engine.model.bn_stats import reestimate
from engine.model.catalogue import get_entry, input_spec
from engine.model.device import autocast, image_batches, pick_device
from engine.model.profile import architecture
from engine.model.taps import FINAL, tap_features
from engine.model.weights import WeightsInfo, create_backbone, find_weights, how_to_provide, sha256_file
from engine.probe.features import (
    FeatureSet,
    cap_rows,
    compute_cached,
    current_precision,
    feature_key,
    feature_views,
    fit_rows,
)
from engine.progress import QUIET_STEP, Step

FEATURES_SHARE = 0.9  # of a probe's progress: the extraction; the rest, the stages' fits


@dataclass
class LinearFit:
    """A fitted probe: accuracy, predictions and the classifier on standardised features with the scaler."""

    accuracy: float
    predictions: np.ndarray
    probabilities: np.ndarray
    std_coef: np.ndarray  # (classes, D), on standardised features
    std_intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @property
    def coef(self) -> np.ndarray:
        """The same classifier on raw features."""
        return self.std_coef / self.scale

    @property
    def intercept(self) -> np.ndarray:
        return self.std_intercept - (self.std_coef * self.mean / self.scale).sum(1)


# PLR0913: the fit's data and hyper-parameters
def fit_linear(  # noqa: PLR0913
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    c: float = 1.0,
    balanced: bool = False,
    tol: float = 1e-4,
) -> LinearFit:
    """Standardises features and fits a multinomial logistic regression (classes absent from training never win)."""
    scaler = StandardScaler().fit(x_train)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    clf = LogisticRegression(C=c, tol=tol, max_iter=2000, class_weight="balanced" if balanced else None)
    clf.fit((x_train - scaler.mean_) / scale, y_train)
    w, b = clf.coef_, clf.intercept_
    if w.shape[0] == 1:  # binary: sklearn keeps one row; as softmax logits that is [0, w.x + b]
        w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
    std_coef = np.zeros((n_classes, x_train.shape[1]), dtype=np.float32)
    std_intercept = np.full(n_classes, -1e4, dtype=np.float32)
    std_coef[clf.classes_], std_intercept[clf.classes_] = w, b
    logits = ((x_val - scaler.mean_) / scale) @ std_coef.T + std_intercept
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
    preds = probs.argmax(1)
    return LinearFit(
        float((preds == y_val).mean()) if len(y_val) else 0.0,
        preds,
        probs,
        std_coef,
        std_intercept,
        scaler.mean_.astype(np.float32),
        scale.astype(np.float32),
    )


# PLR0913: one candidate head's fields
def fit_taps(  # noqa: PLR0913
    fs: FeatureSet,
    taps: tuple[int, ...],
    n_classes: int,
    flip: bool = False,
    c: float = 1.0,
    balanced: bool = False,
    tol: float = 1e-4,
) -> LinearFit:
    """The probe on the concatenated `taps`, fitted on train (both views when `flip`), scored on val (the views'
    mean feature when `flip`, as `TapModel` computes it)."""
    views = range(fs.views if flip else 1)
    train = cap_rows(np.flatnonzero(fs.splits == "train"), fs.labels, fit_rows(fs.dim(taps), len(views)))
    x_train = np.concatenate([fs.rows(train, taps, v) for v in views])
    y_train = np.concatenate([fs.labels[train]] * len(views))
    x_val = np.mean([fs.x("val", taps, v) for v in views], axis=0)
    return fit_linear(x_train, y_train, x_val, fs.y("val"), n_classes, c, balanced, tol)


@dataclass
class ProbeResult:
    """Everything a probe measured; `to_dict()` is the CLI's JSON."""

    backbone: str
    accuracy: float  # the final-feature probe on val
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
    images_per_s: float  # feature extraction speed (forward passes/s, every view), for planning; cached features
    # keep the speed measured when they were extracted
    stage_curve: list[dict] = field(default_factory=list)  # per tap: {"tap", "name", "dim", "accuracy"}
    val_paths: list[str] = field(default_factory=list)
    val_labels: list[int] = field(default_factory=list)
    val_predictions: list[int] = field(default_factory=list)
    val_confidence: list[float] = field(default_factory=list)
    features: FeatureSet | None = field(default=None, repr=False)
    head: LinearFit | None = field(default=None, repr=False)

    @property
    def best_stage(self) -> dict | None:
        body = [c for c in self.stage_curve if c["tap"] != FINAL]
        return max(body, key=lambda c: c["accuracy"]) if body else None

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("head", "features", "weights", "input_spec")}
        d.update(weights=self.weights.to_dict(), input_spec=self.input_spec.to_dict())
        return d


def spec_for(ds: Dataset, backbone: str, in_chans: int) -> InputSpec:
    """The backbone's input contract; without the centre crop when the photos are no larger than the resize before
    it, so cropping would only throw away their borders (64 px satellite tiles, 256 px leaf photos)."""
    spec = input_spec(backbone, in_chans)
    sides = [min(m.width, m.height) for m in ds.meta.values()]
    if sides and float(np.median(sides)) <= math.floor(spec.input_size[-1] / spec.crop_pct):
        return spec.whole_image()
    return spec


# PLR0913: the features' keyword options
def features_for(  # noqa: PLR0913
    ds: Dataset,
    backbone: str,
    weights: str = "auto",
    spec: InputSpec | None = None,
    in_chans: int = 3,
    progress: Step = QUIET_STEP,
    mirror: bool = True,
) -> tuple[FeatureSet, WeightsInfo, InputSpec, float]:
    """Features of every train and val item (never the test items), from the disk cache when they match.

    Returns:
        (features, weights provenance, input contract, extraction images/s: measured now, or when the cached features
        were extracted).
    """
    source, path, sha = _weights(backbone, weights, in_chans)
    spec = spec or input_spec(backbone, in_chans)
    precision = current_precision()
    views = feature_views(sum(it.split in ("train", "val") for it in ds.items), mirror)
    key = feature_key(backbone, sha, ds.fingerprint(), spec, precision, views=views)
    items = [it for it in ds.items if it.split in ("train", "val")]
    labels = np.array([it.label for it in items])
    splits = np.array([it.split for it in items])
    info = WeightsInfo(
        source,
        str(path) if path else None,
        None if path is None else sha,
        "random initialisation, asked for explicitly" if path is None else "",
    )
    fs = compute_cached(
        key,
        lambda: _seeded(backbone, weights, in_chans),
        spec,
        [it.path for it in items],
        labels,
        splits,
        views=views,
        progress=progress,
    )
    return fs, info, spec, fs.images_per_s


def _weights(backbone: str, weights: str, in_chans: int) -> tuple[str, Path | None, str]:
    """(where the weights come from, their file, the key features made with them are cached under).

    Raises:
        WeightsUnavailable: No pretrained weights for `backbone` (never a silent random initialisation).
    """
    found = find_weights(backbone, None if weights == "auto" else weights)
    if found is None:
        raise WeightsUnavailable(how_to_provide(backbone))
    source, path = found
    return source, path, sha256_file(path) if path is not None else f"scratch-seed0-{in_chans}"


def weights_key(backbone: str, weights: str = "auto", in_chans: int = 3) -> str:
    """The key of the weights `backbone` runs with (their SHA-256), as feature caches are keyed."""
    return _weights(backbone, weights, in_chans)[2]


# PLR0913: the photos, their labels and splits, the backbone read and how
def photo_features(  # noqa: PLR0913
    paths: list[str],
    backbone: str,
    weights: str = "auto",
    in_chans: int = 3,
    spec: InputSpec | None = None,
    labels: np.ndarray | None = None,
    splits: np.ndarray | None = None,
    progress: Step = QUIET_STEP,
    bn_from: list[str] | None = None,
) -> FeatureSet:
    """Pooled features at every stage of any list of photos (one view each: the target photos, every split of a
    dataset), from the feature cache when the same photos, unchanged, were read with the same weights and input.
    With `bn_from`, the backbone's BatchNorm statistics are first re-estimated on those photos (`engine.model.bn_stats`;
    one more pass over them)."""
    spec = spec or input_spec(backbone, in_chans)
    n = len(paths)
    labels = np.full(n, -1) if labels is None else labels
    splits = np.array(["photo"] * n, dtype="U8") if splits is None else splits
    source = f"photos-{photos_digest(paths)}" + (f"-bn-{photos_digest(bn_from)}" if bn_from else "")
    fs = compute_cached(
        feature_key(
            backbone,
            weights_key(backbone, weights, in_chans),
            source,
            spec,
            current_precision(),
            views=1,
        ),
        lambda: _seeded(backbone, weights, in_chans, (spec, bn_from) if bn_from else None),
        spec,
        paths,
        labels,
        splits,
        views=1,
        progress=progress,
    )
    fs.labels, fs.splits = labels, splits  # the caller's: the cache is keyed by the photos, not by how they are named
    return fs


def photos_digest(paths: list[str]) -> str:
    """A short digest of a list of photos as they are on disk (path, size, modification time)."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def _seeded(backbone: str, weights: str, in_chans: int, bn_from: tuple[InputSpec, list[str]] | None = None):
    """The backbone; a random initialisation is seeded (`create_backbone`), so its cached features stay valid. With
    `bn_from` (the input contract, photos), its BatchNorm statistics are those photos'."""
    model = create_backbone(backbone, weights, in_chans)[0]
    if bn_from is not None:
        spec, photos = bn_from
        device = pick_device()
        model = model.to(device)
        batches = (x for _, x in image_batches(spec, photos, device, keep=False))
        with autocast(device):
            reestimate(model, batches, lambda x: tap_features(model, x, (FINAL,)))
    return model


# PLR0913: the public probe's keyword options
def probe(  # noqa: PLR0913
    ds: Dataset,
    backbone: str,
    weights: str = "auto",
    per_stage: bool = True,
    in_channels: int = 3,
    spec: InputSpec | None = None,
    progress: Step = QUIET_STEP,
    mirror: bool = True,
) -> ProbeResult:
    """Linear probe of `backbone` on `ds`: the final features, and (`per_stage`) the features after every stage;
    `mirror` False reads each photo once (no mirror view: half the extraction). The extraction is the first
    `FEATURES_SHARE` of `progress`, the stages' fits the rest.

    Raises:
        WeightsUnavailable: No pretrained weights for `backbone` (the message says how to provide them).
        DataError: The dataset has no validation images or fewer than two classes.
    """
    t0 = time.perf_counter()
    if not ds.val:
        raise DataError(f"{ds.root}: no validation images; add a val/ folder or let TransferLab split the data")
    if len(ds.classes) < 2:
        raise DataError(
            f"{ds.root}: a classifier needs at least 2 classes with training images, found "
            f"{len(ds.classes)}; add a folder of images for every class"
        )
    fs, info, spec, speed = features_for(
        ds, backbone, weights, spec, in_channels, progress.sub(0, FEATURES_SHARE), mirror
    )
    stages = progress.sub(FEATURES_SHARE, 1.0)
    n_cls = len(ds.classes)
    fit = fit_taps(fs, (FINAL,), n_cls)
    curve = []
    if per_stage:
        names = architecture(backbone).tap_names()
        body = [t for t in fs.taps if t != FINAL]
        for i, t in enumerate(body):
            stages(i / len(body))
            stages.check_cancel()
            curve.append(
                {
                    "tap": t,
                    "name": names[t],
                    "dim": int(fs.arrays[t].shape[2]),
                    "accuracy": fit_taps(fs, (t,), n_cls, tol=1e-3).accuracy,
                }
            )
        curve.append(
            {"tap": FINAL, "name": "final features", "dim": int(fs.arrays[FINAL].shape[2]), "accuracy": fit.accuracy}
        )
    yva = fs.y("val")
    progress(1.0)
    return ProbeResult(
        backbone,
        fit.accuracy,
        per_class_accuracy(yva, fit.predictions, ds.classes),
        confusion(yva, fit.predictions, n_cls),
        ds.classes,
        round(time.perf_counter() - t0, 3),
        fs.cached,
        info,
        spec,
        current_precision(),
        int((fs.splits == "train").sum()),
        len(yva),
        get_entry(backbone).params_m,
        speed,
        curve,
        [it.path for it in ds.items if it.split == "val"],
        yva.tolist(),
        fit.predictions.tolist(),
        fit.probabilities.max(1).round(4).tolist(),
        fs,
        fit,
    )
