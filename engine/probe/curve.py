"""How many more photos: a learning curve from the cached features.

A linear head on the check's features (the last three stages and the final features) is cross-validated
(`CURVE_FOLDS` stratified folds, repeated `CURVE_REPEATS` times with other shuffles) on a growing share of each
training fold (`FRACTIONS`, the same photos at every share plus new ones), and scored on the held-out fold: accuracy
against the number of training photos, overall and per class. A power law `accuracy(n) = a - b * n ** -c` (the usual
shape of learning curves; Hestness et al. 2017) is fitted to the mean of the folds and to each fold alone: the spread
of the folds' predictions is the interval. The sentence names the weakest class and how many more photos of it the
same law, fitted to that class, says would bring it to the others' level; a class the law says would need more than
`FAR` times its photos is said to need more than photos (that far out, the law is a guess).

The repeats were chosen on val, never test: a curve fitted on a random quarter or half of train/ (five draws of
each, both shared sets), read at all of train/, against a head on all of train/ scored on val/. With one pass the
largest error of a (set, share) was 3.5-12.4 points, with three 2.3-6.9 (bench/RESULTS.md, "How many more photos").
Three times the fits: 7 s became 19 s on 800 photos; above `REPEAT_MAX` photos, where a fold holds hundreds of
photos and a fit costs the most, the folds are drawn once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold

from engine.probe.linear import fit_linear

FRACTIONS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CURVE_FOLDS = 3
CURVE_REPEATS = 3  # the folds drawn again, shuffled otherwise: one pass's curve moved 2-12 points with the draw
REPEAT_MAX = 2000  # above this many photos one pass: its folds are large enough to be steady, and its fits the dearest
MIN_PHOTOS = 30  # fewer labelled photos than this: no curve (a point of 3 photos says nothing)
FAR = 5  # a class needing more than this many times its photos is said to level off (the law is a guess that far)


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(np.asarray(n, dtype=np.float64), -c)


def fit_power_law(n: np.ndarray, accuracy: np.ndarray) -> tuple[float, float, float] | None:
    """(a, b, c) of the power law closest to the points (least squares, a at most 1, c between 0.05 and 2); None
    when it does not converge or there are fewer than 3 points."""
    from scipy.optimize import curve_fit

    if len(n) < 3:
        return None
    try:
        (a, b, c), _ = curve_fit(
            power_law,
            np.asarray(n, np.float64),
            np.asarray(accuracy, np.float64),
            p0=(min(1.0, float(np.max(accuracy)) + 0.05), 1.0, 0.5),
            bounds=((0.0, 0.0, 0.05), (1.0, 1e4, 2.0)),
            maxfev=20_000,
        )
    except (RuntimeError, ValueError):
        return None
    return float(a), float(b), float(c)


def photos_to_reach(law: tuple[float, float, float], target: float) -> float | None:
    """Training photos the law needs to reach `target`; None when it levels off below it."""
    a, b, c = law
    if target >= a or b <= 0:
        return None
    return float((b / (a - target)) ** (1.0 / c))


@dataclass(frozen=True)
class LearningCurve:
    """Accuracy against training photos, cross-validated, with the law fitted to it and what it says in words."""

    photos: list[int]  # training photos at each share (mean over folds)
    accuracy: list[float]  # mean over folds
    low: list[float]  # the lowest fold
    high: list[float]
    per_class: dict[str, list[float]]  # each class's accuracy at each share
    class_photos: dict[str, int]  # labelled photos of each class now
    n_now: int  # labelled photos now
    law: tuple[float, float, float] | None = None
    fold_laws: list[tuple[float, float, float]] = field(default_factory=list)

    def expected(self, n: float) -> tuple[float, float, float] | None:
        """(accuracy, low, high) the law expects with `n` training photos; None without a law."""
        if self.law is None:
            return None
        found = [float(power_law(np.array([n]), *law)[0]) for law in self.fold_laws] or [0.0]
        return float(power_law(np.array([n]), *self.law)[0]), min(found), max(found)

    @cached_property
    def sentence(self) -> str:
        """What the curve says in words: the accuracy now and with every photo, and the class that lags (the lagging
        class's own law fitted once, on first reading)."""
        last = {c: a[-1] for c, a in self.per_class.items()}
        weakest = min(last, key=last.get)
        said = f"A linear head on these features reaches {self.accuracy[-1]:.0%} with {self.photos[-1]} photos"
        expected = self.expected(self.n_now)
        if expected is not None:
            said += (
                f"; with all {self.n_now} about {expected[0]:.0%} ({expected[1]:.0%}–{expected[2]:.0%} across folds)"
            )
        others = float(np.mean([a for c, a in last.items() if c != weakest]))
        share = self.class_photos[weakest] / self.n_now  # the class's photos in each training share
        law = fit_power_law(np.array(self.photos) * share, np.nan_to_num(self.per_class[weakest]))
        need = photos_to_reach(law, min(others, 0.99)) if law else None
        if need is not None and need > FAR * self.class_photos[weakest]:
            need = None  # so far out that the law is a guess
        if last[weakest] >= others - 0.02:
            said += ". No class lags behind the others."
        elif need is None:
            said += (
                f". The weakest class, {weakest} ({last[weakest]:.0%} with {self.class_photos[weakest]} photos), "
                f"gains too slowly to reach the others' {others:.0%} with fewer than {FAR} times its photos: more "
                "photos alone may not fix it; check its labels and what it is confused with."
            )
        else:
            more = max(1, int(np.ceil(need - self.class_photos[weakest])))
            said += (
                f". About {more} more photos of {weakest} (now {self.class_photos[weakest]}, {last[weakest]:.0%}) "
                f"would bring it to the others' {others:.0%}."
            )
        return said

    def drawn(self, points: int = 40) -> tuple[list[float], list[float]]:
        """The law's line from the fewest photos measured to twice the photos now, as the chart draws it."""
        if self.law is None:
            return [], []
        n = np.geomspace(self.photos[0], 2 * self.n_now, points)
        return n.tolist(), power_law(n, *self.law).tolist()

    def to_dict(self) -> dict:
        return {**asdict(self), "sentence": self.sentence}


def passes(n_photos: int) -> int:
    """How many times the folds are drawn for `n_photos` labelled photos (one pass above `REPEAT_MAX`)."""
    return CURVE_REPEATS if n_photos <= REPEAT_MAX else 1


def _points(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photos, accuracy, per-class accuracy) of shape (folds, shares), (folds, shares), (folds, shares, classes);
    folds of every repeat (one pass above `REPEAT_MAX` photos)."""
    k = int(min(CURVE_FOLDS, np.bincount(y)[np.bincount(y) > 0].min()))
    rng = np.random.default_rng(seed)
    photos, acc, per = [], [], []
    for train, held in RepeatedStratifiedKFold(n_splits=k, n_repeats=passes(len(y)), random_state=seed).split(x, y):
        order = train[rng.permutation(len(train))]
        row_n, row_acc, row_per = [], [], []
        for share in FRACTIONS:
            picked = _stratified_prefix(order, y, share)
            fit = fit_linear(x[picked], y[picked], x[held], y[held], n_classes)
            row_n.append(len(picked))
            row_acc.append(fit.accuracy)
            row_per.append(
                [
                    (fit.predictions[y[held] == c] == c).mean() if (y[held] == c).any() else np.nan
                    for c in range(n_classes)
                ]
            )
        photos.append(row_n)
        acc.append(row_acc)
        per.append(row_per)
    return np.array(photos), np.array(acc), np.array(per)


def _stratified_prefix(order: np.ndarray, y: np.ndarray, share: float) -> np.ndarray:
    """The first `share` of each class's photos in `order` (at least one of each), so that shares are nested."""
    keep = []
    for c in np.unique(y[order]):
        mine = order[y[order] == c]
        keep.append(mine[: max(1, round(share * len(mine)))])
    return np.concatenate(keep)


def learning_curve(x: np.ndarray, y: np.ndarray, classes: list[str], seed: int = 0) -> LearningCurve | None:
    """The learning curve of a linear head on features `x` with labels `y`; None with fewer than `MIN_PHOTOS`
    photos or a class of fewer than 2."""
    counts = np.bincount(y, minlength=len(classes))
    if len(y) < MIN_PHOTOS or (counts[counts > 0] < 2).any() or (counts > 0).sum() < 2:
        return None
    photos, acc, per = _points(x, y, len(classes), seed)
    n, mean = photos.mean(0), acc.mean(0)
    law = fit_power_law(n, mean)
    fold_laws = [f for f in (fit_power_law(p, a) for p, a in zip(photos, acc)) if f is not None]
    curve = LearningCurve(
        [int(round(v)) for v in n],
        [float(v) for v in mean],
        [float(v) for v in acc.min(0)],
        [float(v) for v in acc.max(0)],
        {c: [float(v) for v in np.nanmean(per[:, :, i], 0)] for i, c in enumerate(classes) if counts[i]},
        {c: int(counts[i]) for i, c in enumerate(classes) if counts[i]},
        int(len(y)),
        law,
        fold_laws,
    )
    return curve
