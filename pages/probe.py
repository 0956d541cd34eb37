"""Probe: how good are the frozen features for this data, which head the evidence picks, and what to do next."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine import BANDS, TrainConfig, TransferLabError, band, catalogue_rows, load_data, plan_with_probe, shootout
from ui import charts
from ui.jobs import finished_job, job_bar, polling
from ui.state import backbone, dataset_path, get_jobs, in_chans, probe_key, root_for
from ui.errors import fragment

st.title("3 · Linear probe")
st.caption(
    "The probe freezes the backbone, turns every photo into feature vectors (after every stage, and of its "
    "mirror image too), and fits simple linear classifiers on top. How well they do says how well ImageNet "
    "features already fit your images; the best of them is where training starts."
)

path, name = dataset_path(), backbone()
jobs = get_jobs()
key = probe_key(path, name)
st.write(f"Dataset **{Path(path).name}** · backbone **{name}**")
if st.button("Run probe", type="primary", key="run_probe"):
    cfg = TrainConfig.create(data=path, backbone=name, strategy="auto", in_chans=in_chans(), data_root=root_for(path))
    jobs.start(key, lambda progress: plan_with_probe(cfg, progress))


@fragment(run_every=polling(jobs, key))
def show() -> None:
    if jobs.get(key) is None:
        st.info(
            "Run the probe to measure the features (minutes for a thousand photos on a laptop CPU the first time, "
            "several backbones included; seconds once their features are cached)."
        )
        return
    job = finished_job(jobs, key)
    if job is None:
        return
    planned = job.result
    plan, r = planned.plan, planned.probes[0]
    c = st.columns(4)
    c[0].metric("Final-feature probe (val)", f"{r.accuracy:.1%}")
    c[1].metric("Chosen head (val)", f"{plan.head.accuracy:.1%}")
    c[2].metric("Chosen head, cross-validated", f"{plan.head.cv:.1%}" if plan.head.cv is not None else "–")
    c[3].metric("Seconds", f"{r.seconds:.1f}", "cached features" if r.cached else "features computed")
    st.info(plan.reason)
    idx = band(r.accuracy)
    table = pd.DataFrame([(b[1], b[2]) for b in BANDS], columns=["final-feature probe", "the classic table suggests"])
    st.dataframe(
        table.style.apply(lambda row: ["background-color: #d8f3dc" if row.name == idx else ""] * 2, axis=1),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "The classic rule of thumb, from the probe on the final features. TransferLab's plan goes by the "
        "cross-validated evidence below instead, and keeps the probe's head unless training beats it."
    )
    if plan.head.candidates:
        rows = [
            {
                "backbone": h.backbone,
                "head on": h.label,
                "regularisation C": h.c,
                f"{plan.head.metric} (5-fold CV)": None if h.cv is None else f"{h.cv:.1%} ± {h.cv_sd:.1%}",
            }
            for h in plan.head.candidates
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(
            f"Every candidate head, scored on the {plan.data.n_outside_test} photos outside the test split "
            f"by cross-validation: less noisy than one validation split. The test photos are never read here."
        )
    if r.stage_curve:
        st.plotly_chart(charts.stage_curve(r.stage_curve, r.accuracy), width="stretch")
        st.caption(
            "A probe on the features after each stage. Where the curve peaks before the end, the last layers "
            "are too specialised to ImageNet, and the head reads the earlier stages instead."
        )
    st.plotly_chart(
        charts.confusion(r.confusion, r.classes, "Confusion matrix of the final-feature probe (val)"), width="stretch"
    )
    st.caption("Rows are the true classes, columns the predicted ones; off-diagonal cells are the probe's mistakes.")


show()

st.subheader("Shoot-out")
st.caption("Several backbones probed on the same data, each on its own cached features, ranked, with a verdict.")
available = [r.name for r in catalogue_rows() if r.available]
chosen = st.multiselect("Backbones", available, default=available[:3], key="shootout_names")
skey = f"shootout|{path}|{','.join(chosen)}"
if st.button("Run shoot-out", key="run_shootout") and chosen:
    try:
        cfg = TrainConfig.create(data=path, in_chans=in_chans(), data_root=root_for(path))
        ds = load_data(cfg)  # split as the Probe above and every plan split it
        jobs.start(skey, lambda progress: shootout(ds, chosen, progress=progress, in_chans=cfg.data.in_chans))
    except TransferLabError as e:
        st.error(str(e))


@fragment(run_every=polling(jobs, skey))
def show_shootout() -> None:
    job = jobs.get(skey)
    if job is None:
        return
    if job.state == "running":
        job_bar(job)
    elif job.state == "failed":
        st.error(job.error)
    else:
        st.success(job.result.verdict)
        st.plotly_chart(charts.shootout(job.result.rows), width="stretch")
        rows = [
            {
                "backbone": r["backbone"],
                "probe accuracy (val)": "–" if r["accuracy"] is None else f"{r['accuracy']:.1%}",
                "seconds": r["seconds"],
                "parameters (M)": r["params_m"],
                "weights": r["weights"] or "missing",
                "problem": r["problem"],
            }
            for r in job.result.rows
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


show_shootout()
