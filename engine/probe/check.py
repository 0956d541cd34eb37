"""Check my photos: labels that are likely wrong, near-duplicate photos, and photos that leak across splits.

* **Likely label errors** (confident learning, Northcutt, Jiang & Chuang 2021, written here: cleanlab is AGPL): every
  labelled photo (train and val) gets the probabilities a linear head gave it in the cross-validation fold that did
  not train on it (the head reads the last three stages and the final features, as auto's best heads do). A class's
  threshold is the mean probability of that class over the photos labelled with it; a photo is flagged when another
  class clears its own threshold and is the likeliest of those that do. All photos are ranked by how little
  probability their own label got (self-confidence): on the shared plant and EuroSAT training photos with 5% of the
  labels flipped, 37 and 39 of the 40 flipped photos are in the top 5% (bench/label_noise.py).
* **Near-duplicates**: pairs of photos that are one photo, found two ways. By their pooled features: the cosine
  similarity, averaged over the last three stages and the final features, each centred on the dataset's mean (what
  all the photos share, the background and the light of one collection, would otherwise make every pair look alike).
  By their pixels: the perceptual signature of `engine.data.lookalike`, which keeps a photo's low frequencies whatever
  size or JPEG quality it was saved at, mirrored or cut by up to 10% of a side. The rule (`is_copy`): a pair is one
  photo when its feature cosine is at least `DUPLICATE_COSINE`, or its signatures agree to `COPY_SIGNATURE` (a
  resized, re-encoded or mirrored copy), or the signatures' similarity plus `CROP_WEIGHT` times the cosine reaches
  `CROP_SCORE` (a crop: the pixels move a little, the content stays). Within a class (the same photo twice), across
  classes (one of them is mislabelled), and across splits (a leak: a test photo the model has as good as seen
  inflates the test score).
  Measured in bench/lookalike.py (results-lookalike-cpu.txt) on 60 training photos of each shared set, copied
  8 ways, and 79,800 pairs of distinct ones: every plant copy resized to 50-90%, saved at JPEG quality 60, cropped
  by up to 10% or mirrored is found, and no distinct pair is called a copy by the signature; flat 64-pixel satellite
  tiles lose some (JPEG 60: 93%), and their uniform sea and forest tiles reach a feature cosine of 0.99, as before.

Nothing here edits the user's files: decisions (relabel, exclude) are stored apart (`engine.data.decisions`).
"""

from __future__ import annotations

import heapq
import json
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedKFold

from engine import paths
from engine.data.dataset import Dataset, load_dataset
from engine.data.lookalike import Signatures, signatures, similar_pairs
from engine.errors import DataError
from engine.model.taps import FINAL
from engine.probe.curve import LearningCurve, learning_curve
from engine.probe.linear import fit_linear, photo_features
from engine.progress import QUIET, QUIET_STEP, Progress, Step

FOLDS = 5
DUPLICATE_COSINE = 0.92  # a resized, re-encoded copy: 0.99; two different plant photos: at most 0.91 of 1,100
COPY_SIGNATURE = 0.97  # signatures this alike: a resized, re-encoded or mirrored copy (distinct photos: at most 0.945)
CROP_WEIGHT = 0.3  # a crop moves the pixels and keeps the content: the signature plus this times the feature cosine ...
CROP_SCORE = 1.16  # ... at least this (chosen on bench/lookalike.py's train photos: every plant crop, no distinct pair)
MAX_PAIRS = 500  # near-duplicate pairs reported at most (the most similar first)


@dataclass(frozen=True)
class LabelIssue:
    path: str
    split: str
    label: str
    suggested: str
    score: float  # 1 - the out-of-sample probability of the photo's own label: higher is more suspicious
    confidence: float  # the out-of-sample probability of the suggested class
    flagged: bool  # confident learning puts it off the diagonal of the confident joint


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    cosine: float  # of the pooled features
    split_a: str
    split_b: str
    label_a: str
    label_b: str
    similarity: float = 0.0  # of the pixels' signatures (engine.data.lookalike)

    @property
    def kind(self) -> str:
        """ "leak" (across splits), "conflict" (one split, two labels) or "duplicate"."""
        if self.split_a != self.split_b:
            return "leak"
        return "conflict" if self.label_a != self.label_b else "duplicate"


