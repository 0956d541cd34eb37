"""Where a dataset's files come from (class folders, split folders, a CSV, a zip) under one containment rule.

Containment: a file is used only when its real path (symbolic links resolved) lies inside the root: the dataset's own
folder on the command line, the data root on the server. Anything else is skipped and listed with the reason, unless
outside paths are allowed explicitly (`--allow-outside-root`).
"""

from __future__ import annotations

import csv
import os
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
    outside: list[str] = field(default_factory=list)  # files refused for lying outside the root

    def why_empty(self) -> str:
        """Why no usable row was found, in one line with the fix."""
        if self.outside:
            return (
                f"{len(self.outside):,} file(s) point outside {self.root} (the first: {self.outside[0]}); move the "
                f"data (or the CSV) so its files are inside, or allow outside paths explicitly (--allow-outside-root)"
            )
        if self.skipped:
            return f"{len(self.skipped):,} file(s) were skipped, the first because {self.skipped[0].reason}"
        return "expected one subfolder per class with images"

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
        self.outside.append(str(path))
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
        entries = sorted(folder.iterdir())
        classes = {_real(e) for e in entries if e.is_dir() and not e.name.startswith(".")} - {None}
        for entry in entries:
            if entry.name.startswith(".") or not self.inside(entry, str(entry)):
                continue
            if entry.is_file():
                self.skipped.append(Skipped(str(entry), f"{entry}: not inside a class folder; move it into one"))
                continue
            for f in self.files_below(entry, others=classes - {_real(entry)}):
                if f.name.startswith(".") or not self.inside(f, str(f)):
                    continue
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    self.rows.append((f, entry.name, split))
                else:
                    self.skipped.append(Skipped(str(f), f"{f}: not an image (extension {f.suffix or 'none'}); skipped"))

    def files_below(self, folder: Path, others: set[Path] = frozenset()) -> list[Path]:
        """Every file below `folder`, sorted; a subfolder that cannot be listed (a path longer than the system allows,
        no permission) is skipped and listed, and the rest is read. A linked subfolder that leads into one of
        `others` (the other class folders) is skipped and listed: its photos belong to that class, not this one."""

        def unlisted(e: OSError) -> None:
            self.skipped.append(Skipped(str(e.filename), f"{e.filename}: cannot be listed ({e.strerror}); skipped"))

        out: list[Path] = []
        seen: set[Path] = set()
        tops = [folder]
        while tops:  # a linked subfolder is walked once, as its own top, when it lies inside the root
            top = tops.pop()
            try:
                real = top.resolve()
            except (OSError, RuntimeError):
                continue
            if real in seen:
                continue
            if any(real.is_relative_to(o) for o in others):
                self.skipped.append(
                    Skipped(str(top), f"{top}: a link into another class folder ({real}); its photos keep that class")
                )
                continue
            seen.add(real)
            for at, dirs, files in os.walk(top, onerror=unlisted):
                linked = [d for d in dirs if _is_link(Path(at) / d)]
                tops += [Path(at) / d for d in linked if not d.startswith(".") and self.inside(Path(at) / d, d)]
                dirs[:] = [d for d in dirs if not d.startswith(".") and d not in linked]
                out.extend(Path(at) / f for f in files)
        return sorted(out)

    def _unique(self, path: Path, lines: list[dict]) -> list[tuple[int, dict]]:
        """(line number, row) of the CSV's rows, each file once, before any file is read: a row that repeats another
        is collapsed; a file listed under two splits stays in the first of train, val, test (a leak otherwise) and a
        file listed under two labels keeps its first one; each is said once, with how many rows."""
        order = {"train": 0, "val": 1, "test": 2}
        first: dict[str, tuple[int, dict]] = {}
        repeats = 0
        leaks = 0
        relabels = 0
        for n, row in enumerate(lines, start=2):
            key = os.path.normpath(row["path"]) if row.get("path") else f"<empty {n}>"
            seen = first.get(key)
            if seen is None:
                first[key] = (n, row)
                continue
            split = SPLIT_NAMES.get((row.get("split") or "train").lower(), "train")
            old = SPLIT_NAMES.get((seen[1].get("split") or "train").lower(), "train")
            if seen[1]["label"] != row["label"]:
                relabels += 1
            elif split != old:
                leaks += 1
                if order[split] < order[old]:
                    first[key] = (seen[0], row)
            else:
                repeats += 1
        for count, what in (
            (repeats, "repeat an earlier row (the same file, label and split); collapsed"),
            (
                leaks,
                "list a file already listed under another split; each such file stays only in the first of "
                "train, val, test, so no test photo is also a training photo",
            ),
            (relabels, "give a file another label than its first row; the first label is kept"),
        ):
            if count:
                self.skipped.append(Skipped(str(path), f"{path}: {count:,} row(s) {what}"))
        return sorted(first.values(), key=lambda r: r[0])

    def add_csv(self, path: Path) -> None:
        """A CSV of path,label[,split]; paths relative to the CSV's folder. Split values must be train/val/test."""
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: Excel's "CSV UTF-8" has a BOM
                reader = csv.DictReader(f)
                lines = [
                    {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
                    for row in reader
                ]
                fieldnames = reader.fieldnames
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8 (in Excel: 'CSV UTF-8')"
            ) from None
        except csv.Error as e:
            raise DataError(f"{path}: not a readable CSV ({e})") from None
        if not fieldnames or not {"path", "label"} <= {(k or "").strip() for k in fieldnames}:
            raise DataError(f"{path}: the CSV needs a header with 'path' and 'label' columns (found {fieldnames})")
        bad = sorted(
            {row.get("split", "") for row in lines if row.get("split", "") and row["split"].lower() not in SPLIT_NAMES}
        )
        if bad:
            raise DataError(
                f"{path}: the split column holds {', '.join(repr(b) for b in bad[:5])}; use train, val or "
                f"test (or leave it empty for train)"
            )
        lines = self._unique(path, lines)
        for n, row in lines:
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


def _real(path: Path) -> Path | None:
    """`path` with its links resolved; None when it cannot be (a loop, a dangling link)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:  # a name longer than the system allows: os.walk lists it as unreadable when it descends
        return False


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
