"""The Train page's new run: the choices (strategy, budget, augmentation, imbalance, adaptation to target photos),
kept in the URL; Make the plan as a background job; then the plan editor."""

from __future__ import annotations

import streamlit as st

from engine import BUDGETED, DEFAULT_BUDGET_S, PRESETS, STRATEGIES, TARGET_HEAD, TARGET_NORM, Jobs, Runner, TrainConfig
from engine import ADAPT_CHOICES, BALANCE, MAX_PARAMS
from engine import get_plan, teachers_for
from ui.jobs import job_bar, polling
from ui.plan_editor import plan_key_for, show_plan
from ui.state import in_chans, keep_choices, restore_choices, root_for
from ui.errors import fragment

NEW_RUN_CHOICES = {
    "strategy": [s for s in STRATEGIES if s != "custom"],
    "budget": range(30, 36001),
    "budget_cap": range(0, 36001),
    "augment": ["from the plan", *PRESETS],
    "balance": list(BALANCE),
    "adapt": list(ADAPT_CHOICES),
    "target_norm": list(TARGET_NORM),
    "target_bn": list(TARGET_NORM),
    "target_head": list(TARGET_HEAD),
    "max_params": range(0, MAX_PARAMS),
}


def new_run_section(path: str, name: str, jobs: Jobs, runner: Runner) -> None:
    """A new run on dataset `path` with backbone `name`: its choices, its plan (made by a job of `jobs`) and Start
    (queued on `runner`)."""
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
    budget = budget_input(c[1], strategy)
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
    head = t[3].selectbox(
        "Head adapted to the target photos",
        NEW_RUN_CHOICES["target_head"],
        key="target_head",
        disabled=not target,
        help="CORAL, T3A, SHOT or the class mix (EM), made from the cached features in seconds; auto: each is scored "
        "by the accuracy expected on the target photos and kept only when it is ahead beyond that estimate's "
        "interval with val at most a point below.",
    )
    st.caption(f"Target photos: {target}" if target else "Target photos: none (give them on the Data page)")
    teachers = teachers_for(path, runner.store)
    d = st.columns([3, 1])
    teacher = d[0].selectbox(
        "Learn from a trained run (distillation)",
        ["none", *teachers],
        format_func=lambda t: teachers.get(t, t),
        key="distill_from",
        disabled=not teachers,
        help="A smaller model that must fit a phone or a board learns from a larger run's answers on the training "
        "photos as well as from the labels (its second choices too). Runs trained on this folder are listed.",
    )
    max_params = d[1].number_input(
        "Parameter budget (0: none)",
        min_value=0,
        max_value=MAX_PARAMS,
        step=100_000,
        key="max_params",
        help="A board's limit on the whole model (a microcontroller's: 500,000): the pretrained backbone is cut "
        "after the stage that reads val best among those that fit.",
    )
    keep_choices(NEW_RUN_CHOICES)
    cfg = TrainConfig.create(
        data=path,
        backbone=name,
        strategy=strategy,
        in_chans=in_chans(),
        balance=balance,
        data_root=root_for(path),
        budget=float(budget) if budget else None,
        augment=None if augment == "from the plan" else augment,
        distill_from=None if teacher == "none" else teacher,
        max_params=int(max_params) or None,
        **(
            {
                "target": target,
                "adapt": ADAPT_CHOICES[adapt],
                "target_norm": TARGET_NORM[norm],
                "target_bn": False if TARGET_NORM[norm] is False else TARGET_NORM[bn],
                "target_head": TARGET_HEAD[head],
            }
            if target
            else {}
        ),
    )
    plan_key = plan_key_for(cfg)
    if st.button("Make the plan", type="primary", key="make_plan"):
        jobs.start(plan_key, lambda progress: get_plan(cfg, progress))

    @fragment(run_every=polling(jobs, plan_key))
    def plan_progress() -> None:
        job = jobs.get(plan_key)
        if job is None:
            st.caption(
                "Make the plan to see exactly what will run: auto probes the backbones first (minutes for a "
                "thousand photos on a laptop CPU the first time, seconds once their features are cached)."
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
        show_plan(plan_job.result, cfg, path, jobs, runner)
    else:
        plan_progress()


def budget_input(col, strategy: str) -> int:
    """The time budget in seconds: auto's (always one), a cap on top-k's and full's epochs (0: none), or none."""
    if strategy in BUDGETED:
        cap = NEW_RUN_CHOICES["budget_cap"]
        return col.number_input(
            "Time budget (s; 0: none)",
            cap.start,
            cap[-1],
            0,
            step=30,
            key="budget_cap",
            help="The fine-tuning epochs are cut to end within it, as the cost model counts them; 0: every epoch.",
        )
    auto_range = NEW_RUN_CHOICES["budget"]
    budget = col.number_input(
        "Time budget (s, auto)",
        auto_range.start,
        auto_range[-1],
        int(DEFAULT_BUDGET_S),
        step=30,
        key="budget",
        disabled=strategy != "auto",
    )
    return budget if strategy == "auto" else 0
