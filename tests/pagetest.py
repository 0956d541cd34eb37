"""Helpers for the page tests: AppTest factory, a fake live run, a runner swapped into the pages."""

from __future__ import annotations

import os
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.state
from engine.paths import REPO
from engine.service.runner import Fit, Runner
from engine.service.training import train


def page(name: str) -> AppTest:
    return AppTest.from_file(str(REPO / "pages" / name), default_timeout=120)


def slow_fake_fit(cfg, run, token) -> dict:
    """Stands in for `train`: writes the events of a live run without training, until cancelled."""
    from engine.runs.events import EpochEnded, PhaseStarted, RunStarted, SetupStep, StepEnded

    from conftest import a_plan

    groups = ["stem", "b0", "head"]
    run.set_status(state="running", pid=os.getpid())
    if not (run.path / "plan.json").exists():  # submitted without a plan: a long one, so the run stays live
        run.write_json("plan.json", a_plan(head_epochs=50, finetune_epochs=50, probe_accuracy=0.4).to_dict())
    run.append(SetupStep(name="load and check data", fraction=1.0))
    run.append(RunStarted(groups=groups))
    run.append(
        PhaseStarted(phase=1, name="train head", frozen=[True, True, False], lrs=[0, 0, 1e-3], steps_per_epoch=5)
    )
    for step in range(1, 10_000):
        if token.cancelled:
            run.set_status(state="cancelled")
            return {}
        run.append(
            StepEnded(
                step=step,
                epoch=step // 5 + 1,
                loss=1.0 / step,
                lrs=[0, 0, 1e-3],
                running_loss=1.0,
                running_acc=0.5,
                eta_s=100.0 - step,
            )
        )
        if step % 5 == 0:
            run.append(
                EpochEnded(
                    epoch=step // 5,
                    total_epochs=100,
                    val_acc=0.5,
                    train_acc=0.6,
                    train_loss=1.0,
                    val_loss=1.1,
                    grad_norm=[0, 0, 1],
                    drift=[0, 0, 1],
                )
            )
        time.sleep(0.02)
    return {}


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()


def use_runner(monkeypatch, store, fit: Fit = train) -> Runner:
    runner = Runner(store, fit=fit)
    monkeypatch.setattr(ui.state, "get_runner", lambda: runner)
    return runner
