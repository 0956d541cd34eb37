"""The Train page's live run: what it is doing now and its one time left, Stop and Resume, its result, and its
curves, freeze map, rates, gradient norms and drift, all read from the run store (a fragment reruns them)."""

from __future__ import annotations

import time

import streamlit as st

from engine import LIVE, RESUMABLE, TERMINAL, Runner, RunView, TransferLabError, finetune_anyway, kept_the_head
from engine import no_epoch_sentence, run_header, run_summary, why_kept
from ui import charts
from ui.errors import fragment

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
ENDED = TERMINAL | RESUMABLE  # the run is not training: the fragment stops (finished) or slows down


def live_interval(runner: Runner, current: str | None) -> float | None:
    """0.8 s while the run trains; 3 s while it is stopped (another tab or the CLI may resume it); none once done."""
    if current is None:
        return None
    state = runner.store.open(current).status().get("state")
    if state in ENDED:  # this page run already paces the fragment for an ended run: no rerun needed to follow it
        st.session_state["_final_shown"] = (current, state)
    return 0.8 if state in LIVE else None if state == "finished" else 3.0


def show_live(runner: Runner, current: str | None) -> None:
    """Run `current` of `runner`'s store, live: it reruns at `live_interval`'s pace, from the run store alone."""

    @fragment(run_every=live_interval(runner, current))
    def live() -> None:
        follow(runner, current)

    live()


def follow(runner: Runner, current: str | None) -> None:
    """The run's header, progress and time left, controls, result and charts, as its store holds them now."""
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
    controls(runner, current, view.state)
    if view.state == "finished" and view.result:
        st.success(run_summary(view.result, view.plan))
        if kept_the_head(view.plan):
            anyway(runner, current, view)
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
    c[0].metric("Validation accuracy, last epoch", f"{last.val_acc:.1%}")
    c[1].metric("Best on val (the run keeps it)", f"{view.best_val_acc:.1%}")
    if r is not None and r.test_accuracy is not None:
        c[2].metric(
            "Test accuracy (never chosen on)",
            f"{r.test_accuracy:.1%}",
            f"95% interval {r.test_interval[0]:.1%}–{r.test_interval[1]:.1%}",
            delta_color="off",
        )
    elif view.steps:
        c[2].metric("Training accuracy, this epoch so far", f"{view.steps[-1].running_acc:.1%}")
    if last.epoch > 0:
        on = view.phase.path if view.phase else ""
        c[3].metric(
            "Images / s, last epoch",
            f"{last.images_per_s:.0f}",
            on if on.startswith("cached") else None,
            delta_color="off",
            delta_arrow="off",
            help="Training images per second. On cached features or activations the frozen part of the "
            "network is not run again, so this is far above a full forward pass.",
        )


def anyway(runner: Runner, current: str, view: RunView) -> None:
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


def controls(runner: Runner, current: str, state: str) -> None:
    """Stop while the run trains, Resume while it is stopped."""
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
        st.info(no_epoch_sentence(epochs[0].val_acc, plan, state))
    ph = view.phase
    if groups and ph is not None and ph.frozen:
        st.plotly_chart(charts.freeze_strip(groups, labels, ph.frozen, ph.lrs), width="stretch", key="strip")
        st.caption(
            f"Freeze map of phase {ph.phase} ({ph.name}, {ph.path}). Frozen groups keep their "
            f"pretrained weights; hover a group for its timm name."
        )
    elif groups and state in TERMINAL:
        st.caption("No training phase ran: every layer group kept its pretrained weights.")
    if steps:
        st.plotly_chart(charts.group_rates(steps, groups, labels), width="stretch", key="lr_chart")
        st.caption(
            "Each trainable group's learning rate at every step: a warm-up, then cosine decay; earlier groups "
            "learn more slowly than the head. Groups at the same rate draw one line over another."
        )
    if any(e.adapt for e in trained):
        st.plotly_chart(charts.domain_curves(trained), width="stretch", key="adapt_chart")
        st.caption(
            "Adaptation to the target photos: DANN's domain classifier tells training photos from target photos "
            "(its accuracy falls towards 50% as the features it reads stop differing), or the MMD between the two "
            "sets; the dotted line is the adaptation's weight, ramped up from 0."
        )
    if trained:
        a, b = st.columns(2)
        a.plotly_chart(
            charts.group_bars(groups, trained[-1].grad_norm, "Gradient norm per group", True, labels),
            width="stretch",
            key="grad_chart",
        )
        a.caption(GRAD_CAPTION)
        b.plotly_chart(
            charts.group_bars(groups, trained[-1].drift, "Drift from the pretrained weights", labels=labels),
            width="stretch",
            key="drift_chart",
        )
        b.caption(DRIFT_CAPTION)
