"""The domain gap: how far photos from where the model will be used are from the training photos, before it costs you.

At every stage of the backbone, on the pooled features a probe reads:
* a linear domain classifier's cross-validated accuracy at telling a training photo from a target photo (50%: the
  two sets look alike to that stage; 100%: nothing in common), and the proxy A-distance it implies,
  `2 (1 - 2 err)` (Ben-David et al. 2010);
* the multi-kernel MMD between the two sets (`engine.model.adapt.mk_mmd`) on standardised features.

And the input statistics side by side: channel means, the share of grey photos, the median resolution. Without a
target folder, the training photos are compared with what the backbone was pretrained on (its normalisation mean and
input size), as the lesson's "Recognizing a Domain Gap" does. One plain sentence says what it means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.data.dataset import Dataset
from engine.data.imageio import load_image
from engine.data.target import TargetSet
from engine.model.adapt import mk_mmd
from engine.model.catalogue import input_spec
from engine.model.profile import architecture
from engine.model.taps import FINAL
from engine.probe.features import FeatureSet
from engine.probe.linear import features_for, photo_features
from engine.progress import QUIET, QUIET_STEP, Progress, Step

GAP_SAMPLE = 600  # photos per domain the classifier and the MMD use at most (a stratified-by-domain sample)
STATS_SAMPLE = 200  # photos per domain decoded for the input statistics
GREY_TOLERANCE = 4.0  # a photo whose channels differ by less than this (of 255) on average is grey
NEAR, FAR = 0.65, 0.85  # domain-classifier accuracy: below NEAR the sets look alike; above FAR they are far apart


@dataclass(frozen=True)
class StageGap:
    tap: int
    name: str
    domain_acc: float  # the domain classifier's cross-validated accuracy (0.5: indistinguishable)
    proxy_a: float  # 2 (1 - 2 err), in [0, 2]
    mmd: float


@dataclass(frozen=True)
class InputStats:
    """A set of photos as numbers: channel means (0-1, RGB), the share that is grey, the median size."""

    label: str
    n: int
    mean_rgb: tuple[float, float, float]
    grey_share: float
    median_size: tuple[int, int]


@dataclass
class DomainGap:
    """The report: per stage, the inputs side by side, the sentence, and what was done to get them."""

    backbone: str
    stages: list[StageGap]
    source: InputStats
    target: InputStats  # the target photos, or the backbone's pretraining statistics without a target folder
    sentence: str
    notes: list[str] = field(default_factory=list)

    @property
    def furthest(self) -> StageGap | None:
        return max(self.stages, key=lambda s: s.domain_acc) if self.stages else None

    def to_dict(self) -> dict:
        return asdict(self)


def input_stats(label: str, paths: list[str], sizes: list[tuple[int, int]], seed: int = 0) -> InputStats:
    """Channel means and grey share of a sample of `paths` (decoded small), and the median of `sizes`."""
    rng = np.random.default_rng(seed)
    sample = [paths[i] for i in sorted(rng.choice(len(paths), min(STATS_SAMPLE, len(paths)), replace=False))]
    means, grey = [], 0
    for p in sample:
        img = load_image(p).convert("RGB")
        img.thumbnail((64, 64), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float32)
        means.append(a.reshape(-1, 3).mean(0) / 255.0)
        grey += float(np.abs(a - a.mean(2, keepdims=True)).mean()) < GREY_TOLERANCE
    w, h = (int(np.median([s[i] for s in sizes])) for i in (0, 1)) if sizes else (0, 0)
    mean = np.mean(means, 0) if means else np.zeros(3)
    return InputStats(label, len(paths), tuple(round(float(m), 3) for m in mean), grey / max(1, len(sample)), (w, h))


def pretraining_stats(backbone: str) -> InputStats:
    """What the backbone was pretrained on, as far as its input contract says: the normalisation mean, colour
    photos, its input size."""
    spec = input_spec(backbone)
    side = int(spec.input_size[-1])
    mean = tuple(round(float(m), 3) for m in spec.mean[:3])
    return InputStats(f"{backbone}'s pretraining photos", 0, mean, 0.0, (side, side))


def target_features(
    target: TargetSet, backbone: str, weights: str = "auto", in_chans: int = 3, progress: Step = QUIET_STEP
) -> FeatureSet:
    """The target photos' features at every stage (one view each), from the feature cache when they match; their
    split is "target"."""
    n = len(target.paths)
    splits = np.array(["target"] * n, dtype="U8")
    return photo_features(target.paths, backbone, weights, in_chans, splits=splits, progress=progress)


def stage_gap(xs: np.ndarray, xt: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(domain classifier's 5-fold accuracy, MMD) between two feature matrices, on at most `GAP_SAMPLE` rows each
    (as many of each, so 50% is chance)."""
    rng = np.random.default_rng(seed)
    n = min(GAP_SAMPLE, len(xs), len(xt))
    a = xs[rng.choice(len(xs), n, replace=False)]
    b = xt[rng.choice(len(xt), n, replace=False)]
    x = np.concatenate([a, b]).astype(np.float32)
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=min(5, n), shuffle=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    acc = float(cross_val_score(clf, x, y, cv=folds).mean())
    z = StandardScaler().fit_transform(x)
    mmd = float(mk_mmd(torch.from_numpy(z[:n]), torch.from_numpy(z[n:])))
    return acc, max(0.0, mmd)


