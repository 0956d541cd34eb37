"""Train: make the plan once, see it as it will run (edit it: it becomes custom), start it, and watch every step live
from the run store. The new run, the plan editor and the live run are `ui.new_run`, `ui.plan_editor` and
`ui.live_run`."""

from __future__ import annotations

import streamlit as st

from ui.live_run import show_live
from ui.new_run import new_run_section
from ui.state import backbone, dataset_path, get_jobs, get_runner, remember

st.title("4 · Train")
runner, jobs = get_runner(), get_jobs()
path, name = dataset_path(), backbone()

run_ids = [r.id for r in runner.store.list()]
if new_run := st.session_state.pop("_new_run", None):  # a run just started: show it (the selector follows)
    remember(run_id=new_run)
    st.session_state["run_pick"] = new_run
    st.toast(f"Started run {new_run}; it is shown below.")
current = st.session_state.get("run_id")
if current not in run_ids:
    current = runner.active or (run_ids[0] if run_ids else None)
if run_ids:
    pick = st.selectbox(
        "Run",
        run_ids,
        index=run_ids.index(current),
        key="run_pick",
        help="every run in the store, newest first; its state is shown below",
    )
    if pick != st.session_state.get("run_id"):
        remember(run_id=pick)
        current = pick

with st.expander("New run: the plan", expanded=current is None):
    new_run_section(path, name, jobs, runner)

show_live(runner, current)
