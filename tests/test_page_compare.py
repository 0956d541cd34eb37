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
