"""Datasets from folders, zips and CSV files: every image checked once, bad files skipped and listed, never a crash.

Accepted layouts:
  * ``root/<class>/*.jpg``: one folder per class (a stratified validation split is drawn with a seed);
  * ``root/{train,val[,test]}/<class>/*.jpg``: explicit splits (``valid``/``validation`` also accepted);
  * without a test split, a stratified share of every class is held out as one (fixed seed), so that the accuracy a
    run reports comes from photos nothing was chosen on; when the data is too small for that, nothing is held out and
    the reported accuracy is a cross-validated estimate instead (`Dataset.test_source` says which);
  * a ``.zip`` of either, extracted safely (no absolute paths, no ``..``, no links, bounded size and file count);
  * a ``.csv`` with a ``path,label`` header (optionally ``split``), paths relative to the CSV.
"""

from __future__ import annotations

import hashlib
from collections import Counter
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.archive import extract_zip
from engine.data.imageio import ImageMeta, check_image
from engine.data.sources import Skipped, read_source
from engine.errors import DataError, UnreadableImage

TEST_FRACTION = 0.2  # share of every class held out as the test split when the data has none
MIN_PER_CLASS_FOR_TEST = 10  # below this many labelled images in some class, no test split is carved


@dataclass(frozen=True)
class Item:
    path: str
    label: int
    split: str


@dataclass
class Dataset:
    """A labelled image dataset, split, with the result of checking every file."""

    root: str
    classes: list[str]
    items: list[Item]
    skipped: list[Skipped] = field(default_factory=list)
    meta: dict[str, ImageMeta] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    val_source: str = "folder"
    test_source: str = "none"
    notes: list[str] = field(default_factory=list)  # what was done to it before use (a person's decisions applied)
    origin: str = ""  # the fingerprint of the photos as loaded, before the decisions changed labels (else "")

    def split(self, name: str) -> list[Item]:
        return [it for it in self.items if it.split == name]

    @property
    def train(self) -> list[Item]:
        return self.split("train")

    @property
    def val(self) -> list[Item]:
        return self.split("val")

    @property
    def test(self) -> list[Item]:
        return self.split("test")

    @property
    def has_test(self) -> bool:
        return any(it.split == "test" for it in self.items)

    def fingerprint(self) -> str:
        """A hash of every used file's path, size, mtime, label and split: changes when the data does."""
        h = hashlib.sha256("|".join(self.classes).encode("utf-8", "surrogateescape"))
        for it in sorted(self.items, key=lambda i: i.path):
            st = Path(it.path).stat()
            h.update(os.fsencode(it.path) + f":{st.st_size}:{st.st_mtime_ns}:{it.label}:{it.split}\n".encode())
        return h.hexdigest()[:16]


_CHECKED: dict[tuple[str, int, int], tuple[ImageMeta, str] | str] = {}


def check_file(path: Path) -> tuple[ImageMeta, str] | str:
    """(meta, sha1) for a readable image or the reason it is not; memoised on (path, size, mtime)."""
    try:
        st = path.stat()
    except OSError as e:  # a name longer than the system allows, a file gone since it was listed
        return f"{path}: cannot be read ({e.strerror or e}); skipped"
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CHECKED:
        try:
            meta, data = check_image(path)
            _CHECKED[key] = (meta, hashlib.sha1(data).hexdigest())
        except UnreadableImage as e:
            _CHECKED[key] = str(e)
        except OSError as e:
            _CHECKED[key] = f"{path}: cannot be read ({e})"
    return _CHECKED[key]


def check_files(files: list[Path], skipped: list[Skipped], workers: int = 4) -> dict[Path, tuple[ImageMeta, str]]:
    """(meta, sha1) of each readable image of `files`, checked on `workers` threads (`check_file`); each of the others
    is appended to `skipped` with its reason."""
    with ThreadPoolExecutor(workers) as pool:
        checks = dict(zip(files, pool.map(check_file, files)))
    skipped += [Skipped(str(f), c) for f, c in checks.items() if isinstance(c, str)]
    return {f: c for f, c in checks.items() if not isinstance(c, str)}


def _stratified_split(items: list[Item], fraction: float, seed: int, to: str = "val") -> list[Item]:
    """Moves `fraction` of each class's train items (at least one, when the class has two or more) to split `to`."""
    rng = np.random.default_rng(seed if to == "val" else seed + 7_919)
    out = [it for it in items if it.split != "train"]
    pool = [it for it in items if it.split == "train"]
    for label in sorted({it.label for it in pool}):
        members = sorted((it for it in pool if it.label == label), key=lambda i: i.path)
        order = rng.permutation(len(members))
        n_out = 0 if len(members) < 2 else max(1, int(round(len(members) * fraction)))
        for rank, idx in enumerate(order):
            it = members[idx]
            out.append(Item(it.path, it.label, to if rank < n_out else "train"))
    return sorted(out, key=lambda i: (i.split, i.label, i.path))


