"""A person's decisions about their photos ("relabel as X", "exclude", and for photos of a pool of unlabelled ones,
"label as X" or "skip"), kept apart from the photos.

They are a CSV of `path,action,new_label` under TRANSFERLAB_HOME/decisions, named by the dataset's fingerprint as
loaded without them: the user's files are never edited. The next probe, plan and run apply them (`apply_decisions`)
and say how many: a photo labelled from the pool (`engine.probe.suggest`) joins the training photos; a skipped one
changes nothing and is not suggested again. The file's header is required; a file edited by hand that names a photo
the dataset does not have or one of its test split, a pool photo that is a photo of the dataset, unreadable, or
outside the data root, an action that is not one, or a label that is no class is refused in one line that names the
line, and so are decisions that leave fewer than two classes. Values are written escaped against spreadsheet
formulas (`escape`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from engine import paths
from engine.data.dataset import Dataset, Item, check_file
from engine.errors import DataError

POOL_ACTIONS = ("label", "skip")  # for photos of a pool of unlabelled ones: label as a class, or pass over
ACTIONS = ("relabel", "exclude", *POOL_ACTIONS)
COLUMNS = ("path", "action", "new_label")
DECIDABLE = ("train", "val")  # the splits a decision may change: test is never touched
_FORMULA = tuple("=+-@\t\r'")  # a cell starting so is a formula to a spreadsheet; written with a leading quote
DECISION_ACTIONS = ("keep", *ACTIONS)  # what the Data page offers for each photo (keep: no decision)


@dataclass(frozen=True)
class Decision:
    path: str
    action: str  # relabel or exclude (a photo of the dataset), label or skip (a photo of a pool)
    new_label: str = ""  # the class, for relabel and label


def decisions_file(fingerprint: str) -> Path:
    return paths.sub("decisions") / f"{fingerprint}.csv"


def save_decisions(ds: Dataset, decisions: list[Decision], root: str | Path | None = None) -> Path:
    """Stores the decisions for `ds` (as loaded without decisions), replacing earlier ones; checked first (pool
    photos inside `root` when one is given)."""
    _check(ds, decisions, "your decisions", root)
    _applied(ds, decisions, "your decisions")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for d in decisions:
        w.writerow([escape(d.path), d.action, escape(d.new_label)])
    target = decisions_file(ds.fingerprint())
    paths.atomic_write(target, out.getvalue().encode("utf-8"))
    return target


def read_decisions(ds: Dataset, root: str | Path | None = None) -> list[Decision]:
    """The decisions stored for `ds`, checked against it (pool photos inside `root` when one is given); none when
    there is no file.

    Raises:
        DataError: A line names an unknown photo, action or class; the message names the line and the fix.
    """
    path = decisions_file(ds.fingerprint())
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error, ValueError) as e:
        raise DataError(f"{path}: not a readable CSV ({e}); delete it to start the decisions again") from None
    if header is None or tuple(c.strip() for c in header) != COLUMNS:
        raise DataError(
            f"{path}: the first line must be the header {','.join(COLUMNS)}; fix it or delete the file to start the "
            f"decisions again"
        )
    decisions = []
    for n, row in enumerate(rows, start=2):
        if len(row) != len(COLUMNS):
            raise DataError(f"{path} line {n}: {len(row)} values where {len(COLUMNS)} belong; fix or delete the line")
        decisions.append(Decision(unescape(row[0].strip()), row[1].strip(), unescape(row[2].strip())))
    _check(ds, decisions, str(path), root)
    return decisions


def escape(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows as text: a leading quote before `=`, `+`, `-`, `@`, a tab, a carriage
    return or a quote (`unescape` removes it)."""
    return "'" + value if value.startswith(_FORMULA) else value


