"""Streamlit AppTests, one per page: empty state, bad input, a finished run and a running one."""
from __future__ import annotations

import os
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.state
from engine.config import TrainConfig
from engine.loop import Trainer
from engine.paths import REPO
from engine.runner import Runner
from engine.store import RunStore


def page(name: str) -> AppTest:
    return AppTest.from_file(str(REPO / "pages" / name), default_timeout=120)


class SlowFakeTrainer:
    """Writes the events of a live run without training, until cancelled."""

    def __init__(self, cfg, run, token):
        self.run, self.token = run, token

    def fit(self):
        from engine.events import EpochEnded, PhaseStarted, RunStarted, StepEnded
        groups = ["stem", "b0", "head"]
        self.run.set_status(state="running", pid=os.getpid())
        self.run.append(RunStarted(groups=groups))
        self.run.append(PhaseStarted(phase=1, name="train head", frozen=[True, True, False], lrs=[0, 0, 1e-3]))
        for step in range(1, 10_000):
            if self.token.cancelled:
                self.run.set_status(state="cancelled")
                return {}
            self.run.append(StepEnded(step=step, loss=1.0 / step, lrs=[0, 0, 1e-3]))
            if step % 5 == 0:
                self.run.append(EpochEnded(epoch=step // 5, total_epochs=100, val_acc=0.5, train_acc=0.6,
                                           train_loss=1.0, val_loss=1.1, grad_norm=[0, 0, 1], drift=[0, 0, 1]))
            time.sleep(0.02)
        return {}


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory):
    """A store holding one real, tiny, finished run."""
    import shutil
    from conftest import SAMPLE
    root = tmp_path_factory.mktemp("pages")
    data = root / "tiny"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (data / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:6]:
            shutil.copy(f, data / cls.name / f.name)
    store = RunStore(root / "runs")
    cfg = TrainConfig(data=str(data), strategy="top-k", top_k=1, head_epochs=1, finetune_epochs=1, views=1,
                      batch_size=4, val_fraction=0.34)
    run = store.create(cfg.to_dict(), "tiny")
    assert Trainer(cfg, run).fit()["status"] == "finished"
    return store


def use_runner(monkeypatch, store, trainer=Trainer) -> Runner:
    runner = Runner(store, trainer=trainer)
    monkeypatch.setattr(ui.state, "get_runner", lambda: runner)
    return runner


def test_data_page_sample_and_bad_dataset(bad_corpus, tmp_path):
    at = page("1_Data.py").run()
    assert not at.exception and at.metric[0].value == "15"
    at = page("1_Data.py")
    at.session_state["dataset"] = str(tmp_path / "nope")
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    at = page("1_Data.py")
    at.session_state["dataset"] = str(bad_corpus)
    at.run()
    assert not at.exception and any("skipped" in w.value for w in at.warning)


def test_backbone_page_available_and_missing(monkeypatch, tmp_path):
    at = page("2_Backbone.py").run()
    assert not at.exception and "bundled" in at.success[0].value
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = page("2_Backbone.py")
    at.session_state["backbone"] = "convnext_tiny"
    at.run()
    assert not at.exception and "--weights" in at.error[0].value


def test_probe_page_runs_in_the_background(tiny_folder):
    at = page("3_Probe.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    assert not at.exception and at.info  # empty state
    at.button(key="run_probe").click().run()
    job = ui.state.get_jobs().get(ui.state.probe_key(str(tiny_folder), "tf_efficientnet_lite0"))
    deadline = time.time() + 120
    while job.state == "running" and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception and job.state == "done"
    assert at.metric[0].value.endswith("%")


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


def test_compare_page(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("5_Compare.py").run()
    assert not at.exception and at.info
    use_runner(monkeypatch, finished_store)
    at = page("5_Compare.py").run()
    assert not at.exception and at.dataframe[0].value["status"].tolist() == ["finished"]


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
