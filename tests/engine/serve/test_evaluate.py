"""A run's model scored on labelled photos: its classes matched by name, unknown ones and missing splits in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from engine.serve.evaluate import evaluate


def _folder(run, dst: Path, classes: list[str], per_class: int = 2) -> Path:
    data = Path(run.config["data"]["path"])
    for cls in classes:
        (dst / cls).mkdir(parents=True)
        for f in sorted((data / cls).iterdir())[:per_class]:
            shutil.copy(f, dst / cls / f.name)
    return dst


def test_a_folder_of_some_classes_is_scored_against_the_runs_classes_by_name(finished_store, tmp_path):
    run = finished_store.list()[0]
    classes = run.read_json("run_info.json")["classes"]
    scored = evaluate(run, str(_folder(run, tmp_path / "two", [classes[2], classes[0]])))
    assert scored.n == 4 and scored.classes == classes
    confusion = np.array(scored.confusion)
    assert confusion.shape == (3, 3) and confusion[1].sum() == 0 and confusion[[0, 2]].sum(1).tolist() == [2, 2]
    assert scored.per_class[classes[1]] is None
    assert scored.accuracy == pytest.approx(np.trace(confusion) / 4)
    assert scored.interval[0] <= scored.accuracy <= scored.interval[1]


def test_a_class_the_run_never_saw_is_named(finished_store, tmp_path):
    run = finished_store.list()[0]
    classes = run.read_json("run_info.json")["classes"]
    folder = _folder(run, tmp_path / "odd", classes[:1])
    shutil.copytree(folder / classes[0], folder / "Tomato_mosaic")
    with pytest.raises(DataError, match="classes Tomato_mosaic are not among the run's classes"):
        evaluate(run, str(folder))


def test_a_split_the_runs_data_does_not_have_is_said_with_why(finished_store):
    run = finished_store.list()[0]
    with pytest.raises(DataError, match=f"run {run.id}: its data has no test split"):
        evaluate(run, split="test")
    assert evaluate(run, split="val").n > 0
