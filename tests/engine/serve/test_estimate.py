"""Accuracy expected on unlabelled photos (engine.serve.estimate: ATC on the support of a reference adapted to the
folder, the model's own confidence beside it) on a real tiny run and real photos, a folder of one class named as
such; every bad input in one line."""

import json
import shutil

import numpy as np
import pytest
from photos import val_folder

from engine.errors import DataError
from engine.serve.estimate import MIN_PHOTOS, estimate_accuracy


def test_a_real_run_estimates_its_accuracy_on_new_photos_and_a_labelled_share_is_measured(finished_store, tmp_path):
    run = finished_store.list()[0]
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    est = estimate_accuracy(run, str(val_folder(tmp_path / "field", classes, labelled=classes[:1])))
    assert est.n == 5 * len(classes) and 0 <= est.interval[0] <= est.accuracy <= est.interval[1] <= 1
    assert sum(est.class_mix.values()) == pytest.approx(1.0) and set(est.class_mix) == set(classes)
    assert est.measured_n == 5 and est.measured is not None and "that measurement wins" in est.sentence
    assert "cannot see" in est.caveat and est.to_dict()["sentence"] == est.sentence


def test_an_estimate_is_kept_with_the_run_for_the_model_it_was_made_with(finished_store, tmp_path):
    from engine.serve.card import model_card
    from engine.plan.trained import runs_on
    from engine.serve.estimate import Estimate, recorded

    src = finished_store.list()[0]
    shutil.copytree(src.path, tmp_path / "runs" / src.path.name)
    store = type(finished_store)(tmp_path / "runs")
    run = store.open(src.id)
    (run.path / "estimates.json").unlink(missing_ok=True)  # what other tests of the shared run estimated
    assert runs_on(store, run.config["data"]["path"]) == [run.id] and runs_on(store, str(tmp_path)) == []
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    est = estimate_accuracy(run, str(val_folder(tmp_path / "field", classes)))
    assert recorded(run) == [est] and Estimate.from_dict(json.loads(json.dumps(est.to_dict()))) == est
    expected = model_card(run).expected
    assert [e["folder"] for e in expected] == ["field"] and expected[0]["accuracy"] == est.accuracy
    model = run.path / "model.safetensors"
    model.write_bytes(model.read_bytes())  # the same bytes, a new file: its stamp changes
    assert recorded(run) == [] and model_card(run).expected == []  # not said of a model it was not made with


def test_too_few_photos_unknown_classes_and_a_run_without_val_are_one_line_each(finished_store, tmp_path):
    run = finished_store.list()[0]
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    few = val_folder(tmp_path / "few", classes[:1], per_class=3)
    strange = val_folder(tmp_path / "strange", classes[:1], labelled=classes[:1])  # a class subfolder beside ...
    (strange / "Not_a_class").mkdir()  # ... one the run does not know
    shutil.copy(next(iter(sorted(few.iterdir()))), strange / "Not_a_class" / "x.jpg")
    for folder, said in (
        (few, f"fewer than {MIN_PHOTOS}"),
        (strange, "not classes"),
        (tmp_path / "nowhere", "not a folder"),
    ):
        with pytest.raises(DataError) as e:
            estimate_accuracy(run, str(folder))
        assert said in str(e.value) and "\n" not in str(e.value)
    copy = tmp_path / "runs" / run.id
    shutil.copytree(run.path, copy)
    record = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**record, "val_conf": []}))
    from engine.runs.store import RunStore

    with pytest.raises(DataError, match="no scored val photos"):
        estimate_accuracy(RunStore(tmp_path / "runs").open(run.id), str(few))


def test_the_command_line_prints_the_estimate_and_its_json(finished_store, tmp_path, capsys):
    from engine.cli import main

    run = finished_store.list()[0]
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    folder = val_folder(tmp_path / "field", classes)
    assert main(["estimate", "--run", str(run.path), "--data", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 * len(classes) and out["sentence"].startswith("Expected accuracy")
    assert main(["estimate", "--run", str(run.path), "--data", str(folder)]) == 0
    mix = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert len(mix) == len(classes) and len({line.index("%") for line in mix}) == 1  # one column, however long a name
    assert main(["estimate", "--run", str(run.path), "--data", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_estimate_counts_the_photos_unlike_the_training_ones(sample_run, tmp_path):
    """Twenty of the sample's own val photos beside ten flat or noisy images: the noise and flat images are the ones
    called out of place (a third of the folder), and the sentence says what that means for the estimate."""
    from PIL import Image

    run = sample_run
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    folder = val_folder(tmp_path / "mixed", classes[:10], per_class=2)
    rng = np.random.default_rng(0)
    for i in range(10):
        pixels = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8) if i % 2 else np.full((200, 200, 3), 25 * i)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"odd-{i}.png")
    est = estimate_accuracy(run, str(folder))
    assert est.n == 30 and 9 / 30 <= est.out_of_place <= 12 / 30, est.out_of_place
    assert f"{est.out_of_place:.0%} of them do not look like your training photos" in est.sentence
    assert est.to_dict()["out_of_place"] == est.out_of_place


def test_the_estimate_judges_answers_by_a_reference_adapted_to_the_photos_and_names_a_folder_of_one_class(
    sample_run, tmp_path
):
    """On the sample's own val photos the reference-based estimate and the model's own confidence agree with the
    truth; a folder of one class is named as such, with the model's own confidence beside the estimate."""
    from engine.serve.estimate import BY_REFERENCE

    run = sample_run
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    est = estimate_accuracy(run, str(val_folder(tmp_path / "all", classes, labelled=classes)))
    assert est.reference is not None and est.mostly == [] and est.accuracy == min(est.reference, est.own_confidence)
    assert abs(est.reference - est.measured) <= 0.15 and abs(est.own_confidence - est.measured) <= 0.15, est
    one = estimate_accuracy(run, str(val_folder(tmp_path / "one", classes[:1], per_class=15)))
    assert one.by == BY_REFERENCE and one.mostly == [classes[0]] and f"mostly {classes[0]}" in one.sentence
    assert f"by the model's own confidence it is {one.own_confidence:.0%}" in one.sentence
