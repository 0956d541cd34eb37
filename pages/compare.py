"""Compare: every run with a model, by dataset: the probe-vs-run gap, the honest test number, curves side by side,
per-class accuracy, confusion and the worst mistakes."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import pandas as pd
import streamlit as st

from engine import (
    VAL_COLUMN_HELP,
    RunResult,
    compare_row,
    dataset_labels,
    explain_run,
    gap_sentence,
    has_model,
    paired_test,
    viewable,
    worst_mistakes,
)
from ui import charts
from ui.state import get_runner

st.title("5 · Compare runs")
runner = get_runner()
runs = {r.id: r for r in runner.store.list() if has_model(r)}
if not runs:
    st.info("No run with a model yet: start one on the Train page (or the Quick demo on the home page).")
    st.stop()


rows = [compare_row(r) for r in runs.values()]
labels = dataset_labels(rows)  # datasets by their path: two of one name stay apart
datasets = sorted(labels, key=labels.get)
shown = st.multiselect(
    "Datasets",
    datasets,
    default=datasets[:1] if len(datasets) > 1 else datasets,
    format_func=labels.get,
    key="compare_datasets",
)
rows = [replace(r, dataset=labels[r.dataset_path]) for r in rows if r.dataset_path in shown]
COLUMN_HELP = {"linear probe (val)": VAL_COLUMN_HELP["probe"], "chosen on (val)": VAL_COLUMN_HELP["chosen"]}
table = pd.DataFrame(
    [
        {
            "run": r.run,
            "dataset": r.dataset,
            "backbone": r.backbone,
            "strategy": r.strategy,
            "status": r.status,
            "linear probe (val)": r.probe,
            "chosen on (val)": r.val,
            "starting head (test)": r.start_test,
            "chosen model (test)": r.test,
            "test 95% interval": f"{r.test_interval[0]:.1%}–{r.test_interval[1]:.1%}" if r.test_interval else "",
            "best epoch": r.best_epoch,
            "test photos": r.test_n,
            "seconds": round(r.seconds) if r.seconds is not None else None,
        }
        for r in rows
    ]
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        c: st.column_config.NumberColumn(format="percent", help=COLUMN_HELP.get(c))
        for c in ("linear probe (val)", "chosen on (val)", "starting head (test)", "chosen model (test)")
    },
)
if not rows:
    st.stop()
st.plotly_chart(charts.gap(rows), width="stretch")
st.caption(
    "Each run starts from the linear probe's head on the frozen pretrained network (epoch 0) and keeps "
    "whichever epoch is best on val. Both are scored on the test split, which nothing was chosen on; the "
    "label gives the accuracy and the seconds to reach it."
)
st.info(gap_sentence(rows))
tested = [r.run for r in rows if r.test is not None][:8]
if len(tested) >= 2:
    st.subheader("Is one run really better?")
    results = {rid: RunResult.read(runs[rid]) for rid in tested}  # each run's result read once
    tests = [paired_test(results[a], results[b]) for a, b in combinations(tested, 2)]
    paired = [t for t in tests if t is not None]
    if paired:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "run A": t.a,
                        "run B": t.b,
                        "test photos": t.n,
                        "right by A only": t.only_a,
                        "right by B only": t.only_b,
                        "A minus B": t.difference,
                        "p (McNemar)": t.p_value,
                        "verdict": t.verdict,
                    }
                    for t in paired
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"A minus B": st.column_config.NumberColumn(format="percent")},
        )
    st.caption(
        "Each pair of runs on the same test photos: only the photos one model got right and the other wrong tell "
        "them apart, and a run is called better only when that split is too uneven to be chance at 95%."
        + (f" {tests.count(None)} pair(s) scored different test photos and cannot be paired." if None in tests else "")
    )
picked = st.multiselect(
    "Overlay the curves of", [r.run for r in rows], default=[r.run for r in rows][:3], key="compare_overlay"
)
if picked:
    st.plotly_chart(charts.overlay({rid: runs[rid].events("epoch") for rid in picked}), width="stretch")
    st.caption("Validation accuracy per epoch of the selected runs; epoch 0 is each run's starting head.")

rid = st.selectbox("Run", [r.run for r in rows], key="compare_run")
result = RunResult.read(runs[rid])
if result is None or not result.classes:
    st.info("This run stopped before its final scoring: resume it on the Train page for per-class results.")
    st.stop()
split = result.scored_split
per_class, confusion = result.class_scores()
st.plotly_chart(charts.per_class(per_class, f"Per-class accuracy ({split} photos)"), width="stretch")
st.caption("The classes to collect more photos for are the low bars.")
st.plotly_chart(
    charts.confusion(
        confusion,
        result.classes,
        f"Confusion matrix ({split} photos)",
    ),
    width="stretch",
)
st.subheader("Worst mistakes")
wrong = worst_mistakes(result)
st.caption(f"{split.capitalize()} photos the model got wrong, most confident first.")
if not wrong:
    st.success(f"No mistakes on the {split} photos.")
else:
    cols = st.columns(4)
    for i, w in enumerate(wrong):
        caption = f"true {w.true} · predicted {w.predicted} ({w.confidence or 0:.0%})"
        cols[i % 4].image(viewable(w.path), caption=caption, width="stretch")
    if st.toggle("Where the models look on these mistakes", key="cam_mistakes"):
        run = runs[rid]
        shown = wrong[:4]
        for w, (chosen, start) in zip(shown, explain_run(run, [w.path for w in shown])):
            a, b, c = st.columns(3)
            a.image(viewable(w.path), caption=f"true {w.true}", width=200)
            b.image(chosen.overlay, caption=f"the chosen model: {w.predicted}", width=200)
            if start is not None:
                c.image(start.overlay, caption="the starting head (the probe's)", width=200)
        st.caption(
            "Grad-CAM for the class the chosen model predicted: the warm areas pushed each model towards it. A "
            "mistake made by looking at the background shows here."
        )
