"""Train: make the plan once, see it as it will run (edit it: it becomes custom), start it, and watch every step live
from the run store."""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from engine import (
    ADAPT_CHOICES,
    BALANCE,
    DEFAULT_BUDGET_S,
    PRESETS,
    LIVE,
    RESUMABLE,
    STRATEGIES,
    TARGET_NORM,
    TERMINAL,
    TrainConfig,
    TransferLabError,
    blocking,
    edit_plan,
    finetune_anyway,
    get_plan,
    kept_the_head,
    lr_find,
    no_epoch_sentence,
    preflight,
    rates_for,
    run_header,
    run_summary,
    RunView,
    why_kept,
)
from ui import charts
from ui.jobs import job_bar, polling
from ui.state import (
    backbone,
    dataset_path,
    draft,
    get_jobs,
    get_runner,
    in_chans,
    keep_choices,
    keep_draft,
    remember,
    restore_choices,
    root_for,
)

st.title("4 · Train")
runner, jobs = get_runner(), get_jobs()
path, name = dataset_path(), backbone()

NEW_RUN_CHOICES = {
    "strategy": [s for s in STRATEGIES if s != "custom"],
    "budget": range(30, 36001),
    "augment": ["from the plan", *PRESETS],
    "balance": list(BALANCE),
    "adapt": list(ADAPT_CHOICES),
    "target_norm": list(TARGET_NORM),
    "target_bn": list(TARGET_NORM),
}
LOSS_CAPTION = (
    "Loss per epoch. The training loss includes label smoothing and dropout, the validation loss does "
    "not, so validation can sit below training; what matters is that both fall and do not drift apart."
)
GRAD_CAPTION = (
    "Gradient norm per group, averaged over the epoch's steps (log scale): how hard each trainable group "
    "is being pushed. Frozen groups have none; a group far above the others dominates the update."
)
DRIFT_CAPTION = (
    "Drift per group: how far its weights moved from the pretrained ones, as a fraction of their size. "
    "A few percent is gentle fine-tuning; tens of percent means the pretrained features are being "
    "overwritten."
)


# ---------------------------------------------------------------- which run this page shows
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


# ---------------------------------------------------------------- a new run: the plan, made once
def show_plan(planned) -> None:
    """The plan as it will run; edits make it custom, and Start runs exactly what is shown."""
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
    lr_range_view(lr_key, plan_key)
    if st.button("Start training", type="primary", key="start", disabled=bool(blocking(findings))):
        st.session_state["_new_run"] = runner.submit(
            cfg, name=f"{plan.backbone}-{plan.strategy}", planned=replace(planned, plan=plan)
        )
        st.rerun()


def lr_range_view(key: str, plan_key: str) -> None:
    @st.fragment(run_every=polling(jobs, key))
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


