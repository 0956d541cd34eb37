"""A person's decisions about their photos ("relabel as X", "exclude"), kept apart from the photos.

They are a CSV of `path,action,new_label` under TRANSFERLAB_HOME/decisions, named by the dataset's fingerprint as
loaded without them: the user's files are never edited. The next probe, plan and run apply them (`apply_decisions`)
and say how many. A file edited by hand that names a photo the dataset does not have, an action that is not one, or a
label that is no class is refused in one line that names the line.
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
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["path", "action", "new_label"])
    for d in decisions:
        w.writerow([d.path, d.action, d.new_label])
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
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV ({e}); delete it to start the decisions again") from None
    decisions = [
        Decision((r.get("path") or "").strip(), (r.get("action") or "").strip(), (r.get("new_label") or "").strip())
        for r in rows
    ]
    _check(ds, decisions, str(path))
    return decisions


def _check(ds: Dataset, decisions: list[Decision], where: str) -> None:
    known = {it.path for it in ds.items}
    for n, d in enumerate(decisions, start=2):
        line = f"{where} line {n}"
        if d.path not in known:
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
    decisions = {d.path: d for d in read_decisions(ds)}
    if not decisions:
        return ds, ""
    items: list[Item] = []
    relabelled = excluded = 0
    for it in ds.items:
        d = decisions.get(it.path)
        if d is None:
            items.append(it)
        elif d.action == "exclude":
            excluded += 1
        else:
            items.append(replace(it, label=ds.classes.index(d.new_label)))
            relabelled += 1
    note = (
        f"Your decisions ({decisions_file(ds.fingerprint()).name}): {relabelled} photo(s) relabelled, {excluded} "
        f"left out; your files are unchanged."
    )
    return replace(ds, items=items, notes=[*ds.notes, note], origin=ds.fingerprint()), note
