"""Train: a plan pre-filled from the probe, preflight checks, and the run watched live from the run store."""
from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
import streamlit as st

from engine.catalogue import get_entry
from engine.config import TrainConfig, make_plan
from engine.errors import TransferLabError
from engine.features import InputSpec
from engine.groups import group_names
from engine.lrfind import lr_find
from engine.preflight import preflight
from engine.recommend import Recommendation
from ui import charts
from ui.state import backbone, dataset_path, get_jobs, get_runner, in_chans

st.set_page_config(page_title="Train · TransferLab", layout="wide")
st.title("4 · Fine-tune")
runner = get_runner()
path, name = dataset_path(), backbone()
probe = st.session_state.get("probe_result")
rec = Recommendation.from_dict(probe["recommendation"]) if probe else None


@st.cache_data(show_spinner=False)
def cached_group_names(backbone: str) -> list[str]:
    return group_names(backbone)


def _lr_job_running(key: str) -> bool:
    job = get_jobs().get(key)
    return job is not None and job.state == "running"


def lr_range_view(key: str) -> None:
    @st.fragment(run_every=0.5 if _lr_job_running(key) else None)
    def view() -> None:
        job = get_jobs().get(key)
        if job is None:
            return
        if job.state == "running":
            st.progress(job.fraction, text="learning-rate range test…")
        elif job.state == "failed":
            st.error(job.error)
        else:
            st.plotly_chart(charts.lr_range(job.result), width="stretch", key="lr_range")
            st.caption("Loss while the learning rate grows. A good head rate sits where the loss falls fastest, "
                       "well before it shoots up.")
        if job.state != "running" and st.session_state.get("_lr_shown") != (key, job.started):
            st.session_state["_lr_shown"] = (key, job.started)
            st.rerun()  # once, so the fragment stops polling
    view()


def current_run_id() -> str | None:
    """The run this page shows: chosen in this session, else the active one, else the newest (reload-safe)."""
    rid = st.session_state.get("run_id") or runner.active
    if rid is None:
        runs = runner.store.list()
        rid = runs[0].id if runs else None
    return rid


with st.expander("Plan", expanded=current_run_id() is None):
    st.write(f"Dataset **{path}** · backbone **{name}**" + (f" · **{in_chans()} channels** (first convolution "
             f"adapted from RGB)" if in_chans() != 3 else ""))
    if rec:
        st.info(f"From the probe ({probe['accuracy']:.1%}): {rec.reason}")
    else:
        st.caption("Run the probe first to get a recommendation; 'auto' runs it for you at the start.")
    strategies = ["auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch", "custom"]
    c = st.columns(4)
    strategy = c[0].selectbox("Strategy", strategies, key="strategy")
    lr = c[1].number_input("Head learning rate (auto: from the plan)", 1e-6, 1e-1, 1e-3, format="%.0e", key="lr")
    decay = c[2].number_input("Decay per group below the head", 0.0, 1.0, 0.1, key="lr_decay")
    top_k = c[3].number_input("Top-k groups", 0, 20, 2, key="top_k")
    c = st.columns(4)
    head_epochs = c[0].number_input("Head epochs", 0, 200, rec.head_epochs if rec else 10, key="head_epochs")
    ft_epochs = c[1].number_input("Fine-tune epochs", 0, 200, rec.finetune_epochs if rec else 15, key="ft_epochs")
    augment = c[2].selectbox("Augmentation", ["from the plan", "basic", "none", "randaugment", "autoaugment"],
                             key="augment")
    balance = c[3].selectbox("Imbalance", ["none", "sampler", "weighted-loss", "focal"], key="balance")
    groups = list(rec.groups) if rec and strategy == "auto" else cached_group_names(name)
    custom_freeze = None
    if strategy == "custom":  # start from the recommendation's map when it fits this backbone, else head only
        fits = rec is not None and len(rec.freeze) == len(groups)
        custom_freeze = tuple(rec.freeze) if fits else tuple([True] * (len(groups) - 1) + [False])
    try:
        cfg = TrainConfig(data=path, backbone=name, strategy=strategy, lr=None if strategy == "auto" else lr,
                          lr_decay=decay, top_k=int(top_k), head_epochs=int(head_epochs),
                          finetune_epochs=int(ft_epochs), augment=None if augment == "from the plan" else augment,
                          balance=balance, freeze=custom_freeze, in_chans=in_chans())
        if strategy != "auto" or rec:
            plan = make_plan(cfg, groups, rec)
            if plan.head_stage is None:
                st.caption("Per-group plan: untick 'frozen' or change a rate to make it your own (strategy becomes "
                           "custom).")
                table = pd.DataFrame({"group": list(plan.groups), "frozen": list(plan.frozen),
                                      "learning rate": list(plan.lrs)})
                edited = st.data_editor(table, hide_index=True, disabled=["group"], key=f"plan_editor_{strategy}")
                if not edited.equals(table):
                    frozen = tuple(bool(f) for f in edited["frozen"])
                    lrs = tuple(0.0 if f else float(x) for f, x in zip(frozen, edited["learning rate"]))
                    cfg = replace(cfg, strategy="custom", freeze=frozen, lrs=lrs)
                    plan = make_plan(cfg, groups)
            else:
                st.caption("This plan cuts the network after the best stage; choose another strategy to edit groups.")
            st.plotly_chart(charts.freeze_strip(list(plan.groups), list(plan.frozen), list(plan.lrs)),
                            width="stretch", key="plan_strip")
            for f in preflight(cfg, plan, InputSpec.for_backbone(name, cfg.in_chans)):
                st.warning(f"{f.message}. Fix: {f.fix}.")
    except (ValueError, TransferLabError) as e:
        st.error(str(e))
        cfg = None
    if st.button("Find a learning rate", key="lr_find", disabled=cfg is None):
        get_jobs().start(f"lrfind|{path}|{name}|{strategy}", lambda progress: lr_find(cfg, progress=progress))
    lr_range_view(f"lrfind|{path}|{name}|{strategy}")
    if st.button("Start training", type="primary", key="start", disabled=cfg is None):
        st.session_state["run_id"] = runner.submit(cfg, name=f"{get_entry(name).name}-{strategy}")
        st.rerun()