with st.expander("New run: the plan", expanded=current is None):
    st.write(
        f"Dataset **{path}** · backbone **{name}**"
        + (f" · **{in_chans()} channels** (first convolution adapted from RGB)" if in_chans() != 3 else "")
    )
    restore_choices(NEW_RUN_CHOICES)  # a reload keeps the choices below (they are in the URL)
    c = st.columns(4)
    strategy = c[0].selectbox(
        "Strategy",
        NEW_RUN_CHOICES["strategy"],
        key="strategy",
        help="auto chooses by evidence within the time budget; the others follow fixed rules. "
        "Editing the plan below makes it custom.",
    )
    budget_range = NEW_RUN_CHOICES["budget"]
    budget = c[1].number_input(
        "Time budget (s, auto)",
        budget_range.start,
        budget_range[-1],
        int(DEFAULT_BUDGET_S),
        step=30,
        key="budget",
        disabled=strategy != "auto",
    )
    augment = c[2].selectbox("Augmentation", NEW_RUN_CHOICES["augment"], key="augment")
    balance = c[3].selectbox("Imbalance", NEW_RUN_CHOICES["balance"], key="balance")
    target = st.session_state.get("target") or ""
    t = st.columns(4)
    adapt = t[0].selectbox(
        "Adaptation to the target photos",
        NEW_RUN_CHOICES["adapt"],
        key="adapt",
        disabled=not target,
        help="DANN or MMD in the fine-tuning phase, with the target photos given on the Data page (no labels); "
        "auto: auto's plan tries each on the cached features and keeps one only on evidence.",
    )
    norm = t[1].selectbox(
        "Head standardised on the target photos",
        NEW_RUN_CHOICES["target_norm"],
        key="target_norm",
        disabled=not target,
        help="The head reads its input standardised on the target photos' own statistics (one pass, no weight "
        "changes); chosen on evidence unless set.",
    )
    bn = t[2].selectbox(
        "BatchNorm re-estimated on the target photos",
        NEW_RUN_CHOICES["target_bn"],
        key="target_bn",
        disabled=not target or TARGET_NORM[norm] is False,
        help="The saved model's BatchNorm statistics averaged over a sample of the target photos (AdaBN; val keeps "
        "the backbone's own); chosen on evidence unless set. Off while the head keeps the training photos' "
        "statistics: the re-estimated features are read on their own.",
    )
    t[3].caption(f"Target photos: {target}" if target else "Target photos: none (give them on the Data page)")
    keep_choices(NEW_RUN_CHOICES)
    cfg = TrainConfig.create(
        data=path,
        backbone=name,
        strategy=strategy,
        in_chans=in_chans(),
        balance=balance,
        data_root=root_for(path),
        budget=float(budget) if strategy == "auto" else None,
        augment=None if augment == "from the plan" else augment,
        **(
            {
                "target": target,
                "adapt": ADAPT_CHOICES[adapt],
                "target_norm": TARGET_NORM[norm],
                "target_bn": False if TARGET_NORM[norm] is False else TARGET_NORM[bn],
            }
            if target
            else {}
        ),
    )
    plan_key = f"plan|{hash(cfg)}"
    if st.button("Make the plan", type="primary", key="make_plan"):
        jobs.start(plan_key, lambda progress: get_plan(cfg, progress))

    @st.fragment(run_every=polling(jobs, plan_key))
    def plan_progress() -> None:
        job = jobs.get(plan_key)
        if job is None:
            st.caption(
                "Make the plan to see exactly what will run: auto probes the backbones first (about a minute "
                "per 1,000 photos on a laptop CPU, seconds when the features are cached)."
            )
        elif job.state == "running":
            job_bar(job)
        elif job.state == "failed":
            st.error(job.error)
        elif st.session_state.get("_plan_shown") != (plan_key, job.started):
            st.session_state["_plan_shown"] = (plan_key, job.started)
            st.rerun()  # once: the plan is drawn by the page, outside this fragment

    plan_job = jobs.get(plan_key)
    if plan_job is not None and plan_job.state == "done":
        show_plan(plan_job.result)
    else:
        plan_progress()


# ---------------------------------------------------------------- the run, live
ENDED = TERMINAL | RESUMABLE  # the run is not training: the fragment stops (finished) or slows down


def live_interval() -> float | None:
    """0.8 s while the run trains; 3 s while it is stopped (another tab or the CLI may resume it); none once done."""
    if current is None:
        return None
    state = runner.store.open(current).status().get("state")
    if state in ENDED:  # this page run already paces the fragment for an ended run: no rerun needed to follow it
        st.session_state["_final_shown"] = (current, state)
    return 0.8 if state in LIVE else None if state == "finished" else 3.0


@st.fragment(run_every=live_interval())
def live() -> None:
    if current is None:
        st.info("No run yet. Make a plan above and press Start, or try the Quick demo on the home page.")
        return
    view = RunView.of(runner.snapshot(current))
    st.subheader(f"Run {current} · {view.state}")
    st.caption(
        f"{run_header(view.config, view.plan)} · {'live' if view.live else 'final'} · "
        f"updated {time.strftime('%H:%M:%S')}"
    )
    progress_bars(view)
    controls(view.state)
    if view.state == "finished" and view.result:
        st.success(run_summary(view.result, view.plan))
        if kept_the_head(view.plan):
            anyway(view)
    if view.state == "failed":
        st.error(view.error or "the run failed")
    if view.epochs:
        headline(view)
    charts_for(view)
    if view.state in ENDED and st.session_state.get("_final_shown") != (current, view.state):
        st.session_state["_final_shown"] = (current, view.state)
        st.rerun()  # once, so the fragment's pace follows the state


def headline(view: RunView) -> None:
    """The run's numbers: the last and the best epoch on val, the test score (or the epoch's training accuracy so
    far), the training pace."""
    r, last = view.result, view.epochs[-1]
    c = st.columns(4)
    c[0].metric("Validation accuracy, last epoch", f"{last['val_acc']:.1%}")
    c[1].metric("Best on val (the run keeps it)", f"{view.best_val_acc:.1%}")
    if r is not None and r.test_accuracy is not None:
        c[2].metric(
            "Test accuracy (never chosen on)",
            f"{r.test_accuracy:.1%}",
            f"95% interval {r.test_interval[0]:.1%}–{r.test_interval[1]:.1%}",
            delta_color="off",
        )
    elif view.steps:
        c[2].metric("Training accuracy, this epoch so far", f"{view.steps[-1]['running_acc']:.1%}")
    if last["epoch"] > 0:
        on = (view.phase or {}).get("path", "")
        c[3].metric(
            "Images / s, last epoch",
            f"{last['images_per_s']:.0f}",
            on if on.startswith("cached") else None,
            delta_color="off",
            delta_arrow="off",
            help="Training images per second. On cached features or activations the frozen part of the "
            "network is not run again, so this is far above a full forward pass.",
        )