def _carve_test(ds: "Dataset", fraction: float, seed: int) -> None:
    """Holds out a stratified test split from the training images when the data has none and is large enough."""
    if ds.has_test:
        ds.test_source = "folder"
        return
    counts = np.bincount([it.label for it in ds.items if it.split == "train"], minlength=len(ds.classes))
    if fraction <= 0:
        ds.test_source = "none: no test split was asked for; the accuracy reported is a cross-validated estimate"
    elif counts.min() < MIN_PER_CLASS_FOR_TEST:
        small = ds.classes[int(counts.argmin())]
        ds.test_source = (
            f"none: class '{small}' has only {counts.min()} training image(s), too few to hold any out "
            f"(at least {MIN_PER_CLASS_FOR_TEST} per class); the accuracy reported is a cross-validated "
            f"estimate"
        )
    else:
        ds.items = _stratified_split(ds.items, fraction, seed, to="test")
        ds.test_source = (
            f"held out: {len(ds.test)} images, {fraction:.0%} of each class (seed {seed}); "
            f"never used for training or choosing"
        )


def _absolute(path: str | Path | None) -> Path | None:
    """A folder the user named, absolute (not resolved: a link keeps its name), so that a run's paths and the data's
    fingerprint hold from any working folder."""
    return Path(path).expanduser().absolute() if path else None


# PLR0913: the public loader's keyword options (splits, seed, workers)
def load_dataset(  # noqa: PLR0913
    path: str | Path,
    val: str | Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    workers: int = 4,
    test: str | Path | None = None,
    test_fraction: float = TEST_FRACTION,
    root: str | Path | None = None,
    allow_outside: bool = False,
) -> Dataset:
    """Reads a dataset from a folder, zip or CSV, checks every image, and splits it into train, val and test.

    Args:
        path: Folder, ``.zip`` or ``.csv``.
        val: Optional separate validation folder (one subfolder per class, names matching the training classes).
        val_fraction: Share of each class held out for validation when there is no validation split.
        seed: Seed of the held-out splits.
        workers: Threads used to check images.
        test: Optional separate test folder.
        test_fraction: Share of each class held out as the test split when there is none (0: never).
        root: Files must lie inside this folder (the server's data root); default: the dataset's own folder.
        allow_outside: Use files outside the root too (symbolic links, CSV paths), asked for explicitly.

    Raises:
        DataError: The path is missing, unsafe, or holds no usable class.
    """
    try:
        path = Path(path).expanduser().absolute()  # as `_absolute`; "" stays the working folder, as before
        exists = path.exists()
    except (RuntimeError, OSError, ValueError) as e:  # ~nosuchuser, a name too long, a null byte, a link loop
        why = getattr(e, "strerror", None) or e
        raise DataError(f"{str(path)[:80]}: cannot be opened ({why}); give a folder that exists") from None
    if not exists:
        raise DataError(f"{path} does not exist; give a folder with one subfolder per class, a .zip or a .csv")
    if path.suffix.lower() == ".zip":
        path = extract_zip(path)
    src = read_source(
        path,
        _absolute(val),
        _absolute(test),
        _absolute(root),
        allow_outside,
    )
    rows, skipped = src.rows, src.skipped
    with ThreadPoolExecutor(workers) as pool:
        checks = list(pool.map(check_file, [r[0] for r in rows]))
    good = [(r, c) for r, c in zip(rows, checks) if not isinstance(c, str)]
    skipped += [Skipped(str(r[0]), c) for r, c in zip(rows, checks) if isinstance(c, str)]
    classes = sorted({r[1] for r, _ in good if r[2] == "train"})
    if not classes:
        raise DataError(f"{path}: no readable training images found; " + src.why_empty())
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for (p, cls, split), _ in good:
        if cls not in index:
            skipped.append(Skipped(str(p), f"{p}: class '{cls}' has no training images; skipped"))
        else:
            items.append(Item(str(p), index[cls], split))
    ds = Dataset(
        str(path), classes, items, skipped, {str(r[0]): c[0] for r, c in good}, {str(r[0]): c[1] for r, c in good}
    )
    _carve_test(ds, test_fraction, seed)
    if not ds.val and val_fraction > 0:
        ds.items = _stratified_split(ds.items, val_fraction, seed)
        ds.val_source = f"stratified split, {val_fraction:.0%} of each class, seed {seed}"
    return ds


@dataclass(frozen=True)
class SplitCounts:
    """Image files per split of a dataset folder, and the classes of its train split."""

    classes: int
    train: int
    val: int
    test: int


def split_counts(root: str | Path) -> SplitCounts:
    """Image files per split of a dataset folder, and the classes of its train split, as `load_dataset` would list
    them (`read_source`: the same split folders, containment and skipped files), with nothing decoded: what a page
    says about a folder before loading it."""
    rows = read_source(Path(root), None, None, None, False).rows
    per_split = Counter(split for _, _, split in rows)
    classes = {label for _, label, split in rows if split == "train"}
    return SplitCounts(len(classes), per_split["train"], per_split["val"], per_split["test"])
