"""Fine-tuning anyway: when auto kept the linear head because an epoch did not fit its budget, the same plan with
the top layer groups opened, from the same starting head, so the probe-vs-fine-tune gap can be seen."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.plan.config import TrainConfig
from engine.plan.cost import edit_plan
from engine.plan.make import load_data
from engine.plan.reasons import Decision, find
from engine.plan.parts import Plan
from engine.plan.stored import Planned, load_planned

ANYWAY_GROUPS = 2  # layer groups below the head that open
ANYWAY_EPOCHS = 3


def kept_the_head(plan: Plan | None) -> bool:
    """Whether a finished run's plan trained nothing: auto's linear head is its model."""
    return plan is not None and plan.strategy == "auto" and not plan.phases.total_epochs


def why_kept(plan: Plan | None) -> str:
    """Auto's own sentence on why it trained nothing: its fine-tuning decision (the time one epoch would take against
    the time left), or the budget fit that kept the linear head after the target photos were measured."""
    decisions = plan.decisions if plan else ()
    fit = find(decisions, "budget-fit")
    if fit is not None and fit.chosen == "linear head":
        return fit.sentence
    tune = find(decisions, "finetune")
    if tune is not None and tune.chosen == "none":
        return tune.sentence
    return "No trained epoch was expected to beat the linear head in the time left."


def finetune_anyway(config: dict, run_folder: Path) -> tuple[TrainConfig, Planned]:
    """The run's own plan with the top `ANYWAY_GROUPS` groups and the head trainable for `ANYWAY_EPOCHS` epochs, its
    estimate from the same cost model as every plan, at the forward pace the plan measured (validating the starting
    head).

    Returns:
        The run's configuration and the edited plan, to submit as a new run.
    """
    cfg = TrainConfig.from_dict(config)
    planned = load_planned(run_folder, load_data(cfg))
    made = planned.plan  # made already: no planning again
    plan = replace(made, cost=replace(made.cost, images_per_s=_pace(made), plan_s=0.0))
    n = len(plan.phases.groups)
    frozen = tuple(i < n - 1 - ANYWAY_GROUPS for i in range(n))
    edited = edit_plan(cfg, plan, frozen=frozen, finetune_epochs=ANYWAY_EPOCHS)
    opened = list(plan.phases.groups[n - 1 - ANYWAY_GROUPS : n - 1])
    said = Decision("anyway", "fine-tune", ("the linear head",), {"groups": opened, "epochs": ANYWAY_EPOCHS})
    edited = replace(edited, decisions=(said, *edited.decisions))
    return cfg, replace(planned, plan=edited, cached=False)


def _pace(plan: Plan) -> float:
    """The forward pace the plan was costed at; for a plan stored before it kept one, the pace its starting head's
    validation was estimated at (0: the architecture's measured pace)."""
    views = 2 if plan.head.flip else 1
    return plan.cost.images_per_s or (plan.data.n_val * views / plan.cost.start_s if plan.cost.start_s else 0.0)
