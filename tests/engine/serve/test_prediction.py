"""One photo's answer: the model's own ranking with calibrated probabilities, unsure below the run's threshold, and
said in words when the out-of-place rule cannot be checked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.data.imageio import load_image
from engine.data.spec import to_tensor
from engine.errors import DataError
from engine.plan.trained import load_run_model
from engine.runs.result import RunResult
from engine.serve import prediction
from engine.serve.prediction import predict_image


@pytest.fixture
def run_and_photo(finished_store):
    run = finished_store.list()[0]
    data = run.config["data"]["path"]
    photo = next(p for p in sorted(Path(data).rglob("*")) if p.is_file())
    return run, photo


def test_the_answer_is_the_models_own_ranking_from_a_path_or_bytes(run_and_photo):
    run, photo = run_and_photo
    answer = predict_image(run, photo)
    model, spec, classes = load_run_model(run)
    with torch.no_grad():
        logits = model(spec.normalize(to_tensor(load_image(photo, 3), spec.geometry())[None]))[0]
    assert answer.top[0][0] == classes[int(logits.argmax())]
    assert len(answer.top) == len(classes) == 3 and sum(p for _, p in answer.top) == pytest.approx(1.0, abs=1e-5)
    assert [p for _, p in answer.top] == sorted((p for _, p in answer.top), reverse=True)
    assert predict_image(run, photo.read_bytes()).top == answer.top
    assert len(predict_image(run, photo, k=1).top) == 1


def test_below_the_runs_threshold_the_answer_is_unsure_in_words(run_and_photo, monkeypatch):
    run, photo = run_and_photo
    result = RunResult.read(run)
    monkeypatch.setattr(
        RunResult, "read", lambda r: replace(result, unsure={**(result.unsure or {}), "threshold": 1.01})
    )
    answer = predict_image(run, photo)
    assert answer.unsure and answer.threshold == 1.01
    assert (
        answer.unsure_sentence.startswith(f"Unsure: top guesses `{answer.top[0][0]}`")
        and "101%" in answer.unsure_sentence
    )


def test_an_out_of_place_rule_that_cannot_be_fitted_is_said_not_hidden(run_and_photo, monkeypatch):
    run, photo = run_and_photo

    def no_rule(*args):
        raise DataError("the run's training photos are gone")

    monkeypatch.setattr(prediction.ood, "run_rule", no_rule)
    answer = predict_image(run, photo)
    assert not answer.out_of_place and answer.place_score is None
    assert answer.place_sentence == (
        "Whether this photo looks like the training photos could not be checked: the run's training photos are gone"
    )
