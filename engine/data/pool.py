"""A pool: a folder of unlabelled photos a person could label next (`engine.probe.suggest` ranks them).

Every file below the folder is checked as the training photos are (unreadable ones, and ones over the pixel limits,
skipped and listed), under the same containment rule: the folder and its files must lie inside the data root. Left
out, and said how many: photos that are photos of the dataset (the same bytes, in any split: labelling one again
would teach nothing, and one of test would leak), and photos the person already labelled or skipped. A pool larger
than `MAX_POOL` is sampled (fixed seed) and says so.

Refused in one line: a folder that is not one, one with no readable photo, and one whose every photo is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.dataset import Dataset, check_files
from engine.data.imageio import IMAGE_EXTENSIONS
from engine.data.sources import Rows, Skipped
from engine.errors import DataError

MAX_POOL = 20_000  # photos ranked at most (a random sample of a larger pool, fixed seed): minutes of features on CPU


@dataclass
class Pool:
    """The pool's photos to rank, what was skipped (unreadable, outside the root) and what was left out, in words."""

    root: str
    paths: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# PLR0913: the folder, the dataset it adds to, what is already decided, and the containment options
def load_pool(  # noqa: PLR0913
    path: str | Path,
    ds: Dataset,
    decided: set[str] | frozenset[str] = frozenset(),
    root: str | Path | None = None,
    allow_outside: bool = False,
    seed: int = 0,
) -> Pool:
    """The photos of `path` a person could label next for `ds`.

    Args:
        path: The pool's folder (photos anywhere below it).
        ds: The dataset the labels would add to.
        decided: Paths already labelled or skipped (the decisions file).
        root: Files must lie inside this folder (the server's data root); default: the pool's own folder.
        allow_outside: Read files outside the root too, asked for explicitly.
        seed: The seed of the sample of a pool larger than `MAX_POOL`.

    Raises:
        DataError: The folder is missing, outside the root, holds no readable photo, or nothing in it is left to label.
    """
    folder = Path(path).expanduser().absolute()  # the decisions file keeps full paths
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give a folder of unlabelled photos (the pool) to rank")
    rows = Rows(Path(root).expanduser().resolve() if root else folder.resolve(), allow_outside)
    if not rows.inside(folder, str(folder)):
        raise DataError(rows.skipped[-1].reason)
    files = []
    for f in rows.files_below(folder):
        if f.name.startswith(".") or not rows.inside(f, str(f)):
            continue
        if f.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(f)
        else:
            rows.skipped.append(Skipped(str(f), f"{f}: not an image (extension {f.suffix or 'none'}); skipped"))
    good = {str(f): digest for f, (_, digest) in check_files(files, rows.skipped).items()}
    if not good:
        raise DataError(
            f"{folder}: no readable photos ({len(rows.skipped)} file(s) skipped); put the unlabelled photos you could "
            f"label in it"
        )
    pool = Pool(str(folder), [], rows.skipped)
    pool.paths = _left(pool, good, ds, decided)
    _sample(pool, seed)
    return pool


def _left(pool: Pool, good: dict[str, str], ds: Dataset, decided: set[str] | frozenset[str]) -> list[str]:
    """The readable photos (path: digest) that are not the dataset's photos nor decided already, saying how many
    were left out; refused when none is left."""
    known = set(ds.digests.values())
    same = [p for p, digest in good.items() if digest in known]
    done = [p for p in good if p in decided and good[p] not in known]
    if same:
        pool.notes.append(
            f"{len(same)} photo(s) of the pool are photos of your dataset (the same bytes); they were left out."
        )
    if done:
        pool.notes.append(f"{len(done)} photo(s) of the pool you labelled or skipped before were left out.")
    left = [p for p in good if p not in decided and good[p] not in known]
    if not left:
        raise DataError(
            f"{pool.root}: none of its {len(good)} readable photo(s) is left to label ({len(same)} are photos of your "
            f"dataset, {len(done)} you labelled or skipped); add new photos to the pool"
        )
    return left


def _sample(pool: Pool, seed: int) -> None:
    """Keeps a random `MAX_POOL` of a larger pool (fixed seed), and says so."""
    n = len(pool.paths)
    if n <= MAX_POOL:
        return
    keep = np.random.default_rng(seed).choice(n, MAX_POOL, replace=False)
    pool.paths = [pool.paths[i] for i in sorted(keep)]
    pool.notes.append(f"The pool holds {n:,} photos; a random {MAX_POOL:,} of them (seed {seed}) are ranked.")
