"""Fine-tuning anyway: when auto kept the linear head because an epoch did not fit its budget, the same plan with
the top layer groups opened, from the same starting head, so the probe-vs-fine-tune gap can be seen."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.plan.config import TrainConfig
from engine.plan.cost import edit_plan
from engine.plan.make import load_data
from engine.plan.rules import Plan
from engine.plan.stored import Planned, load_planned

ANYWAY_GROUPS = 2  # layer groups below the head that open
ANYWAY_EPOCHS = 3


def kept_the_head(plan: Plan | None) -> bool:
    """Whether a finished run's plan trained nothing: auto's linear head is its model."""
    return plan is not None and plan.strategy == "auto" and not plan.total_epochs


def why_kept(plan: Plan | None) -> str:
    """Auto's own sentence on why it trained nothing (the time one epoch would take against the time left)."""
    reason = plan.reason if plan else ""
    start = reason.find("Fine-tuning does not fit")
    return reason[start:] if start >= 0 else "No trained epoch was expected to beat the linear head in the time left."


def finetune_anyway(config: dict, run_folder: Path) -> tuple[TrainConfig, Planned]:
    """The run's own plan with the top `ANYWAY_GROUPS` groups and the head trainable for `ANYWAY_EPOCHS` epochs, its
    estimate from the same cost model as every plan, at the forward pace the plan measured (validating the starting
    head).

    Returns:
        The run's configuration and the edited plan, to submit as a new run.
    """
    cfg = TrainConfig.from_dict(config)
    planned = load_planned(run_folder, load_data(cfg))
    plan = replace(planned.plan, images_per_s=_pace(planned.plan), plan_s=0.0)  # made already: no planning again
    n = len(plan.groups)
    frozen = tuple(i < n - 1 - ANYWAY_GROUPS for i in range(n))
    edited = edit_plan(cfg, plan, frozen=frozen, finetune_epochs=ANYWAY_EPOCHS)
    opened = ", ".join(plan.groups[n - 1 - ANYWAY_GROUPS : n - 1])
    edited = replace(
        edited,
        reason=f"Fine-tuning anyway: {opened} and the head for {ANYWAY_EPOCHS} epochs from the "
        f"same linear head, to see the gap. {edited.reason}",
    )
    return cfg, replace(planned, plan=edited, cached=False)


def _pace(plan: Plan) -> float:
    """The forward pace the plan was costed at; for a plan stored before it kept one, the pace its starting head's
    validation was estimated at (0: the architecture's measured pace)."""
    views = 2 if plan.flip_tta else 1
    return plan.images_per_s or (plan.n_val * views / plan.start_s if plan.start_s else 0.0)
