"""Compare: every run, the probe-vs-fine-tune gap, per-class accuracy, confusion and the worst mistakes."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.imageio import viewable
from ui import charts
from ui.state import get_runner

st.set_page_config(page_title="Compare · TransferLab", layout="wide")
st.title("5 · Compare runs")
runner = get_runner()
rows = []
for run in runner.store.list():
    cfg, status, metrics = run.config, run.status(), run.read_json("metrics.json") or {}
    rows.append({"run": run.id, "backbone": cfg.get("backbone"), "strategy": cfg.get("strategy"),
                 "status": status.get("state"), "probe accuracy": metrics.get("probe_accuracy"),
                 "best val accuracy": metrics.get("best_val_acc", status.get("best_val_acc")),
                 "seconds": round(metrics["seconds"]) if metrics.get("seconds") else None})
if not rows:
    st.info("No runs yet: start one on the Train page (or the Quick demo on the home page).")
    st.stop()
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch")

gap = table.dropna(subset=["best val accuracy"])
fig = go.Figure([go.Bar(name="linear probe", x=gap["run"], y=gap["probe accuracy"]),
                 go.Bar(name="fine-tuned", x=gap["run"], y=gap["best val accuracy"])])
fig.update_layout(barmode="group", height=340, title="Linear probe vs fine-tuned, per run", yaxis_tickformat=".0%")
st.plotly_chart(fig, width="stretch")
st.caption("The probe is what frozen ImageNet features achieve; the fine-tuned bar is what adapting the network "
           "added on top.")

finished = [r["run"] for r in rows if r["status"] == "finished"]
if not finished:
    st.stop()
rid = st.selectbox("Run", finished, key="compare_run")
metrics = runner.store.open(rid).read_json("metrics.json")
st.plotly_chart(charts.per_class(metrics["per_class"]), width="stretch")
st.caption("Accuracy on the validation photos of each class: the classes to collect more photos for.")
st.plotly_chart(charts.confusion(metrics["confusion"], metrics["classes"]), width="stretch")
st.subheader("Worst mistakes")
st.caption("Validation photos the model got wrong, most confident first.")
classes = metrics["classes"]
wrong = [(c, p, y, pr) for p, y, pr, c in zip(metrics["val_paths"], metrics["val_labels"], metrics["val_pred"],
                                             metrics.get("val_conf", [0.0] * len(metrics["val_paths"]))) if y != pr]
wrong.sort(key=lambda t: -t[0])
if not wrong:
    st.success("No mistakes on the validation set.")
else:
    cols = st.columns(4)
    for i, (conf, p, y, pr) in enumerate(wrong[:8]):
        caption = f"true {classes[y]} · predicted {classes[pr]} ({conf:.0%}) · {Path(p).name[:12]}"
        cols[i % 4].image(viewable(p), caption=caption, width="stretch")
