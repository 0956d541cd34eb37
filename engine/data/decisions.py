"""A person's decisions about their photos ("relabel as X", "exclude"), kept apart from the photos.

They are a CSV of `path,action,new_label` under TRANSFERLAB_HOME/decisions, named by the dataset's fingerprint as
loaded without them: the user's files are never edited. The next probe, plan and run apply them (`apply_decisions`)
and say how many. The file's header is required; a file edited by hand that names a photo the dataset does not have
or one of its test split, an action that is not one, or a label that is no class is refused in one line that names
the line, and so are decisions that leave fewer than two classes. Values are written escaped against spreadsheet
formulas (`escape`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from engine import paths
from engine.data.dataset import Dataset, Item
from engine.errors import DataError

ACTIONS = ("relabel", "exclude")
COLUMNS = ("path", "action", "new_label")
DECIDABLE = ("train", "val")  # the splits a decision may change: test is never touched
_FORMULA = tuple("=+-@\t\r'")  # a cell starting so is a formula to a spreadsheet; written with a leading quote
DECISION_ACTIONS = ("keep", *ACTIONS)  # what the Data page offers for each photo (keep: no decision)


@dataclass(frozen=True)
class Decision:
    path: str
    action: str  # relabel or exclude
    new_label: str = ""  # the class, for relabel


def decisions_file(fingerprint: str) -> Path:
    return paths.sub("decisions") / f"{fingerprint}.csv"


def save_decisions(ds: Dataset, decisions: list[Decision]) -> Path:
    """Stores the decisions for `ds` (as loaded without decisions), replacing earlier ones; checked first."""
    _check(ds, decisions, "your decisions")
    _applied(ds, decisions, "your decisions")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for d in decisions:
        w.writerow([escape(d.path), d.action, escape(d.new_label)])
    target = decisions_file(ds.fingerprint())
    paths.atomic_write(target, out.getvalue().encode("utf-8"))
    return target


def read_decisions(ds: Dataset) -> list[Decision]:
    """The decisions stored for `ds`, checked against it; none when there is no file.

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
    _check(ds, decisions, str(path))
    return decisions


def escape(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows as text: a leading quote before `=`, `+`, `-`, `@`, a tab, a carriage
    return or a quote (`unescape` removes it)."""
    return "'" + value if value.startswith(_FORMULA) else value


def unescape(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def _check(ds: Dataset, decisions: list[Decision], where: str) -> None:
    splits = {it.path: it.split for it in ds.items}
    untouchable = [n for n, d in enumerate(decisions, start=2) if splits.get(d.path, DECIDABLE[0]) not in DECIDABLE]
    if untouchable:
        raise DataError(
            f"{where}: {len(untouchable)} line(s) (the first: line {untouchable[0]}) name photos of the test split, "
            f"which decisions never change; delete those lines"
        )
    for n, d in enumerate(decisions, start=2):
        line = f"{where} line {n}"
        if "\x00" in d.path or d.path not in splits:
            raise DataError(f"{line}: {d.path!r} is not a photo of {ds.root}; fix the path or delete the line")
        if d.action not in ACTIONS:
            raise DataError(
                f"{line}: action {d.action!r} is not one of {', '.join(ACTIONS)}; fix it or delete the line"
            )
        if d.action == "relabel" and d.new_label not in ds.classes:
            raise DataError(
                f"{line}: {d.new_label!r} is not one of the classes ({', '.join(ds.classes[:8])}"
                f"{'…' if len(ds.classes) > 8 else ''}); fix the label or delete the line"
            )


def apply_decisions(ds: Dataset) -> tuple[Dataset, str]:
    """`ds` with its stored decisions applied (photos relabelled or left out; the test split's photos are never
    relabelled by a decision made on train and val), and a sentence that says how many; ("", ds) without any."""
    decisions = list({d.path: d for d in read_decisions(ds)}.values())  # a path decided twice: the last line
    if not decisions:
        return ds, ""
    items = _applied(ds, decisions, str(decisions_file(ds.fingerprint())))
    relabelled = sum(d.action == "relabel" for d in decisions)
    note = (
        f"Your decisions ({decisions_file(ds.fingerprint()).name}): {relabelled} photo(s) relabelled, "
        f"{len(decisions) - relabelled} left out; your files are unchanged."
    )
    return replace(ds, items=items, notes=[*ds.notes, note], origin=ds.fingerprint()), note


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
    kept = {it.label for it in items if it.split == "train"}
    if len(kept) < 2:
        raise DataError(
            f"{where}: these decisions leave {len(kept)} class with training photos, and a classifier needs two; "
            f"undo some exclusions or relabellings"
        )
    return items
