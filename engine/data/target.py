"""Photos from where the model will be used (the target domain): unlabelled, a few labelled, or both, in one folder.

Photos directly in the folder (or in one subfolder of any name, or in several beside photos of its own) are
unlabelled. Photos in subfolders named after the training classes are labelled target photos: they
become the target validation set, which then chooses the adaptation instead of criteria that need no labels. Every
file is checked as the training photos are (unreadable ones skipped and listed), under the same containment rule.

What is refused, in one line each: a folder with no readable image; subfolders that look like classes (beside class
subfolders, or two or more holding every photo) but are not classes of the training data; photos that are the
training photos themselves. A folder much larger than the training photos is
sampled (fixed seed) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.dataset import Dataset, Item, check_files
from engine.data.imageio import IMAGE_EXTENSIONS, ImageMeta
from engine.data.sources import Rows, Skipped
from engine.errors import DataError

MAX_TARGET_RATIO = 2  # unlabelled target photos used: at most this many times the training photos (sampled),
MIN_TARGET_CAP = 500  # and never fewer than this many when there are more
SAME_AS_SOURCE = 0.5  # refused when at least this share of the target photos are training photos


@dataclass
class TargetSet:
    """The target photos a run adapts to: unlabelled paths, labelled items (the target validation set), what was
    skipped, and what was done to them in words."""

    root: str
    unlabelled: list[str]
    labelled: list[Item] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, ImageMeta] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # SHA-1 of each file's bytes
    found: int = 0  # readable photos in the folder before sampling

    @property
    def paths(self) -> list[str]:
        """Every target photo used (unlabelled, then labelled): what adaptation reads without labels."""
        return self.unlabelled + [it.path for it in self.labelled]

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for p in sorted(self.paths):
            st = Path(p).stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        for it in self.labelled:
            h.update(f"{it.path}={it.label}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:16]


def _rows(folder: Path, classes: list[str], rows: Rows) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(unlabelled files, (file, class) of labelled ones) below `folder`, listed as the dataset loader lists a class
    folder (a name the system cannot read is skipped and listed, the rest is read)."""
    subdirs = sorted(d for d in folder.iterdir() if not d.name.startswith(".") and _is_dir(d))
    named = [d for d in subdirs if d.name in classes]
    others = [d for d in subdirs if d.name not in classes]
    files = [f for f in rows.files_below(folder) if not f.name.startswith(".") and rows.inside(f, str(f))]
    loose = [f for f in files if f.parent == folder]
    if others and (named or (not loose and len(others) >= 2)):
        raise DataError(
            f"{folder}: the subfolders {', '.join(d.name for d in others[:5])} look like classes, and they are not "
            f"classes of the training data ({', '.join(classes[:8])}{'…' if len(classes) > 8 else ''}); put "
            f"unlabelled photos directly in the folder, and labelled ones in subfolders named after your classes"
        )
    unlabelled, labelled = [], []
    for f in files:
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            rows.skipped.append(Skipped(str(f), f"{f}: not an image (extension {f.suffix or 'none'}); skipped"))
            continue
        top = f.relative_to(folder).parts[0]
        if named and top in classes and len(f.relative_to(folder).parts) > 1:
            labelled.append((f, top))
        else:
            unlabelled.append(f)
    return unlabelled, labelled


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name longer than the system allows: not a folder this can read
        return False


def load_target(
    path: str | Path, ds: Dataset, root: str | Path | None = None, allow_outside: bool = False, seed: int = 0
) -> TargetSet:
    """The target photos in `path`, checked against the training data `ds`.

    Raises:
        DataError: the folder is missing or holds no readable image, its class subfolders are not classes of `ds`,
            or its photos are the training photos.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give a folder of photos from where the model will be used")
    rows = Rows(Path(root).expanduser().resolve() if root else folder.resolve(), allow_outside)
    if not rows.inside(folder, str(folder)):
        raise DataError(rows.skipped[-1].reason)
    unlabelled, labelled = _rows(folder, ds.classes, rows)
    files = unlabelled + [f for f, _ in labelled]
    good = check_files(files, rows.skipped)
    if not good:
        raise DataError(
            f"{folder}: no readable photos ({len(rows.skipped)} file(s) skipped); put photos from where the model "
            f"will be used in it (any class, no labels needed)"
        )
    target = TargetSet(str(folder), [], skipped=rows.skipped, found=len(good))
    _drop_training_photos(target, good, ds)
    target.unlabelled = [str(f) for f in unlabelled if f in good]
    target.labelled = [Item(str(f), ds.classes.index(c), "target") for f, c in labelled if f in good]
    target.meta = {str(f): c[0] for f, c in good.items()}
    target.digests = {str(f): c[1] for f, c in good.items()}
    _sample(target, len(ds.train), seed)
    return target


def _drop_training_photos(target: TargetSet, good: dict, ds: Dataset) -> None:
    """Removes target photos identical to a photo of the training data (byte for byte); refuses a target that is
    mostly the training photos."""
    known = set(ds.digests.values())
    same = [f for f, (_, digest) in good.items() if digest in known]
    if len(same) >= SAME_AS_SOURCE * len(good):
        raise DataError(
            f"{target.root}: {len(same)} of its {len(good)} photos are photos of the training data; give photos from "
            f"where the model will be used (another camera, place or style), not the training photos"
        )
    for f in same:
        del good[f]
    if same:
        target.notes.append(f"{len(same)} target photo(s) identical to training photos were left out.")


def _sample(target: TargetSet, n_train: int, seed: int) -> None:
    """Keeps at most `MAX_TARGET_RATIO` times the training photos of the unlabelled ones (fixed seed), and says so."""
    cap = max(MIN_TARGET_CAP, MAX_TARGET_RATIO * n_train)
    n = len(target.unlabelled)
    if n <= cap:
        return
    keep = np.random.default_rng(seed).choice(n, cap, replace=False)
    target.unlabelled = [target.unlabelled[i] for i in sorted(keep)]
    target.notes.append(
        f"The folder holds {n:,} unlabelled photos, far more than the {n_train:,} training photos; a random "
        f"{cap:,} of them (seed {seed}) are used."
    )
