"""A trained run's model as its folder keeps it, and the runs trained on a folder."""

from __future__ import annotations

import pytest
import torch

from engine.errors import DataError
from engine.plan.trained import has_model, load_run_model, runs_on
from engine.runs.store import RunStore


def test_the_model_is_the_runs_own_with_its_contract_and_classes(finished_store):
    run = finished_store.list()[0]
    model, spec, classes = load_run_model(run)
    assert has_model(run) and not model.training and classes == run.read_json("run_info.json")["classes"]
    assert spec.input_size == tuple(run.read_json("plan.json")["input"]["input_size"])
    with torch.no_grad():
        assert model(torch.zeros(1, *spec.input_size)).shape == (1, len(classes))


def test_runs_on_a_folder_are_those_trained_on_it_with_a_model(finished_store, tmp_path):
    run = finished_store.list()[0]
    data = run.config["data"]["path"]
    assert runs_on(finished_store, data) == [run.id]
    assert runs_on(finished_store, str(tmp_path)) == []


def test_a_run_without_a_model_yet_is_said_in_one_line(tmp_path, tiny_folder):
    run = RunStore(tmp_path / "runs").create({"data": {"path": str(tiny_folder)}}, "queued")
    assert not has_model(run)
    with pytest.raises(DataError, match=f"run {run.id} has no model yet \\(status queued\\); resume it or wait"):
        load_run_model(run)