# PLR0913: the data, the backbone and its weights and channels, the target, who watches
def domain_gap(  # noqa: PLR0913
    ds: Dataset,
    backbone: str,
    target: TargetSet | None = None,
    weights: str = "auto",
    in_chans: int = 3,
    progress: Step = QUIET_STEP,
) -> DomainGap:
    """The report for the training photos of `ds` against `target` (or, without one, against the backbone's
    pretraining statistics: then only the inputs are compared)."""
    train = [it.path for it in ds.train]
    sizes = [(ds.meta[p].width, ds.meta[p].height) for p in train if p in ds.meta]
    source = input_stats("your training photos", train, sizes)
    if target is None:
        other = pretraining_stats(backbone)
        return DomainGap(backbone, [], source, other, _pretraining_sentence(source, other))
    t_sizes = [(m.width, m.height) for m in target.meta.values()]
    other = input_stats("your target photos", target.paths, t_sizes)
    fs, _, _, _ = features_for(ds, backbone, weights, None, in_chans, progress.sub(0.0, 0.45), mirror=False)
    ft = target_features(target, backbone, weights, in_chans, progress.sub(0.45, 0.9))
    names = architecture(backbone).tap_names()
    stages = []
    for i, tap in enumerate(fs.taps):
        progress.sub(0.9, 1.0)(i / len(fs.taps))
        progress.check_cancel()
        acc, mmd = stage_gap(fs.x("train", (tap,)), ft.x("target", (tap,)), seed=i)
        name = "final features" if tap == FINAL else names[tap]
        stages.append(StageGap(tap, name, acc, max(0.0, 2 * (1 - 2 * (1 - acc))), mmd))
    progress(1.0)
    return DomainGap(backbone, stages, source, other, _target_sentence(stages, source, other), list(target.notes))


def _target_sentence(stages: list[StageGap], source: InputStats, target: InputStats) -> str:
    far = max(stages, key=lambda s: s.domain_acc)
    colour = _colour_note(source, target)
    if far.domain_acc < NEAR:
        return (
            f"Your target photos look like your training photos at every stage (a classifier tells them apart at "
            f"most {far.domain_acc:.0%} of the time; 50% is chance): expect about the validation accuracy on them."
            + colour
        )
    how = "differ strongly from" if far.domain_acc >= FAR else "differ from"
    return (
        f"Your target photos {how} your training photos, most at {far.name} (a classifier tells them apart "
        f"{far.domain_acc:.0%} of the time; 50% is chance): expect the accuracy on them to be lower than on val, "
        f"and consider adapting to them (Train: adaptation)." + colour
    )


def _colour_note(source: InputStats, target: InputStats) -> str:
    notes = []
    if abs(source.grey_share - target.grey_share) > 0.3:
        notes.append(f"{target.grey_share:.0%} of the target photos are grey, {source.grey_share:.0%} of yours")
    shift = max(abs(a - b) for a, b in zip(source.mean_rgb, target.mean_rgb))
    if shift > 0.1:
        notes.append(f"their average colour differs by up to {shift * 255:.0f} of 255 in a channel")
    ratio = (target.median_size[0] or 1) / max(1, source.median_size[0])
    if ratio > 2 or ratio < 0.5:
        notes.append(f"they are {ratio:.1f}x the size of yours")
    return f" In the inputs: {'; '.join(notes)}." if notes else ""


def _pretraining_sentence(source: InputStats, pre: InputStats) -> str:
    """The training photos against the backbone's pretraining: what the lesson checks before any target exists."""
    notes = []
    if source.grey_share > 0.5:
        notes.append(f"{source.grey_share:.0%} of your photos are grey, the pretraining photos are in colour")
    shift = max(abs(a - b) for a, b in zip(source.mean_rgb, pre.mean_rgb))
    if shift > 0.1:
        notes.append(f"their average colour is up to {shift * 255:.0f} of 255 away from the pretraining photos'")
    if source.median_size[0] and source.median_size[0] * 2 < pre.median_size[0]:
        notes.append(f"they are small ({source.median_size[0]} px against {pre.median_size[0]} px)")
    if not notes:
        return (
            "Your photos' colours and sizes are close to what the backbone was pretrained on. Give a folder of "
            "photos from where the model will be used to measure the gap to them."
        )
    return (
        f"Your photos differ from what the backbone was pretrained on: {'; '.join(notes)}. Fine-tuning more of the "
        f"network helps where the probe is low. Give a folder of photos from where the model will be used to "
        f"measure the gap to them."
    )


# PLR0913: the data, where its files may lie, the target, the backbone and channels, who watches
def measure_gap(  # noqa: PLR0913
    data: str,
    target: str | None,
    backbone: str,
    root: str | None = None,
    in_chans: int = 3,
    progress: Progress = QUIET,
) -> DomainGap:
    """The Data page's and `engine gap`'s report: the dataset at `data` against the target folder (or, without one,
    against the backbone's pretraining), each a named step of `progress`."""
    from engine.data.dataset import load_dataset
    from engine.data.target import load_target

    progress("load and check the photos", 0.0)
    ds = load_dataset(data, root=root)
    photos = load_target(target, ds, root) if target else None
    progress("load and check the photos", 1.0)
    step = progress.step("measure the domain gap")
    step(0.0)
    gap = domain_gap(ds, backbone, photos, in_chans=in_chans, progress=step)
    step(1.0)
    return gap
