"""AppTest of the Train page."""
import time

import ui.state
from engine.config import TrainConfig
from engine.store import RunStore
from pagetest import SlowFakeTrainer, fresh_caches, page, use_runner  # noqa: F401


def test_train_page_empty_running_finished_interrupted(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("4_Train.py").run()
    assert not at.exception and any("No run yet" in i.value for i in at.info)

    runner = use_runner(monkeypatch, RunStore(tmp_path / "live"), SlowFakeTrainer)
    rid = runner.submit(TrainConfig(data="x", strategy="full"))
    while not runner.store.open(rid).events("epoch"):
        time.sleep(0.05)
    at = page("4_Train.py").run()
    assert not at.exception and "running" in at.subheader[0].value
    at.button(key="stop").click().run()
    assert runner.wait(rid, timeout=10)

    use_runner(monkeypatch, finished_store)
    at = page("4_Train.py").run()
    assert not at.exception and "finished" in at.subheader[0].value

    run = finished_store.open(finished_store.list()[0].id)
    run.set_status(state="running", pid=2**22 + 7)  # its process is gone
    at = page("4_Train.py").run()
    assert not at.exception and at.button(key="resume")
    run.set_status(state="finished")


def test_lr_finder_from_the_train_page(monkeypatch, tmp_path, tiny_folder):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("4_Train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.selectbox(key="strategy").set_value("top-k").run()
    at.button(key="lr_find").click().run()
    job = ui.state.get_jobs().get(f"lrfind|{tiny_folder}|tf_efficientnet_lite0|top-k")
    deadline = time.time() + 120
    while job.state == "running" and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception and job.state == "done", job.error
    assert job.result["suggestion"] > 0


def test_every_strategy_previews_its_plan_without_warnings(monkeypatch, tmp_path):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("4_Train.py").run()
    for strategy in ("feature-extraction", "top-k", "full", "lp-ft", "custom"):
        at.selectbox(key="strategy").set_value(strategy).run()
        assert not at.exception and not at.error, strategy
        assert not at.warning, (strategy, [w.value for w in at.warning])
        assert any("Per-group plan" in c.value for c in at.caption), strategy
    at.selectbox(key="strategy").set_value("scratch").run()
    assert not at.exception
