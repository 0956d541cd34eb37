"""Fine-tuning anyway: when auto kept the linear head because an epoch did not fit its budget, the same plan with
the top layer groups opened, from the same starting head, so the probe-vs-fine-tune gap can be seen."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.model.cost import epoch_seconds
from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.make import load_data
from engine.plan.rules import FIXED_S
from engine.plan.stored import Planned, load_planned

ANYWAY_GROUPS = 2  # layer groups below the head that open
ANYWAY_EPOCHS = 3
DEFAULT_PACE = 50.0  # images/s when the plan measured none (no starting head was validated)


def kept_the_head(plan: dict) -> bool:
    """Whether a finished run's plan trained nothing: auto's linear head is its model."""
    return plan.get("strategy") == "auto" and not plan.get("head_epochs") and not plan.get("finetune_epochs")


def why_kept(plan: dict) -> str:
    """Auto's own sentence on why it trained nothing (the time one epoch would take against the time left)."""
    reason = plan.get("reason", "")
    start = reason.find("Fine-tuning does not fit")
    return reason[start:] if start >= 0 else "No trained epoch was expected to beat the linear head in the time left."


def finetune_anyway(config: dict, run_folder: Path) -> tuple[TrainConfig, Planned]:
    """The run's own plan with the top `ANYWAY_GROUPS` groups and the head trainable for `ANYWAY_EPOCHS` epochs, its
    estimate from the same cost model as every plan, at the forward pace the plan measured (validating the starting
    head: `start_s` for `n_val` photos).

    Returns:
        The run's configuration and the edited plan, to submit as a new run.
    """
    cfg = TrainConfig.from_dict(config)
    planned = load_planned(run_folder, load_data(cfg))
    plan = planned.plan
    n = len(plan.groups)
    frozen = tuple(i < n - 1 - ANYWAY_GROUPS for i in range(n))
    edited = plan.edit(frozen=frozen, finetune_epochs=ANYWAY_EPOCHS)
    size, views = plan.input_spec["input_size"][-1], 2 if plan.flip_tta else 1
    images_per_s = plan.n_val * views / plan.start_s if plan.start_s else DEFAULT_PACE
    epoch_s = epoch_seconds(plan.backbone, size, list(plan.groups[n - 1 - ANYWAY_GROUPS:n - 1]), plan.n_train,
                            plan.n_val, images_per_s, views, pick_device(cfg.runtime.device).type)
    estimate = plan.start_s + ANYWAY_EPOCHS * epoch_s + plan.score_s + FIXED_S
    edited = replace(edited, finetune_epoch_s=round(epoch_s, 1), estimate_s=round(estimate, 1),
                     reason=f"Fine-tuning anyway: {', '.join(plan.groups[n - 1 - ANYWAY_GROUPS:n - 1])} and the head "
                            f"for {ANYWAY_EPOCHS} epochs from the same linear head, to see the gap. {edited.reason}")
    return cfg, replace(planned, plan=edited, cached=False)
