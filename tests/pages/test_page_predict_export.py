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
    assert at.selectbox(key="target").value == "phone" and at.number_input(key="latency_phone").value == 50.0
    at.button(key="export").click().run(timeout=300)  # a whole phone export, each file measured: minutes under load
    assert not at.exception and any("same top-1 = True" in m.value for m in at.markdown)
    result = at.session_state["export_result"]
    table = at.dataframe[-1].value
    assert list(table["file"]) == [m.name for m in result.measures] and table["file"][0] == "PyTorch"
    assert any(i.value == result.sentence() for i in at.info)
    assert any(c.value == result.how_to_run() for c in at.caption) and "predict.py" in result.how_to_run()
    assert len(at.warning) == len(result.refused)


def test_a_cancelled_run_can_predict(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, stopped_copy(finished_store, tmp_path))
    at = page("predict.py").run()
    assert not at.exception and at.selectbox(key="export_run").value.endswith("-stopped")


def test_the_page_estimates_the_accuracy_on_a_folder_and_answers_a_bad_one_in_one_line(
    monkeypatch, tmp_path, finished_store
):
    import json

    from photos import val_folder

    run = finished_store.list()[0]
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    val_folder(tmp_path / "field", classes)
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    use_runner(monkeypatch, finished_store)
    at = page("predict.py").run()
    at.text_input(key="estimate_folder").input("nowhere").run()
    at.button(key="estimate").click().run()
    assert not at.exception and len(at.error) == 1 and "does not exist" in at.error[0].value
    at.text_input(key="estimate_folder").input("field").run()
    at.button(key="estimate").click().run()
    assert not at.exception and not at.error
    assert any(i.value.startswith(f"Expected accuracy on these {5 * len(classes)} photos") for i in at.info)
