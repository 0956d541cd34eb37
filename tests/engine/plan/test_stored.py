"""Plans at rest: written and read back whole, refused for other data, and a plan that cannot be read is made again
in the plan cache and named in one line for a run."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import a_plan

from engine.data.dataset import load_dataset
from engine.errors import DataError
from engine.plan.parts import PlanError
from engine.plan.stored import Planned, load_planned, read_plan, read_plan_checked, save_planned
from engine.probe.linear import LinearFit


def _planned(ds) -> Planned:
    plan = a_plan()
    plan = replace(plan, data=replace(plan.data, fingerprint=ds.fingerprint()))
    rng = np.random.default_rng(0)
    head = LinearFit(
        0.75, np.zeros(0), np.zeros(0), rng.normal(size=(3, 4)), rng.normal(size=3), np.ones(4), np.ones(4)
    )
    return Planned(plan, ds, head, [])


def test_a_plan_and_its_head_are_read_back_as_written(tmp_path, tiny_folder):
    ds = load_dataset(tiny_folder)
    planned = _planned(ds)
    save_planned(tmp_path / "plan", planned)
    back = load_planned(tmp_path / "plan", ds)
    assert back.cached and back.plan.to_dict() == planned.plan.to_dict()
    assert np.array_equal(back.head.std_coef, planned.head.std_coef) and back.head.accuracy == 0.75
    assert (
        read_plan(tmp_path / "plan").to_dict() == planned.plan.to_dict() and not read_plan_checked(tmp_path / "plan")[1]
    )
    assert load_planned(tmp_path / "nothing", ds) is None and read_plan(tmp_path / "nothing") is None


def test_a_plan_for_other_data_is_refused_in_one_line(tmp_path, tiny_folder):
    ds = load_dataset(tiny_folder)
    save_planned(tmp_path / "plan", _planned(ds))
    (next(tiny_folder.iterdir()) / "new.jpg").write_bytes(next(next(tiny_folder.iterdir()).iterdir()).read_bytes())
    with pytest.raises(DataError, match="made for other data") as e:
        load_planned(tmp_path / "plan", load_dataset(tiny_folder))
    assert "make a new plan" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_plan_that_cannot_be_read_is_remade_in_the_cache_and_named_for_a_run(tmp_path, tiny_folder, text):
    ds = load_dataset(tiny_folder)
    save_planned(tmp_path / "plan", _planned(ds))
    (tmp_path / "plan" / "plan.json").write_text(text)
    assert load_planned(tmp_path / "plan", ds, remake=True) is None  # the plan cache: made again
    assert read_plan(tmp_path / "plan") is None  # the pages: nothing to show
    assert read_plan_checked(tmp_path / "plan") == (None, True)  # ...and why
    assert read_plan_checked(tmp_path / "none") == (None, False)
    with pytest.raises(PlanError, match="plan.json") as e:  # a run: refused, naming the file
        load_planned(tmp_path / "plan", ds)
    assert "make the plan again" in str(e.value)


def test_a_plan_edited_by_hand_names_its_file(tmp_path, tiny_folder):
    ds = load_dataset(tiny_folder)
    save_planned(tmp_path / "plan", _planned(ds))
    d = json.loads((tmp_path / "plan" / "plan.json").read_text())
    d["version"] = -1
    (tmp_path / "plan" / "plan.json").write_text(json.dumps(d))
    with pytest.raises(PlanError, match=str(tmp_path / "plan" / "plan.json")):
        load_planned(tmp_path / "plan", ds)
