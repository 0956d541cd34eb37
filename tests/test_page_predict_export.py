"""AppTest of the Predict and export page."""

from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401
from test_page_compare import stopped_copy

from engine.runs.store import RunStore


def test_predict_export_page(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("predict.py").run()
    assert not at.exception and at.info
    use_runner(monkeypatch, finished_store)
    at = page("predict.py").run()
    assert not at.exception and any("Model card" in m.value for m in at.markdown)
    assert not any(str(tmp_path) in m.value for m in at.markdown)  # no server paths on the card
    at.button(key="export").click().run()
    assert not at.exception and any("same top-1 = True" in m.value for m in at.markdown)


def test_a_cancelled_run_can_predict(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, stopped_copy(finished_store, tmp_path))
    at = page("predict.py").run()
    assert not at.exception and at.selectbox(key="export_run").value.endswith("-stopped")
