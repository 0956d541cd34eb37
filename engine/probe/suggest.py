"""What to label next: a pool of unlabelled photos ranked for the person (`engine.probe.rank` holds the rule).

The head learns from every labelled photo of the dataset (train and val, with the person's decisions applied, the
photos they labelled from a pool before included) on the check's features; the pool's photos are ranked by its
margins spread over clusters. Each suggestion carries the head's guess and runner-up, so that labelling it is one
click. The answers go to the decisions file (`engine.data.decisions`: label or skip), never to the user's folders;
the next probe, plan and run use them and say how many.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.data.dataset import Dataset, load_dataset
from engine.data.decisions import POOL_ACTIONS, Decision, apply_decisions, read_decisions
from engine.data.pool import Pool, load_pool
from engine.data.sources import Skipped
from engine.probe.check import read_taps
from engine.probe.linear import fit_linear, photo_features
from engine.probe.rank import margins, rank_pool
from engine.progress import QUIET, QUIET_STEP, Progress, Step

RULE = (
    "a head fitted on your labelled photos gives each pool photo a margin (its likeliest class's probability minus "
    "the second's); the photos of smallest margin are grouped into as many clusters as photos asked for, and each "
    "cluster gives its photo of smallest margin, so that the first ones are the head's doubts and not all one doubt"
)


@dataclass(frozen=True)
class Suggestion:
    """One photo to label: the head's likeliest class and the runner-up, with their probabilities."""

    path: str
    guess: str
    guess_p: float
    second: str
    second_p: float

    @property
    def margin(self) -> float:
        return self.guess_p - self.second_p


@dataclass
class Suggestions:
    """The photos to label first, in order, and what the ranking stood on."""

    photos: list[Suggestion]
    ranked: int  # pool photos ranked
    labelled: int  # labelled photos the head learnt from (train and val)
    from_pool: int  # of them, labelled from a pool earlier
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rule: str = RULE

    def answered(self, decisions: dict[str, Decision]) -> tuple[int, int]:
        """(labelled, skipped) of these photos, by the person's `decisions` (path: decision)."""
        mine = [decisions[s.path].action for s in self.photos if s.path in decisions]
        return mine.count("label"), mine.count("skip")

    def to_dict(self) -> dict:
        return {
            "photos": [{**asdict(s), "margin": round(s.margin, 4)} for s in self.photos],
            "ranked": self.ranked,
            "labelled": self.labelled,
            "from_pool": self.from_pool,
            "skipped": [asdict(s) for s in self.skipped],
            "notes": self.notes,
            "rule": self.rule,
        }


# PLR0913: the dataset, its pool, the backbone and its channels, how many, the root and who watches
def suggest_photos(  # noqa: PLR0913
    ds: Dataset,
    pool_folder: str | Path,
    backbone: str,
    weights: str = "auto",
    in_chans: int = 3,
    n: int = 50,
    root: str | Path | None = None,
    progress: Step = QUIET_STEP,
) -> Suggestions:
    """The `n` photos of the pool to label first for `ds` (as loaded, without decisions), best first.

    Raises:
        DataError: The pool is missing, empty, or all decided already; a decisions file edited by hand is wrong.
    """
    decided = {d.path for d in read_decisions(ds, root) if d.action in POOL_ACTIONS}
    labelled_ds, _ = apply_decisions(ds, root)
    pool = load_pool(pool_folder, ds, decided, root)
    items = [it for it in labelled_ds.items if it.split != "test"]
    paths = [it.path for it in items] + pool.paths
    fs = photo_features(paths, backbone, weights, in_chans, progress=progress.sub(0.0, 0.9))
    x = fs.rows(np.arange(len(paths)), read_taps(fs))
    y = np.array([it.label for it in items])
    fit = fit_linear(x[: len(items)], y, x[len(items) :], np.zeros(0, dtype=int), len(ds.classes))
    order = rank_pool(x[len(items) :], margins(fit.probabilities), n)[:n]
    progress(1.0)
    return Suggestions(
        [_suggestion(pool, fit.probabilities, int(i), ds.classes) for i in order],
        len(pool.paths),
        len(items),
        len(decided & {it.path for it in items}),
        pool.skipped,
        pool.notes,
    )


def _suggestion(pool: Pool, probs: np.ndarray, i: int, classes: list[str]) -> Suggestion:
    first, second = np.argsort(probs[i])[::-1][:2]
    return Suggestion(pool.paths[i], classes[first], float(probs[i, first]), classes[second], float(probs[i, second]))


# PLR0913: the Data page's job: where the photos are, the pool, the backbone and its channels, how many, who watches
def suggest_for(  # noqa: PLR0913
    data: str,
    pool_folder: str,
    backbone: str,
    root: str | None = None,
    in_chans: int = 3,
    n: int = 50,
    progress: Progress = QUIET,
) -> Suggestions:
    """The Data page's "What to label next": the dataset at `data` (as loaded, without decisions) and its pool."""
    ds = load_dataset(data, root=root)
    step = progress.step("rank the pool")
    step(0.0)
    return suggest_photos(ds, pool_folder, backbone, in_chans=in_chans, n=n, root=root, progress=step)
