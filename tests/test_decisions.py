"""A person's decisions about their photos: stored apart, applied by the next plan and run, said how many; a file
edited by hand with an unknown photo, action or class is refused in one line."""

import pytest

from engine.data.dataset import load_dataset
from engine.data.decisions import Decision, apply_decisions, decisions_file, save_decisions
from engine.errors import DataError
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, load_data


def test_decisions_are_applied_by_the_next_plan_and_leave_the_photos_alone(tiny_folder):
    cfg = TrainConfig.create(data=str(tiny_folder), strategy="feature-extraction", val_fraction=0.34, views=1)
    ds = load_data(cfg)
    before = {p.name: p.read_bytes() for p in tiny_folder.rglob("*.jpg")}
    first, second = ds.train[0], ds.train[1]
    other = ds.classes[(first.label + 1) % len(ds.classes)]
    save_decisions(ds, [Decision(first.path, "relabel", other), Decision(second.path, "exclude")])
    decided = load_data(cfg)
    assert next(it for it in decided.items if it.path == first.path).label == ds.classes.index(other)
    assert second.path not in {it.path for it in decided.items} and len(decided.items) == len(ds.items) - 1
    assert "1 photo(s) relabelled, 1 left out" in get_plan(cfg).plan.reason
    assert {p.name: p.read_bytes() for p in tiny_folder.rglob("*.jpg")} == before  # nothing written to the data


@pytest.mark.parametrize(
    "line,message",
    [
        ("nowhere/x.jpg,exclude,", "is not a photo of"),
        ("{path},delete,", "action 'delete' is not one of relabel, exclude"),
        ("{path},relabel,Cat", "'Cat' is not one of the classes"),
    ],
)
def test_a_decisions_file_edited_by_hand_is_refused_in_one_line(tiny_folder, line, message):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    path = decisions_file(ds.fingerprint())
    path.write_text("path,action,new_label\n" + line.format(path=ds.train[0].path) + "\n")
    try:
        with pytest.raises(DataError, match=message):
            apply_decisions(ds)
    finally:
        path.unlink()
