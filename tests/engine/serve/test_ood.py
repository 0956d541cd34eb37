"""The out-of-place rule: nearest-neighbour distance in the head's feature space, threshold fitted on val."""

import numpy as np
import pytest
from conftest import SAMPLE, jpeg_bytes

from engine.serve import ood
from engine.serve.card import model_card
from engine.serve.prediction import predict_image


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_score_is_the_distance_to_the_kth_nearest_reference_photo():
    reference = _unit(np.eye(6, dtype=np.float32))
    rule = ood.OutOfPlace(0.5, 2, 0.95, 6, 10, reference)  # 95%: the sentence quotes the rule's own quantile
    near = _unit(np.array([[1, 0.1, 0, 0, 0, 0]], dtype=np.float32))  # the 2nd nearest is 0.1 away in cosine
    assert rule.scores(near)[0] == pytest.approx(1 - 0.1 / np.sqrt(1.01), abs=1e-6)
    assert rule.scores(reference).max() == pytest.approx(1.0)  # each unit vector's 2nd nearest is orthogonal
    assert rule.sentence(0.4) == "" and rule.sentence(0.7).startswith("This photo does not look like your training")
    assert "0.70" in rule.sentence(0.7) and "95% of the validation photos are within 0.50" in rule.sentence(0.7)


def test_a_round_robin_keeps_every_class_in_a_small_reference():
    photos, labels = [f"p{i}" for i in range(12)], [0] * 10 + [1, 2]
    assert ood._spread(photos, labels, 3) == (["p0", "p10", "p11"], [0, 1, 2])
    assert len(ood._spread(photos, labels, 100)[0]) == 12


def test_the_rule_is_kept_and_a_damaged_file_is_fitted_again(tmp_path):
    rule = ood.OutOfPlace(0.3, 5, 0.95, 4, 7, _unit(np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)))
    ood.save(rule, tmp_path / ood.FILE)
    back = ood.load(tmp_path / ood.FILE)
    assert (back.threshold, back.k, back.n_reference, back.n_val) == (0.3, 5, 4, 7)
    assert np.abs(back.reference - rule.reference).max() < 1e-3
    assert not back.labelled  # kept without its photos' classes and val answers: the run fits it again
    labelled = ood.replace(rule, labels=np.arange(4), val=rule.reference[:2], val_labels=np.array([1, 2]))
    ood.save(ood.replace(labelled, val_answers=np.array([1, 0])), tmp_path / ood.FILE)
    back = ood.load(tmp_path / ood.FILE)
    assert back.labelled and back.labels.tolist() == [0, 1, 2, 3] and back.val_answers.tolist() == [1, 0]
    assert back.val_labels.tolist() == [1, 2] and np.abs(back.val - rule.reference[:2]).max() < 1e-3
    (tmp_path / ood.FILE).write_bytes(b"damaged")
    assert ood.load(tmp_path / ood.FILE) is None and ood.load(tmp_path / "none.npz") is None


def test_a_run_calls_unlike_photos_out_of_place_and_its_own_photos_not(sample_run):
    """A head on Lite0 trained on 24 photos of each sample class: the sample's val photos (none of them seen) are in
    place but for a few, a flat magenta image and noise are not; the rule is fitted once, kept in the run, and the model
    card carries it."""
    run = sample_run
    (run.path / ood.FILE).unlink(missing_ok=True)
    own = [p for c in sorted((SAMPLE / "val").iterdir()) for p in sorted(c.iterdir())[:2]]
    flagged = [predict_image(run, str(p)).out_of_place for p in own]
    assert (run.path / ood.FILE).exists() and len(own) == 30 and sum(flagged) <= 3, sum(flagged)
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    for photo in (jpeg_bytes((255, 0, 255), (300, 300)), buffer.getvalue()):
        out = predict_image(run, photo)
        assert out.out_of_place and out.place_sentence.startswith("This photo does not look like your training")
    card = model_card(run).out_of_place
    assert card["k"] == ood.K and 0 < card["threshold"] < 2 and "validation photos" in card["fitted_on"]


def test_a_run_whose_photos_are_gone_still_predicts_and_says_it_could_not_check(finished_store, tmp_path):
    import json
    import shutil

    from engine.runs.store import RunStore

    src = finished_store.list()[0]
    shutil.copytree(src.path, tmp_path / "runs" / "gone")
    (tmp_path / "runs" / "gone" / ood.FILE).unlink(missing_ok=True)
    config = json.loads((tmp_path / "runs" / "gone" / "config.json").read_text())
    config["data"]["path"] = str(tmp_path / "nowhere")
    (tmp_path / "runs" / "gone" / "config.json").write_text(json.dumps(config))
    out = predict_image(RunStore(tmp_path / "runs").open("gone"), str(next((SAMPLE / "val").rglob("*.jpg"))))
    assert out.top and not out.out_of_place and out.place_score is None
    assert out.place_sentence.startswith("Whether this photo looks like the training photos could not be checked")


def test_a_rule_fitted_for_an_earlier_model_file_is_fitted_again(finished_store):
    import os

    from engine.plan.trained import load_run_model

    run = finished_store.list()[0]
    model, spec, _ = load_run_model(run)
    first = ood.run_rule(run, model, spec)
    assert first.weights == ood.weights_stamp(run) != "" and ood.load(run.path / ood.FILE).weights == first.weights
    weights = run.path / first.weights.split(":")[0]
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the run saved a newer model since
    again = ood.run_rule(run, model, spec)
    assert again.weights != first.weights and ood.load(run.path / ood.FILE).weights == again.weights
