"""Probe: how good are the frozen features for this data, and what to do next."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.catalogue import list_entries
from engine.data import load_dataset
from engine.errors import TransferLabError
from engine.probe import probe, shootout
from engine.weights import availability
from ui import charts
from ui.state import backbone, dataset_path, get_jobs, in_chans, probe_key

st.set_page_config(page_title="Probe · TransferLab", layout="wide")
st.title("3 · Linear probe")
st.caption("The probe freezes the backbone, turns every photo into a feature vector, and fits a simple linear "
           "classifier on top. Its accuracy says how well ImageNet features already fit your images.")

BANDS = [("above 85%", "feature extraction: train only a new head"),
         ("70–85%", "fine-tune the top 1–2 layer groups"),
         ("50–70%", "fine-tune the top 3–4 groups with discriminative learning rates"),
         ("below 50%", "full fine-tuning")]

path, name = dataset_path(), backbone()
jobs = get_jobs()
key = probe_key(path, name)
st.write(f"Dataset **{path}** · backbone **{name}**")
try:
    ds = load_dataset(path)
except TransferLabError as e:
    st.error(str(e))
    st.stop()
if st.button("Run probe", type="primary", key="run_probe"):
    chans = in_chans()
    jobs.start(key, lambda progress: probe(ds, name, per_stage=True, in_channels=chans, progress=progress))


def band_index(acc: float) -> int:
    return 0 if acc > 0.85 else 1 if acc >= 0.70 else 2 if acc >= 0.50 else 3


@st.fragment(run_every=0.5 if (j := jobs.get(key)) is not None and j.state == "running" else None)
def show() -> None:
    job = jobs.get(key)
    if job is None:
        st.info("Run the probe to measure the features (about 10 s on a laptop CPU for 1,100 photos; "
                "repeated runs use cached features).")
        return
    if job.state == "running":
        st.progress(job.fraction, text=f"{job.stage}…")
        return
    if job.state == "failed":
        st.error(job.error)
        return
    if st.session_state.get("_probe_shown") != key:
        st.session_state["_probe_shown"] = key
        st.rerun()
    r = job.result
    st.session_state["probe_result"] = {"key": key, "accuracy": r.accuracy,
                                        "recommendation": r.recommendation.to_dict()}
    c = st.columns(3)
    c[0].metric("Probe accuracy", f"{r.accuracy:.1%}")
    c[1].metric("Seconds", f"{r.seconds:.1f}", "cached features" if r.cached else "features computed")
    c[2].metric("Strategy", r.recommendation.strategy)
    idx = band_index(r.accuracy)
    table = pd.DataFrame(BANDS, columns=["probe accuracy", "what it suggests"])
    st.dataframe(table.style.apply(lambda row: ["background-color: #d8f3dc" if row.name == idx else ""] * 2, axis=1),
                 hide_index=True, width="stretch")
    st.info(r.recommendation.reason)
    if r.stage_curve:
        st.plotly_chart(charts.stage_curve(r.stage_curve, r.accuracy), width="stretch")
        st.caption("A probe on the features after each layer group. Where the curve peaks before the end, the last "
                   "layers are too specialised to ImageNet: that is where fine-tuning should start.")
    st.plotly_chart(charts.confusion(r.confusion, r.classes), width="stretch")
    st.caption("Rows are the true classes, columns the predicted ones; off-diagonal cells are the probe's mistakes.")


show()

st.subheader("Shoot-out")
st.caption("Several backbones probed on the same data, each on its own cached features, ranked.")
available = [e.name for e in list_entries() if availability(e.name)["available"]]
chosen = st.multiselect("Backbones", available, default=available[:3], key="shootout_names")
skey = f"shootout|{path}|{','.join(chosen)}"
if st.button("Run shoot-out", key="run_shootout") and chosen:
    jobs.start(skey, lambda progress: shootout(ds, chosen, progress=progress))


@st.fragment(run_every=0.5 if (s := jobs.get(skey)) is not None and s.state == "running" else None)
def show_shootout() -> None:
    job = jobs.get(skey)
    if job is None:
        return
    if job.state == "running":
        st.progress(job.fraction, text=f"probing {job.stage}…")
    elif job.state == "failed":
        st.error(job.error)
    else:
        rows = [{k: v for k, v in r.items() if k != "result"} for r in job.result]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


show_shootout()
