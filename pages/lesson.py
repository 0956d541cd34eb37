"""Why transfer learning works: the same network and photos from scratch, as a frozen feature extractor with a linear
probe, fine-tuned, and as auto picks, live, then compared on the test split."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from engine import ARM_TEXT, LESSON_TEXT, TERMINAL, RunView, lesson_progress, lesson_rows, lesson_sentence
from ui import charts
from ui.state import dataset_path, get_runner, init_session, lesson_ids, lesson_promise, start_lesson
from ui.errors import fragment

init_session()
st.title("Why transfer learning works")
runner = get_runner()
ids = lesson_ids()
if not ids:
    st.info(f"{LESSON_TEXT} On {Path(dataset_path()).name}, the dataset chosen on the Data page.")
    if st.button("▶ Show me why transfer learning works", key="lesson_start"):
        start_lesson(runner, dataset_path())
        st.rerun()
    st.stop()
live = any(runner.store.open(r).status().get("state") not in TERMINAL for r in ids.values())


@fragment(run_every=1.0 if live else None)
def experiment() -> None:
    snaps = {arm: runner.snapshot(rid) for arm, rid in ids.items()}
    views = {arm: RunView.of(s) for arm, s in snaps.items()}
    curves = {ARM_TEXT[arm]: v.epochs for arm, v in views.items()}
    states = {arm: v.state for arm, v in views.items()}
    running = any(state not in TERMINAL for state in states.values())
    if running:
        data = next(iter(views.values())).config.get("data", {}).get("path")  # the lesson's photos, not today's
        now = lesson_progress(views, lesson_promise(data) if data else None, time.time())
        left = "" if now.left_s is None else f" · about {now.left_s:.0f} s left for the four runs"
        st.info(f"Now: {ARM_TEXT[now.arm]}: {now.step}{left}")
    st.caption(" · ".join(f"{arm}: {state}" for arm, state in states.items()))
    if any(curves.values()):
        st.plotly_chart(charts.overlay({k: v for k, v in curves.items() if v}), width="stretch", key="lesson_curves")
        st.caption(
            "Validation accuracy per epoch of each run as it trains (epoch 0 is the head a run starts from). "
            "From scratch, the network starts at chance; the pretrained ones start high."
        )
    tune = views.get("finetune")
    if tune is not None and tune.phase is not None and tune.plan is not None:
        plan, phase = tune.plan, tune.phase
        st.plotly_chart(
            charts.freeze_strip(plan.phases.groups, plan.phases.labels, phase.frozen, phase.lrs),
            width="stretch",
            key="lesson_strip",
        )
        st.caption(
            "Fine-tuning: the top layer groups open up (trainable) while the rest keep their pretrained weights."
        )
    if tune is not None and tune.steps and tune.plan is not None:
        plan = tune.plan
        st.plotly_chart(
            charts.group_rates(tune.steps, plan.phases.groups, plan.phases.labels), width="stretch", key="lesson_rates"
        )
        st.caption(
            "Each trainable group's learning rate at every step: earlier groups learn more slowly than the "
            "head (discriminative rates)."
        )
    rows = lesson_rows(snaps)
    if any(r.test_accuracy is not None for r in rows):
        st.plotly_chart(charts.lesson(rows), width="stretch", key="lesson_result")
    if running:
        st.info(lesson_sentence(rows))
    else:
        st.success(lesson_sentence(rows))
    if not running and st.session_state.get("_lesson_done") != tuple(ids.values()):
        st.session_state["_lesson_done"] = tuple(ids.values())
        st.rerun()  # once, so the fragment stops polling


experiment()
