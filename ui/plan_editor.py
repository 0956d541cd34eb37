"""The Train page's plan editor: the plan as it will run, its rates, epochs and freeze map editable (any edit makes
it custom), its preflight, the learning-rate range test, and Start."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from engine import Jobs, Planned, Runner, TrainConfig, blocking, edit_plan, lr_find, preflight, rates_for
from ui import charts
from ui.jobs import job_bar, polling
from ui.state import draft, in_chans, keep_draft
from ui.errors import fragment


def plan_key_for(cfg: TrainConfig) -> str:
    """The key of `cfg`'s plan: its planning job, its draft edits and its applied rate."""
    return f"plan|{hash(cfg)}"


def show_plan(planned: Planned, cfg: TrainConfig, path: str, jobs: Jobs, runner: Runner) -> None:
    """The plan as it will run for `cfg` on dataset `path`; edits make it custom, and Start runs exactly what is shown
    (`runner` queues it); the learning-rate range test runs as a job of `jobs`."""
    plan_key = plan_key_for(cfg)
    plan = planned.plan
    if plan.data.path != path or plan.in_chans != in_chans():
        st.error(
            f"This plan belongs to {plan.data.path} ({plan.in_chans} channels), not to the dataset chosen now. Make "
            f"the plan again."
        )
        return
    applied = st.session_state.get("lr_applied", {}).get(plan_key)
    if applied:
        plan = edit_plan(cfg, plan, lrs=rates_for(plan, applied))
    st.info(plan.reason)
    if plan.target_reason:
        st.info(f"Photos from where the model will be used ({plan.target.n:,}): {plan.target_reason}")
    shown = draft(plan_key) or plan  # this tab's edits survive a reload
    c = st.columns(3)
    head_lr = c[0].number_input(
        "Head learning rate (phase 1)",
        1e-6,
        1.0,
        float(shown.phases.head_lr),
        format="%.0e",
        key=f"head_lr|{plan_key}",
        help="the rate of the head-only phase",
    )
    head_epochs = c[1].number_input("Head epochs (phase 1)", 0, 500, shown.phases.head_epochs, key=f"he|{plan_key}")
    ft_epochs = c[2].number_input(
        "Fine-tune epochs (phase 2)", 0, 500, shown.phases.finetune_epochs, key=f"fe|{plan_key}"
    )
    st.caption(
        "Per group, phase 2 (fine-tuning): untick 'frozen' to train a group (it gets the rate the decay rule "
        "implies), or change a rate. Any edit makes the plan custom."
    )
    frozen, lrs = [], []
    for i, (label, group) in enumerate(zip(plan.phases.labels, plan.phases.groups)):
        row = st.columns([2, 3, 1, 2], vertical_alignment="center")
        row[0].write(f"**{label}**")
        row[1].caption(group)
        frozen.append(row[2].checkbox("frozen", shown.phases.frozen[i], key=f"frozen|{plan_key}|{i}"))
        lrs.append(
            row[3].number_input(
                "rate",
                0.0,
                1.0,
                float(shown.phases.lrs[i]),
                format="%.0e",
                key=f"lr|{plan_key}|{i}|{applied}",
                label_visibility="collapsed",
                disabled=frozen[-1],
            )
        )
    plan = edit_plan(
        cfg,
        plan,
        frozen=tuple(frozen),
        lrs=tuple(lrs),
        head_lr=float(head_lr),
        head_epochs=int(head_epochs),
        finetune_epochs=int(ft_epochs),
    )
    keep_draft(plan_key, plan if plan.edited else None)
    if plan.edited:
        st.warning(f"Strategy: **custom** (edited from {planned.plan.strategy}); the run is named for it.")
    st.plotly_chart(
        charts.freeze_strip(
            list(plan.phases.groups), list(plan.phases.labels), list(plan.phases.frozen), list(plan.phases.lrs)
        ),
        width="stretch",
        key="plan_strip",
    )
    st.caption(
        f"Head on {plan.head.label}; starts from {'the linear probe' if plan.head.init == 'probe' else 'random'}"
        f"; augmentation {plan.phases.augment}; about {plan.cost.run_s:.0f} s to run; its caches need about "
        f"{plan.cost.ram_gb:.1f} GB of memory and {plan.cost.disk_gb:.1f} GB of disk."
    )
    findings = preflight(plan)
    for f in findings:
        (st.error if f.error else st.warning)(f"{f.message}. Fix: {f.fix}.")
    if not findings:
        st.success("Preflight: all checks passed.")
    lr_key = f"lrfind|{plan_key}"
    if st.button("Find a learning rate", key="lr_find"):
        jobs.start(lr_key, lambda progress: lr_find(cfg, progress=progress))
    lr_range_view(jobs, lr_key, plan_key)
    if st.button("Start training", type="primary", key="start", disabled=bool(blocking(findings))):
        st.session_state["_new_run"] = runner.submit(
            cfg, name=f"{plan.backbone}-{plan.strategy}", planned=replace(planned, plan=plan)
        )
        st.rerun()


def lr_range_view(jobs: Jobs, key: str, plan_key: str) -> None:
    """The learning-rate range test of job `key`: its progress, its curve, and a button that applies its suggestion
    to the plan `plan_key`."""

    @fragment(run_every=polling(jobs, key))
    def progress() -> None:
        job = jobs.get(key)
        if job is not None and job.state == "running":
            job_bar(job, "learning-rate range test…")
        elif job is not None and st.session_state.get("_lr_shown") != (key, job.started):
            st.session_state["_lr_shown"] = (key, job.started)
            st.rerun()

    progress()
    job = jobs.get(key)
    if job is None or job.state == "running":
        return
    if job.state == "failed":
        st.error(job.error)
    else:
        st.plotly_chart(charts.lr_range(job.result), width="stretch", key="lr_range")
        st.caption(
            "Loss while the learning rate grows. A good rate sits where the loss falls fastest, well before "
            "it shoots up."
        )
        if job.result.suggestion and st.button(f"Apply suggested rate {job.result.suggestion:.0e}", key="apply_lr"):
            st.session_state.setdefault("lr_applied", {})[plan_key] = job.result.suggestion
            st.rerun()
