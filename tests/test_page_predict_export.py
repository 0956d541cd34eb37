"""AppTest of the Predict and export page."""
from engine.store import RunStore
from pagetest import SlowFakeTrainer, fresh_caches, page, use_runner  # noqa: F401


def test_predict_export_page(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("6_Predict_Export.py").run()
    assert not at.exception and at.info
    use_runner(monkeypatch, finished_store)
    at = page("6_Predict_Export.py").run()
    assert not at.exception
    at.button(key="export").click().run()
    assert not at.exception and "same top-1 = True" in at.markdown[-1].value or any(
        "same top-1 = True" in m.value for m in at.markdown)
