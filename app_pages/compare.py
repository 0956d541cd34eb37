"""Compare: every run with a model, by dataset: the probe-vs-run gap, the honest test number, curves side by side,
per-class accuracy, confusion and the worst mistakes."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine import has_model, viewable, worst_mistakes
from ui import charts
from ui.state import get_runner

st.title("5 · Compare runs")
runner = get_runner()
runs = {r.id: r for r in runner.store.list() if has_model(r)}
if not runs:
    st.info("No run with a model yet: start one on the Train page (or the Quick demo on the home page).")
    st.stop()


def row(run) -> dict:
    plan, m = run.read_json("plan.json") or {}, run.read_json("metrics.json") or {}
    status = run.status()
    test, lo_hi = m.get("test_accuracy"), m.get("test_interval") or [None, None]
    return {"run": run.id, "dataset": Path(plan.get("data") or "?").name, "backbone": plan.get("backbone"),
            "strategy": plan.get("strategy"), "status": status.get("state"), "probe": plan.get("probe_accuracy"),
            "val": m.get("best_val_acc", status.get("best_val_acc")), "test": test, "test_lo": lo_hi[0],
            "test_hi": lo_hi[1], "test photos": m.get("test_n"), "seconds": round(m["seconds"]) if m.get("seconds")
            else None}


rows = [row(r) for r in runs.values()]
datasets = sorted({r["dataset"] for r in rows})
shown = st.multiselect("Datasets", datasets, default=datasets[:1] if len(datasets) > 1 else datasets,
                       key="compare_datasets")
rows = [r for r in rows if r["dataset"] in shown]
table = pd.DataFrame([{"run": r["run"], "dataset": r["dataset"], "backbone": r["backbone"], "strategy": r["strategy"],
                       "status": r["status"], "linear probe (val)": r["probe"], "chosen on (val)": r["val"],
                       "test (never chosen on)": r["test"],
                       "test 95% interval": f"{r['test_lo']:.1%}–{r['test_hi']:.1%}" if r["test"] is not None else "",
                       "test photos": r["test photos"], "seconds": r["seconds"]} for r in rows])
st.dataframe(table, hide_index=True, width="stretch", column_config={
    c: st.column_config.NumberColumn(format="percent") for c in ("linear probe (val)", "chosen on (val)",
                                                                 "test (never chosen on)")})
if not rows:
    st.stop()
st.plotly_chart(charts.gap(rows), width="stretch")
st.caption("The probe is what frozen ImageNet features achieve with a linear head; the run's model is what the "
           "evidence chose and training added. The test bar, with its 95% interval, is the number to expect on new "
           "photos: nothing was chosen on those photos.")
picked = st.multiselect("Overlay the curves of", [r["run"] for r in rows], default=[r["run"] for r in rows][:3],
                        key="compare_overlay")
if picked:
    st.plotly_chart(charts.overlay({rid: runs[rid].events("epoch") for rid in picked}), width="stretch")
    st.caption("Validation accuracy per epoch of the selected runs; epoch 0 is each run's starting head.")

rid = st.selectbox("Run", [r["run"] for r in rows], key="compare_run")
metrics = runs[rid].read_json("metrics.json") or {}
if not metrics.get("classes"):
    st.info("This run stopped before its final scoring: resume it on the Train page for per-class results.")
    st.stop()
split = "test" if metrics.get("test_per_class") else "val"
st.plotly_chart(charts.per_class(metrics.get(f"{split}_per_class") or metrics["per_class"],
                                 f"Per-class accuracy ({split} photos)"), width="stretch")
st.caption("The classes to collect more photos for are the low bars.")
st.plotly_chart(charts.confusion(metrics.get(f"{split}_confusion") or metrics["confusion"], metrics["classes"],
                                 f"Confusion matrix ({split} photos)"), width="stretch")
st.subheader("Worst mistakes")
wrong = worst_mistakes(metrics)
st.caption(f"{split.capitalize()} photos the model got wrong, most confident first.")
if not wrong:
    st.success(f"No mistakes on the {split} photos.")
else:
    cols = st.columns(4)
    for i, w in enumerate(wrong):
        caption = f"true {w['true']} · predicted {w['predicted']} ({w['confidence'] or 0:.0%})"
        cols[i % 4].image(viewable(w["path"]), caption=caption, width="stretch")