def live_interval() -> float | None:
    rid = current_run_id()
    if rid is None:
        return None
    live = runner.store.open(rid).status().get("state") in ("running", "queued")
    return 0.8 if live else None  # the rerun itself takes ~0.1 s: updates arrive at least once a second


@st.fragment(run_every=live_interval())
def live() -> None:
    rid = current_run_id()
    if rid is None:
        st.info("No run yet. Choose a plan above and press Start.")
        return
    snap = runner.snapshot(rid)
    status, events = snap["status"], snap["events"]
    state = status.get("state", "unknown")
    epochs = [e for e in events if e["kind"] == "epoch"]
    steps = [e for e in events if e["kind"] == "step"]
    phases = [e for e in events if e["kind"] == "phase_started"]
    started = [e for e in events if e["kind"] == "run_started"]
    st.subheader(f"Run {rid} · {state}")
    st.caption(f"{'Live' if state in ('running', 'queued') else 'Final'} · updated {time.strftime('%H:%M:%S')}")
    total = epochs[-1]["total_epochs"] if epochs else status.get("total_epochs") or 1
    done = epochs[-1]["epoch"] if epochs else 0
    eta = epochs[-1]["eta_s"] if epochs else None
    st.progress(min(1.0, done / max(1, total)),
                text=f"epoch {done} of {total}" + (f" · about {eta:.0f} s left" if eta and state == "running" else ""))
    c = st.columns(4)
    if state in ("running", "queued") and c[0].button("Stop", key="stop"):
        runner.cancel(rid)
    if state == "interrupted" and c[0].button("Resume", key="resume", type="primary"):
        runner.resume(rid)
        st.rerun()
    if epochs:
        c[1].metric("Validation accuracy", f"{epochs[-1]['val_acc']:.1%}")
        c[2].metric("Best so far", f"{max(e['val_acc'] for e in epochs):.1%}")
        c[3].metric("Images / s", f"{epochs[-1]['images_per_s']:.0f}")
    probe_acc = (snap["metrics"] or {}).get("probe_accuracy") or (probe or {}).get("accuracy")
    acc_fig, loss_fig = charts.training_curves(epochs, probe_acc)
    left, right = st.columns(2)
    left.plotly_chart(acc_fig, width="stretch", key="acc_chart")
    right.plotly_chart(loss_fig, width="stretch", key="loss_chart")
    st.caption("Accuracy on photos the model trains on and on held-out photos; the dotted line is the linear probe. "
               "A widening gap between train and validation means the model starts memorising.")
    group_names = started[-1]["groups"] if started else []
    if phases:
        ph = phases[-1]
        st.plotly_chart(charts.freeze_strip(group_names, ph["frozen"], ph["lrs"]), width="stretch", key="strip")
        st.caption(f"Phase {ph['phase']} ({ph['name']}, {ph['path']}). Frozen groups keep their ImageNet weights.")
    if steps:
        st.plotly_chart(charts.group_rates(steps, group_names), width="stretch", key="lr_chart")
        st.caption("Each group's learning rate per step: warm-up, then cosine decay; earlier groups learn slower.")
    if epochs:
        a, b = st.columns(2)
        a.plotly_chart(charts.group_bars(group_names, epochs[-1]["grad_norm"], "Gradient norm per group", True),
                       width="stretch", key="grad_chart")
        b.plotly_chart(charts.group_bars(group_names, epochs[-1]["drift"], "Drift from pretrained ||w-w0||/||w0||"),
                       width="stretch", key="drift_chart")
    if state == "failed":
        st.error((snap["metrics"] or {}).get("error") or status.get("error", "the run failed"))
    if state in ("finished", "cancelled", "failed") and st.session_state.get("_final_shown") != rid:
        st.session_state["_final_shown"] = rid
        st.rerun()  # once, so the fragment stops polling


live()
