"""AppTest of the Compare page."""

import shutil

from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401

from engine.runs.store import RunStore


def test_compare_page(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("compare.py").run()
    assert not at.exception and at.info
    use_runner(monkeypatch, finished_store)
    at = page("compare.py").run()
    table = at.dataframe[0].value
    assert not at.exception and table["status"].tolist() == ["finished"] and table["dataset"].tolist() == ["tiny"]
    assert "starting head (test)" in table.columns and at.info[0].value.startswith("No run here has a test split")


def stopped_copy(finished_store, tmp_path) -> RunStore:
    """The finished run as if it had been stopped after its best checkpoint: no final model, status cancelled."""
    src = finished_store.list()[0]
    store = RunStore(tmp_path / "stopped")
    dst = store.root / (src.id + "-stopped")
    shutil.copytree(src.path, dst)
    (dst / "model.safetensors").unlink()
    (dst / "metrics.json").unlink()
    store.open(dst.name).set_status(state="cancelled")
    return store


def test_a_cancelled_run_with_a_best_checkpoint_appears(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, stopped_copy(finished_store, tmp_path))
    at = page("compare.py").run()
    assert not at.exception and at.dataframe[0].value["status"].tolist() == ["cancelled"]


def test_two_runs_on_the_same_test_photos_are_paired_with_mcnemars_verdict(monkeypatch, tmp_path, finished_store):
    src = finished_store.list()[0]
    store = RunStore(tmp_path / "paired")
    labels = [0, 1] * 20
    for name, wrong in (("strong", 0), ("weak", 12)):
        dst = store.root / f"{src.id}-{name}"
        shutil.copytree(src.path, dst)
        run = store.open(dst.name)
        record = run.read_json("metrics.json")
        pred = [1 - y if i < wrong else y for i, y in enumerate(labels)]
        paths = [f"/photos/test/{i}.jpg" for i in range(len(labels))]
        right = sum(p == y for p, y in zip(pred, labels)) / len(labels)
        record.update(test_paths=paths, test_labels=labels, test_pred=pred, test_accuracy=right, test_n=len(labels))
        record.update(run_id=dst.name)  # the copy is a run of its own
        run.write_json("metrics.json", record)
    use_runner(monkeypatch, store)
    at = page("compare.py").run()
    assert not at.exception
    pairs = at.dataframe[1].value
    assert pairs["right by A only"].tolist() + pairs["right by B only"].tolist() in ([0, 12], [12, 0])
    assert pairs["verdict"].tolist()[0].endswith("-strong is better")


def test_two_datasets_of_one_name_appear_as_two(monkeypatch, tmp_path, finished_store):
    import json

    src = finished_store.list()[0]
    store = RunStore(tmp_path / "twins")
    for where in ("shared", "bundled"):
        dst = store.root / f"{src.id}-{where}"
        shutil.copytree(src.path, dst)
        plan = json.loads((dst / "plan.json").read_text())
        plan["data"]["path"] = f"/photos/{where}/tiny"
        (dst / "plan.json").write_text(json.dumps(plan))
    use_runner(monkeypatch, store)
    at = page("compare.py").run()
    assert not at.exception
    picker = at.multiselect(key="compare_datasets")
    assert sorted(picker.options) == ["tiny (bundled)", "tiny (shared)"] and len(picker.value) == 1
    assert len(at.dataframe[0].value) == 1