def unescape(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def _check(ds: Dataset, decisions: list[Decision], where: str, root: str | Path | None) -> None:
    splits = {it.path: it.split for it in ds.items}
    untouchable = [n for n, d in enumerate(decisions, start=2) if splits.get(d.path, DECIDABLE[0]) not in DECIDABLE]
    if untouchable:
        raise DataError(
            f"{where}: {len(untouchable)} line(s) (the first: line {untouchable[0]}) name photos of the test split, "
            f"which decisions never change; delete those lines"
        )
    for n, d in enumerate(decisions, start=2):
        line = f"{where} line {n}"
        if d.action not in ACTIONS:
            raise DataError(
                f"{line}: action {d.action!r} is not one of {', '.join(ACTIONS)}; fix it or delete the line"
            )
        if d.action in POOL_ACTIONS:
            _check_pool_photo(d.path, d.path in splits, line, root)
        elif "\x00" in d.path or d.path not in splits:
            raise DataError(f"{line}: {d.path!r} is not a photo of {ds.root}; fix the path or delete the line")
        if d.action in ("relabel", "label") and d.new_label not in ds.classes:
            raise DataError(
                f"{line}: {d.new_label!r} is not one of the classes ({', '.join(ds.classes[:8])}"
                f"{'…' if len(ds.classes) > 8 else ''}); fix the label or delete the line"
            )


def _check_pool_photo(path: str, in_dataset: bool, line: str, root: str | Path | None) -> None:
    """Refuses a pool decision's photo that is a photo of the dataset, lies outside `root`, or is not a readable
    image."""
    if in_dataset:
        raise DataError(f"{line}: {path!r} is a photo of the dataset, not of a pool; use relabel or exclude for it")
    if "\x00" in path or not Path(path).is_absolute():
        raise DataError(f"{line}: {path!r} is not the full path of a photo; fix the path or delete the line")
    if root is not None and not Path(path).resolve().is_relative_to(Path(root).expanduser().resolve()):
        raise DataError(f"{line}: {path} is outside the data root {root}; delete the line")
    checked = check_file(Path(path))
    if isinstance(checked, str):
        raise DataError(f"{line}: {checked}; put the photo back or delete the line")


def apply_decisions(ds: Dataset, root: str | Path | None = None) -> tuple[Dataset, str]:
    """`ds` with its stored decisions applied (photos relabelled or left out, photos labelled from a pool added to
    train; the test split's photos are never relabelled by a decision made on train and val), and a sentence that
    says how many; ("", ds) without any. Pool photos must lie inside `root` when one is given."""
    decisions = list({d.path: d for d in read_decisions(ds, root)}.values())  # a path decided twice: the last line
    if not decisions:
        return ds, ""
    items = _applied(ds, decisions, str(decisions_file(ds.fingerprint())))
    count = {a: sum(d.action == a for d in decisions) for a in ACTIONS}
    note = (
        f"Your decisions ({decisions_file(ds.fingerprint()).name}): {count['relabel']} photo(s) relabelled, "
        f"{count['exclude']} left out"
        + (f", {count['label']} labelled from your pool and added to the training photos" if count["label"] else "")
        + "; your files are unchanged."
    )
    meta, digests = dict(ds.meta), dict(ds.digests)
    for d in decisions:
        if d.action == "label":
            meta[d.path], digests[d.path] = check_file(Path(d.path))  # checked readable by read_decisions
    return replace(ds, items=items, notes=[*ds.notes, note], origin=ds.fingerprint(), meta=meta, digests=digests), note


def _applied(ds: Dataset, decisions: list[Decision], where: str) -> list[Item]:
    """The items of `ds` with `decisions` applied; refused when fewer than two classes keep training photos."""
    by_path = {d.path: d for d in decisions}
    items: list[Item] = []
    for it in ds.items:
        d = by_path.get(it.path)
        if d is None:
            items.append(it)
        elif d.action == "relabel":
            items.append(replace(it, label=ds.classes.index(d.new_label)))
    items += [Item(d.path, ds.classes.index(d.new_label), "train") for d in decisions if d.action == "label"]
    kept = {it.label for it in items if it.split == "train"}
    if len(kept) < 2:
        raise DataError(
            f"{where}: these decisions leave {len(kept)} class with training photos, and a classifier needs two; "
            f"undo some exclusions or relabellings"
        )
    return items


def decide_pool_photo(ds: Dataset, path: str, label: str | None, root: str | Path | None = None) -> Decision:
    """Stores one answer for a pool photo: labelled `label`, or skipped when None; replaces an earlier answer for it
    and keeps every other decision. A file that does not read is refused, never replaced.

    Raises:
        DataError: The label is no class, the photo is not a pool photo, or the stored decisions do not read.
    """
    decision = Decision(path, "skip") if label is None else Decision(path, "label", label)
    kept = {d.path: d for d in read_decisions(ds, root)}
    kept[path] = decision
    save_decisions(ds, list(kept.values()), root)
    return decision
