"""AppTest of the lesson page: nothing started, then four finished runs read back as curves and the result chart."""

from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401

from engine.runs.store import RunStore


def test_lesson_page_without_an_experiment(monkeypatch, tmp_path):
    use_runner(monkeypatch, RunStore(tmp_path))
    at = page("lesson.py").run()
    assert not at.exception and "four ways" in at.info[0].value and "plant-leaves-15" in at.info[0].value
    assert at.button(key="lesson_start").label == "▶ Show me why transfer learning works"  # started here too


def test_lesson_page_shows_the_runs_and_one_sentence(monkeypatch, finished_store):
    use_runner(monkeypatch, finished_store)
    rid = finished_store.list()[0].id
    at = page("lesson.py")
    at.session_state["lesson"] = {"probe": rid, "finetune": rid}
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 3  # curves, freeze map, rates, result
    assert "no honest comparison on new photos" in at.success[0].value  # the tiny runs had no test split
    assert at.query_params["lesson"] == f"probe:{rid},finetune:{rid}"  # in the URL, so a reload keeps them


def test_a_url_naming_no_run_of_the_store_opens_nothing(monkeypatch, finished_store, tmp_path):
    use_runner(monkeypatch, finished_store)
    (tmp_path / "config.json").write_text("{}")  # a folder that looks like a run, outside the store
    at = page("lesson.py")
    at.query_params["lesson"] = f"scratch:{tmp_path},probe:no-such-run,../x:{finished_store.list()[0].id}"
    at.run()
    assert not at.exception and "four ways" in at.info[0].value and at.button(key="lesson_start")
