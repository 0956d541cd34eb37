"""AppTest of the Compare page."""
from engine.store import RunStore
from pagetest import SlowFakeTrainer, fresh_caches, page, use_runner  # noqa: F401


def test_compare_page(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("5_Compare.py").run()
    assert not at.exception and at.info
    use_runner(monkeypatch, finished_store)
    at = page("5_Compare.py").run()
    assert not at.exception and at.dataframe[0].value["status"].tolist() == ["finished"]
