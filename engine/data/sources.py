"""Where a dataset's files come from (class folders, split folders, a CSV, a zip) under one containment rule.

Containment: a file is used only when its real path (symbolic links resolved) lies inside the root: the dataset's own
folder on the command line, the data root on the server. Anything else is skipped and listed with the reason, unless
outside paths are allowed explicitly (`--allow-outside-root`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.imageio import IMAGE_EXTENSIONS
from engine.errors import DataError

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Rows:
    """(file, class name, split) rows read from a source, and what was skipped on the way."""

    root: Path
    allow_outside: bool = False
    rows: list[tuple[Path, str, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def inside(self, path: Path, shown: str) -> bool:
        """True when `path` may be read; else it is listed as skipped, with the reason."""
        if self.allow_outside:
            return True
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as e:  # a link loop, a dangling link
            self.skipped.append(Skipped(str(path), f"{shown}: cannot be resolved ({e}); skipped"))
            return False
        if real.is_relative_to(self.root):
            return True
        self.skipped.append(
            Skipped(
                str(path),
                f"{shown}: its real path {real} is outside {self.root} (a symbolic "
                f"link or a path leading elsewhere); skipped. Copy the file into the "
                f"dataset, or allow outside paths explicitly (--allow-outside-root)",
            )
        )
        return False

    def add_folder(self, folder: Path, split: str) -> None:
        """Class subfolders of `folder`: every image below each is a row of that class."""
        if not self.inside(folder, str(folder)) or not folder.is_dir():
            raise DataError(
                f"{folder} is not a folder inside {self.root}; the {split} split needs one subfolder per class"
            )
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or not self.inside(entry, str(entry)):
                continue
            if entry.is_file():
                self.skipped.append(Skipped(str(entry), f"{entry}: not inside a class folder; move it into one"))
                continue
            for f in sorted(entry.rglob("*")):
                if f.name.startswith(".") or not self.inside(f, str(f)) or f.is_dir():
                    continue
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    self.rows.append((f, entry.name, split))
                else:
                    self.skipped.append(Skipped(str(f), f"{f}: not an image (extension {f.suffix or 'none'}); skipped"))

    def add_csv(self, path: Path) -> None:
        """A CSV of path,label[,split]; paths relative to the CSV's folder. Split values must be train/val/test."""
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: Excel's "CSV UTF-8" has a BOM
                lines = list(csv.DictReader(f))
                fieldnames = list(lines[0].keys()) if lines else None
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8 (in Excel: 'CSV UTF-8')"
            ) from None
        except csv.Error as e:
            raise DataError(f"{path}: not a readable CSV ({e})") from None
        if not fieldnames or not {"path", "label"} <= {(k or "").strip() for k in fieldnames}:
            raise DataError(f"{path}: the CSV needs a header with 'path' and 'label' columns (found {fieldnames})")
        lines = [
            {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
            for row in lines
        ]
        bad = sorted(
            {row.get("split", "") for row in lines if row.get("split", "") and row["split"].lower() not in SPLIT_NAMES}
        )
        if bad:
            raise DataError(
                f"{path}: the split column holds {', '.join(repr(b) for b in bad[:5])}; use train, val or "
                f"test (or leave it empty for train)"
            )
        for n, row in enumerate(lines, start=2):
            shown = f"{path} line {n}"
            p = path.parent / row["path"]
            if not row["label"]:
                self.skipped.append(Skipped(str(p), f"{shown}: empty label; skipped"))
            elif not row["path"]:
                self.skipped.append(Skipped(str(p), f"{shown}: empty path; skipped"))
            elif self.inside(p, f"{shown} ({row['path']})"):
                if not p.is_file():
                    self.skipped.append(Skipped(str(p), f"{shown}: file {row['path']} does not exist; skipped"))
                else:
                    self.rows.append((p.resolve(), row["label"], SPLIT_NAMES[(row.get("split") or "train").lower()]))


def read_source(path: Path, val: Path | None, test: Path | None, root: Path | None, allow_outside: bool) -> Rows:
    """Rows of a folder or CSV (a zip is extracted before), contained in `root` (default: the dataset's folder)."""
    base = (path.parent if path.is_file() else path).resolve()
    src = Rows((root or base).resolve(), allow_outside)
    if path.is_file() and path.suffix.lower() == ".csv":
        src.add_csv(path)
        return src
    if not path.is_dir():
        raise DataError(f"{path}: not a folder, .zip or .csv")
    subdirs = {d.name.lower(): d for d in path.iterdir() if d.is_dir()}
    splits = {SPLIT_NAMES[k]: d for k, d in subdirs.items() if k in SPLIT_NAMES}
    if "train" not in splits:
        splits = {"train": path}
    for split, extra in (("val", val), ("test", test)):
        if extra is not None:
            splits[split] = Path(extra).expanduser()
    for split, folder in splits.items():
        if folder.parent.resolve() != base and folder.resolve() != base:  # a separate folder given by the user
            own = Rows(root.resolve() if root else folder.resolve(), allow_outside)
            own.add_folder(folder, split)
            src.rows += own.rows
            src.skipped += own.skipped
        else:
            src.add_folder(folder, split)
    return src
