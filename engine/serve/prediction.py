"""One photo's answer: its likeliest classes with calibrated probabilities, whether the run would call it unsure or out
of place, and how far it is from the training photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.drift import drift_warnings
from engine.data.imageio import load_image
from engine.data.spec import InputSpec, to_tensor
from engine.errors import DataError
from engine.runs.result import RunResult
from engine.runs.store import Run
from engine.serve import ood
from engine.plan.trained import load_run_model
from engine.text import literal


@dataclass(frozen=True)
class Prediction:
    """One photo's answer.

    Attributes:
        top: (class, calibrated probability) of the likeliest classes, the likeliest first.
        unsure: The top probability is below the threshold chosen on val.
        threshold: That threshold (0 when the run chose none).
        unsure_sentence: Why to doubt it, in words ("" when sure).
        warnings: How far the photo is from the training photos (size, colour), in words.
        out_of_place: The photo does not look like the training photos (the run's out-of-place rule); no class is
            given for it.
        place_score: Its out-of-place score (None when the rule could not be fitted: the run's photos are gone).
        place_sentence: Why it is out of place, or why that could not be checked, in words ("" when it is in place).
    """

    top: list[tuple[str, float]]
    unsure: bool
    threshold: float
    unsure_sentence: str
    warnings: list[str]
    out_of_place: bool = False
    place_score: float | None = None
    place_sentence: str = ""


def _place(run: Run, model, spec: InputSpec, z: np.ndarray) -> tuple[bool, float | None, str]:
    """Whether unit features `z` of one photo are out of place for the run, its score and the sentence."""
    try:
        rule = ood.run_rule(run, model, spec)
    except DataError as e:
        return False, None, f"Whether this photo looks like the training photos could not be checked: {e}"
    score = float(rule.scores(z)[0])
    return score > rule.threshold, score, rule.sentence(score)


def predict_image(run: Run, data: bytes | str | Path, k: int = 5) -> Prediction:
    """Top-k classes with their calibrated probabilities for one photo, whether the run would call it unsure (its top
    probability below the threshold chosen on val) or out of place (unlike the training photos), and drift
    warnings."""
    model, spec, classes = load_run_model(run)
    img = load_image(data, spec.in_chans)
    logits, z = ood.unit_features(model, spec.normalize(to_tensor(img, spec.geometry())[None]))
    probs = torch.from_numpy(logits).softmax(-1)[0]
    top = probs.topk(min(k, len(classes)))
    result = RunResult.read(run)
    threshold = (result.unsure or {}).get("threshold", 0.0) if result is not None else 0.0
    ranked = [(classes[i], float(p)) for p, i in zip(top.values, top.indices)]
    unsure = bool(ranked and ranked[0][1] < threshold)
    guesses = ", ".join(f"{literal(c)} {p:.0%}" for c, p in ranked[:2])
    out_of_place, score, place_sentence = _place(run, model, spec, z)
    return Prediction(
        top=ranked,
        unsure=unsure,
        threshold=threshold,
        unsure_sentence=f"Unsure: top guesses {guesses}. Below {threshold:.0%} confidence this model is often "
        f"wrong (the threshold was chosen on the validation photos)."
        if unsure
        else "",
        warnings=drift_warnings(img, spec, run.read_json("data_stats.json")),
        out_of_place=out_of_place,
        place_score=score,
        place_sentence=place_sentence,
    )