@dataclass(frozen=True)
class MapPoint:
    """One photo on the embedding map: where it lies, its class, and whether a head that never saw it got it wrong
    or confident learning suspects its label."""

    x: float
    y: float
    path: str
    label: str
    mistake: bool
    suspect: bool


@dataclass
class CheckReport:
    label_issues: list[LabelIssue]  # every scored photo, the most suspicious first
    near_duplicates: list[Pair]  # within a split
    leaks: list[Pair]  # across splits
    threshold: float = DUPLICATE_COSINE
    notes: list[str] = field(default_factory=list)
    map: list[MapPoint] = field(default_factory=list)  # the labelled photos in 2-D (PCA, then t-SNE)
    learning_curve: LearningCurve | None = None  # how many more photos (engine.probe.curve)

    @property
    def flagged(self) -> list[LabelIssue]:
        return [i for i in self.label_issues if i.flagged]

    @property
    def rule(self) -> str:
        """The rule that made the pairs, in one sentence."""
        return copy_rule(self.threshold)

    def to_dict(self) -> dict:
        return {
            "label_issues": [asdict(i) for i in self.label_issues if i.flagged],
            "near_duplicates": [{**asdict(p), "kind": p.kind} for p in self.near_duplicates],
            "leaks": [{**asdict(p), "kind": p.kind} for p in self.leaks],
            "threshold": self.threshold,
            "rule": self.rule,
            "learning_curve": self.learning_curve.to_dict() if self.learning_curve else None,
            "notes": self.notes,
            "ranked": len(self.label_issues),
        }


def is_copy(cosine: float, similarity: float, threshold: float = DUPLICATE_COSINE) -> bool:
    """Whether two photos are one photo, from their feature `cosine` and their signatures' `similarity` (the rule
    stated in this module's docstring and by `copy_rule`); `threshold` is the feature cosine that is enough alone."""
    return bool(cosine >= threshold or similarity >= COPY_SIGNATURE or similarity + CROP_WEIGHT * cosine >= CROP_SCORE)


def copy_rule(threshold: float = DUPLICATE_COSINE) -> str:
    """`is_copy` in one sentence, as the page and the command line state it."""
    return (
        f"one photo when their features agree to {threshold:.2f}, or their pixels' signatures to "
        f"{COPY_SIGNATURE:.2f} (resized, re-encoded or mirrored), or the signatures' agreement plus {CROP_WEIGHT} "
        f"times the features' reaches {CROP_SCORE:.2f} (cropped by up to 10%)"
    )


def out_of_fold(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Each row's class probabilities from a linear head fitted on the other folds (stratified, `FOLDS` or as many as
    the smallest class allows); rows of a class too small to hold one out get NaN. Returns (probabilities, notes)."""
    counts = np.bincount(y, minlength=n_classes)
    present = counts[counts > 0]
    if len(present) < 2:
        raise DataError("label errors need at least 2 classes with photos; this data has one")
    scorable = np.isin(y, np.flatnonzero(counts >= 2))
    notes = []
    if not scorable.all():
        small = ", ".join(str(c) for c in np.flatnonzero((counts > 0) & (counts < 2)))
        notes.append(f"class(es) {small} have a single photo: no fold can hold it out, so it is not scored")
    probs = np.full((len(y), n_classes), np.nan, dtype=np.float32)
    rows = np.flatnonzero(scorable)
    if len(np.unique(y[rows])) < 2:  # near-duplicates and leaks are still checked
        notes.append("label errors need 2 classes with 2 photos or more each, so no label is scored")
        return probs, notes
    k = int(min(FOLDS, counts[counts >= 2].min()))
    for train, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y[rows]):
        tr, te = rows[train], rows[held]
        fit = fit_linear(x[tr], y[tr], x[te], y[te], n_classes)
        probs[te] = fit.probabilities
    return probs, notes


def confident_learning(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, suggested class) per row: per-class thresholds (the mean probability of a class over its own
    photos), then the likeliest class above its threshold; a row is flagged when that class is not its label. The
    suggestion of a row not flagged is its likeliest class. Rows without probabilities (NaN) are never flagged."""
    ok = ~np.isnan(probs).any(1)
    safe = np.nan_to_num(probs, nan=0.0)
    own = [ok & (y == c) for c in range(probs.shape[1])]
    thresholds = np.array([safe[m, c].mean() if m.any() else 1.0 for c, m in enumerate(own)])
    above = np.where(safe >= thresholds, safe, -1.0)
    best = above.argmax(1)
    flagged = ok & (above.max(1) >= 0) & (best != y)
    return flagged, np.where(flagged, best, safe.argmax(1))


