"""Datasets from folders, zips and CSV files: every image checked once, bad files skipped and listed, never a crash.

Accepted layouts:
  * ``root/<class>/*.jpg``: one folder per class (a stratified validation split is drawn with a seed);
  * ``root/{train,val[,test]}/<class>/*.jpg``: explicit splits (``valid``/``validation`` also accepted);
  * a ``.zip`` of either, extracted safely (no absolute paths, no ``..``, no links, bounded size and file count);
  * a ``.csv`` with a ``path,label`` header (optionally ``split``), paths relative to the CSV.
"""
from __future__ import annotations

import csv
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.archive import extract_zip
from engine.errors import DataError, UnreadableImage
from engine.imageio import IMAGE_EXTENSIONS, ImageMeta, check_image

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Item:
    path: str
    label: int
    split: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


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

    def split(self, name: str) -> list[Item]:
        return [it for it in self.items if it.split == name]

    @property
    def train(self) -> list[Item]:
        return self.split("train")

    @property
    def val(self) -> list[Item]:
        return self.split("val")

    def fingerprint(self) -> str:
        """A hash of every used file's path, size, mtime, label and split: changes when the data does."""
        h = hashlib.sha256("|".join(self.classes).encode())
        for it in sorted(self.items, key=lambda i: i.path):
            st = Path(it.path).stat()
            h.update(f"{it.path}:{st.st_size}:{st.st_mtime_ns}:{it.label}:{it.split}\n".encode())
        return h.hexdigest()[:16]


_CHECKED: dict[tuple[str, int, int], tuple[ImageMeta, str] | str] = {}


def _check(path: Path) -> tuple[ImageMeta, str] | str:
    """(meta, sha1) for a readable image or the reason it is not; memoised on (path, size, mtime)."""
    st = path.stat()
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


def _class_files(folder: Path, skipped: list[Skipped]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            skipped.append(Skipped(str(entry), f"{entry}: not inside a class folder; move it into one"))
            continue
        files = []
        for f in sorted(entry.rglob("*")):
            if f.is_dir() or f.name.startswith("."):
                continue
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
            else:
                skipped.append(Skipped(str(f), f"{f}: not an image (extension {f.suffix or 'none'}); skipped"))
        out[entry.name] = files
    return out


def _stratified_split(items: list[Item], fraction: float, seed: int) -> list[Item]:
    """Moves `fraction` of each class (at least one, when the class has two or more) from train to val."""
    rng = np.random.default_rng(seed)
    out = []
    for label in sorted({it.label for it in items}):
        members = [it for it in items if it.label == label]
        order = rng.permutation(len(members))
        n_val = 0 if len(members) < 2 else max(1, int(round(len(members) * fraction)))
        for rank, idx in enumerate(order):
            it = members[idx]
            out.append(Item(it.path, it.label, "val" if rank < n_val else "train"))
    return sorted(out, key=lambda i: (i.split, i.label, i.path))


def _from_csv(path: Path, skipped: list[Skipped]) -> list[tuple[Path, str, str]]:
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DataError(f"{path}: the CSV needs a header with 'path' and 'label' columns "
                            f"(found {reader.fieldnames})")
        for n, row in enumerate(reader, start=2):
            p = (path.parent / row["path"]).resolve()
            if not row["label"]:
                skipped.append(Skipped(str(p), f"{path} line {n}: empty label; skipped"))
            elif not p.is_file():
                skipped.append(Skipped(str(p), f"{path} line {n}: file {row['path']} does not exist; skipped"))
            else:
                rows.append((p, row["label"], SPLIT_NAMES.get((row.get("split") or "train").lower(), "train")))
    return rows


def load_dataset(path: str | Path, val: str | Path | None = None, val_fraction: float = 0.2, seed: int = 0,
                 workers: int = 4) -> Dataset:
    """Reads a dataset from a folder, zip or CSV, checks every image, and splits it.

    Args:
        path: Folder, ``.zip`` or ``.csv``.
        val: Optional separate validation folder (one subfolder per class, names matching the training classes).
        val_fraction: Share of each class held out when there is no validation split.
        seed: Seed of that split.
        workers: Threads used to check images.

    Raises:
        DataError: The path is missing, unsafe, or holds no usable class.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; give a folder with one subfolder per class, a .zip or a .csv")
    if path.suffix.lower() == ".zip":
        path = extract_zip(path)
    skipped: list[Skipped] = []
    rows: list[tuple[Path, str, str]] = []
    if path.is_file() and path.suffix.lower() == ".csv":
        rows = _from_csv(path, skipped)
    elif path.is_dir():
        subdirs = {d.name.lower(): d for d in path.iterdir() if d.is_dir()}
        splits = {SPLIT_NAMES[k]: d for k, d in subdirs.items() if k in SPLIT_NAMES}
        if "train" not in splits:
            splits = {"train": path}
        if val is not None:
            splits["val"] = Path(val).expanduser()
        for split, folder in splits.items():
            if not folder.is_dir():
                raise DataError(f"{folder} is not a folder; the {split} split needs one subfolder per class")
            for cls, files in _class_files(folder, skipped).items():
                rows += [(f, cls, split) for f in files]
    else:
        raise DataError(f"{path}: not a folder, .zip or .csv")

    with ThreadPoolExecutor(workers) as pool:
        checks = list(pool.map(_check, [r[0] for r in rows]))
    good = [(r, c) for r, c in zip(rows, checks) if not isinstance(c, str)]
    skipped += [Skipped(str(r[0]), c) for r, c in zip(rows, checks) if isinstance(c, str)]
    classes = sorted({r[1] for r, _ in good if r[2] == "train"})
    if not classes:
        raise DataError(f"{path}: no readable training images found; expected one subfolder per class with images")
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for (p, cls, split), _ in good:
        if cls not in index:
            skipped.append(Skipped(str(p), f"{p}: class '{cls}' has no training images; skipped"))
        else:
            items.append(Item(str(p), index[cls], split))
    ds = Dataset(str(path), classes, items, skipped, {str(r[0]): c[0] for r, c in good},
                 {str(r[0]): c[1] for r, c in good})
    if not ds.val and val_fraction > 0:
        ds.items = _stratified_split(ds.items, val_fraction, seed)
        ds.val_source = f"stratified split, {val_fraction:.0%} of each class, seed {seed}"
    return ds