def anyway(view: RunView) -> None:
    """Auto kept the linear head: why, in its plan's words, and a run that fine-tunes anyway."""
    st.info(f"Why no fine-tuning: {why_kept(view.plan)}")
    memo = st.session_state.setdefault("_anyway", {})
    if current not in memo:  # reads the run's data once per session
        try:
            memo[current] = finetune_anyway(view.config, runner.store.open(current).path)
        except TransferLabError as e:
            memo[current] = str(e)
    if isinstance(memo[current], str):
        st.caption(f"Fine-tuning anyway is not possible for this run: {memo[current]}")
        return
    cfg, planned = memo[current]
    if st.button(f"Fine-tune anyway (about {planned.plan.cost.run_minutes} min)", key="anyway"):
        new = runner.submit(cfg, name=f"{planned.plan.backbone}-finetune-anyway", planned=planned)
        st.session_state["_new_run"] = new
        st.rerun(scope="app")


def progress_bars(view: RunView) -> None:
    """What the run is doing now (a named step with its progress, or the epochs) and the one time left."""
    for bar in view.bars():
        st.progress(bar.fraction, text=bar.text)
    left_s = view.time_left(time.time())
    if left_s is not None:  # the one time left on the page
        st.caption(f"The whole run: about {left_s:.0f} s left (from the plan's estimate and the pace measured so far).")


def controls(state: str) -> None:
    c = st.columns(4)
    if state in LIVE and c[0].button("Stop", key="stop"):
        st.toast(f"Stop: {runner.cancel(current)}")
    if state in RESUMABLE and c[0].button("Resume", key="resume", type="primary"):
        try:
            runner.resume(current)
        except TransferLabError as e:
            st.error(str(e))
            return
        st.rerun()


def charts_for(view: RunView) -> None:
    """Accuracy and loss per epoch, the freeze map, each group's rate, gradient norms and drift."""
    plan, epochs, steps, state = view.plan, view.epochs, view.steps, view.state
    groups, labels = (list(plan.phases.groups), list(plan.phases.labels)) if plan else ([], [])
    running, trained = view.in_epoch, view.trained
    if trained or running:
        acc_fig, loss_fig = charts.training_curves(epochs, plan.head.probe_accuracy if plan else None, running)
        left, right = st.columns(2)
        left.plotly_chart(acc_fig, width="stretch", key="acc_chart")
        left.caption(
            "Accuracy on the photos the model trains on and on the validation photos (the split that "
            "chooses the epoch); epoch 0 is the linear head the run starts from, the dotted line the probe on "
            "the final features. A widening train/validation gap means the model starts memorising."
        )
        right.plotly_chart(loss_fig, width="stretch", key="loss_chart")
        right.caption(LOSS_CAPTION)
    elif epochs:
        st.info(no_epoch_sentence(epochs[0]["val_acc"], plan, state))
    ph = view.phase
    if groups and ph is not None and ph["frozen"]:
        st.plotly_chart(charts.freeze_strip(groups, labels, ph["frozen"], ph["lrs"]), width="stretch", key="strip")
        st.caption(
            f"Freeze map of phase {ph['phase']} ({ph['name']}, {ph['path']}). Frozen groups keep their "
            f"pretrained weights; hover a group for its timm name."
        )
    elif groups and state in TERMINAL:
        st.caption("No training phase ran: every layer group kept its pretrained weights.")
    if steps:
        st.plotly_chart(charts.group_rates(steps, groups, labels), width="stretch", key="lr_chart")
        st.caption(
            "Each trainable group's learning rate at every step: a warm-up, then cosine decay; earlier groups "
            "learn more slowly than the head."
        )
    if any(e.get("adapt") for e in trained):
        st.plotly_chart(charts.domain_curves(trained), width="stretch", key="adapt_chart")
        st.caption(
            "Adaptation to the target photos: DANN's domain classifier tells training photos from target photos "
            "(its accuracy falls towards 50% as the features it reads stop differing), or the MMD between the two "
            "sets; the dotted line is the adaptation's weight, ramped up from 0."
        )
    if trained:
        a, b = st.columns(2)
        a.plotly_chart(
            charts.group_bars(groups, trained[-1]["grad_norm"], "Gradient norm per group", True, labels),
            width="stretch",
            key="grad_chart",
        )
        a.caption(GRAD_CAPTION)
        b.plotly_chart(
            charts.group_bars(groups, trained[-1]["drift"], "Drift from the pretrained weights", labels=labels),
            width="stretch",
            key="drift_chart",
        )
        b.caption(DRIFT_CAPTION)


live()