def read_taps(fs) -> tuple[int, ...]:
    """The taps the check reads: the last three stages and the final features."""
    return (*sorted(t for t in fs.taps if t != FINAL)[-3:], FINAL)


def embedding(fs, n: int) -> np.ndarray:
    """One row per photo whose dot products are the near-duplicate cosine: per tap (the last three stages and the
    final features), centred on the photos' mean and scaled to unit length, concatenated and divided by the root of
    the number of taps."""
    taps = read_taps(fs)
    parts = []
    for t in taps:
        x = fs.rows(np.arange(n), (t,))
        x = x - x.mean(0)
        parts.append(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) / np.sqrt(len(taps)))
    return np.concatenate(parts, 1).astype(np.float32)


def near_pairs(
    z: np.ndarray, threshold: float = DUPLICATE_COSINE, keep: int = MAX_PAIRS, block: int = 2048
) -> list[tuple[int, int, float]]:
    """(i, j, similarity) of the `keep` most similar pairs of rows of `z` (unit-length embeddings) whose dot product
    is at least `threshold` (i < j), the most similar first. The similarities are computed a block of rows at a time
    and only the best `keep` pairs are held between blocks, so memory stays linear in the number of photos however
    many pairs pass the threshold."""
    best: list[tuple[float, int, int]] = []  # a min-heap of (similarity, i, j)
    for start in range(0, len(z), block):
        sims = z[start : start + block] @ z.T
        rows, cols = np.nonzero(np.triu(sims >= threshold, k=start + 1))  # j > i only
        if len(rows) > keep:  # the block's own best before the heap sees them
            top = np.argpartition(-sims[rows, cols], keep - 1)[:keep]
            rows, cols = rows[top], cols[top]
        for i, j in zip(rows.tolist(), cols.tolist()):
            item = (float(sims[i, j]), start + i, j)
            if len(best) < keep:
                heapq.heappush(best, item)
            elif item[0] > best[0][0]:
                heapq.heapreplace(best, item)
    return [(a, b, sim) for sim, a, b in sorted(best, key=lambda t: (-t[0], t[1], t[2]))]


def copy_pairs(
    z: np.ndarray, sig: Signatures, threshold: float = DUPLICATE_COSINE, keep: int = MAX_PAIRS
) -> list[tuple[int, int, float, float]]:
    """(i, j, feature cosine, signature similarity) of the pairs `is_copy` calls one photo, the surest first (the
    higher of the two scores): candidates from the features (`near_pairs`) and from the signatures
    (`engine.data.lookalike.similar_pairs`), each scored by the other."""
    found = {(i, j): (c, sig.similarity(i, j)) for i, j, c in near_pairs(z, threshold, keep)}
    for i, j, s in similar_pairs(sig, min(COPY_SIGNATURE, CROP_SCORE - CROP_WEIGHT), keep=4 * keep):
        if (i, j) not in found:
            found[(i, j)] = (float(z[i] @ z[j]), s)
    kept = [(i, j, c, s) for (i, j), (c, s) in found.items() if is_copy(c, s, threshold)]
    return sorted(kept, key=lambda t: (-max(t[2], t[3]), t[0], t[1]))[:keep]


# PLR0913: the data, the backbone and its weights and channels, who watches, the threshold
def check_photos(  # noqa: PLR0913
    ds: Dataset,
    backbone: str,
    weights: str = "auto",
    in_chans: int = 3,
    progress: Step = QUIET_STEP,
    threshold: float = DUPLICATE_COSINE,
) -> CheckReport:
    """The report for every photo of `ds`: label issues over train and val, near-duplicates and leaks over every
    split (the test split included: a leak into it is what matters most)."""
    items = ds.items
    labels = np.array([it.label for it in items])
    splits = np.array([it.split for it in items], dtype="U8")
    fs = photo_features(
        [it.path for it in items],
        backbone,
        weights,
        in_chans,
        labels=labels,
        splits=splits,
        progress=progress.sub(0.0, 0.8),
    )
    x = fs.rows(np.arange(len(items)), read_taps(fs))
    labelled = np.flatnonzero(splits != "test")
    progress.sub(0.8, 0.95)(0.0)
    probs, notes = out_of_fold(x[labelled], labels[labelled], len(ds.classes))
    flagged, suggested = confident_learning(probs, labels[labelled])
    curve = learning_curve(x[labelled], labels[labelled], ds.classes)
    issues = []
    for row, idx in enumerate(labelled):
        p = probs[row]
        if np.isnan(p).any():
            continue
        it = items[idx]
        issues.append(
            LabelIssue(
                it.path,
                it.split,
                ds.classes[it.label],
                ds.classes[int(suggested[row])],
                round(1.0 - float(p[it.label]), 4),
                round(float(p[int(suggested[row])]), 4),
                bool(flagged[row]),
            )
        )
    issues.sort(key=lambda i: -i.score)
    sig = signatures([it.path for it in items], progress.sub(0.95, 0.99))
    pairs = [
        Pair(
            items[a].path,
            items[b].path,
            round(c, 4),
            items[a].split,
            items[b].split,
            ds.classes[items[a].label],
            ds.classes[items[b].label],
            round(s, 4),
        )
        for a, b, c, s in copy_pairs(embedding(fs, len(items)), sig, threshold)
    ]
    progress(1.0)
    if issues and all(i.flagged for i in issues):
        notes.append(
            "every photo is flagged: the labels may be shuffled, or the classes not visual; check a few by eye"
        )
    within = [p for p in pairs if p.kind != "leak"]
    wrong = np.nan_to_num(probs, nan=0.0).argmax(1) != labels[labelled]
    points = embedding_map(x[labelled], [items[i] for i in labelled], ds.classes, (wrong, flagged))
    return CheckReport(issues, within, [p for p in pairs if p.kind == "leak"], threshold, notes, points, curve)


def embedding_map(
    x: np.ndarray, items: list, classes: list[str], marks: tuple[np.ndarray, np.ndarray], seed: int = 0
) -> list[MapPoint]:
    """The photos' features in two dimensions: PCA to at most 50, then t-SNE (scikit-learn); each point marked with
    `marks`: (the out-of-fold head got it wrong, confident learning suspects its label)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if len(x) < 5:
        return []
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    z = PCA(n_components=min(50, len(x) - 1, x.shape[1]), random_state=seed).fit_transform(z)
    xy = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed).fit_transform(z)
    return [
        MapPoint(float(a), float(b), it.path, classes[it.label], bool(w), bool(f))
        for (a, b), it, w, f in zip(xy, items, *marks)
    ]


def _stored(ds: Dataset):
    return paths.sub("checks") / f"{ds.origin or ds.fingerprint()}.json"


def save_check(ds: Dataset, report: CheckReport) -> None:
    """Keeps the report's leaks for `ds`, so the plans of this data warn about them (`stored_leaks`)."""
    paths.atomic_write(_stored(ds), json.dumps(report.to_dict()).encode())


def stored_leaks(ds: Dataset) -> list[dict] | None:
    """The leaks the last check of `ds` (these photos, these labels) found; None when it was never checked."""
    path = _stored(ds)
    return json.loads(path.read_text())["leaks"] if path.exists() else None


def exact_leaks(ds: Dataset) -> int:
    """Photos of val or test whose bytes are those of a training photo (the health report's digests)."""
    train = {ds.digests.get(it.path) for it in ds.train}
    return sum(ds.digests.get(it.path) in train for it in ds.items if it.split != "train")


# PLR0913: where the photos are, the backbone and its channels, who watches, the threshold
def check_dataset(  # noqa: PLR0913
    data: str,
    backbone: str,
    root: str | None = None,
    in_chans: int = 3,
    progress: Progress = QUIET,
    threshold: float = DUPLICATE_COSINE,
) -> CheckReport:
    """The Data page's "Check my photos": the dataset at `data` (as loaded, without decisions) checked, and its leaks
    kept for the plans that follow."""
    progress("load and check the photos", 0.0)
    ds = load_dataset(data, root=root)
    progress("load and check the photos", 1.0)
    step = progress.step("check the photos")
    step(0.0)
    report = check_photos(ds, backbone, in_chans=in_chans, progress=step, threshold=threshold)
    save_check(ds, report)
    step(1.0)
    return report
