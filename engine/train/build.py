"""A run built from its plan: the backbone with its weights, the `TapModel` with the head where the plan starts it,
the layer groups, and the cut at the freeze boundary when the frozen part below it can be cached."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.model.cut import SplitModel
from engine.model.groups import LayerGroup, layer_groups
from engine.model.resources import activations_fit
from engine.model.taps import TapModel
from engine.model.weights import WeightsInfo, create_backbone
from engine.plan.config import TrainConfig
from engine.plan.cost import activation_cut, cached_views
from engine.plan.make import Planned
from engine.plan.preflight import blocking, preflight
from engine.plan.parts import Plan


@dataclass
class Built:
    """What the trainer runs. `split` is None when phase 2 runs the full forward pass."""

    ds: Dataset
    spec: InputSpec
    model: TapModel
    weights: WeightsInfo
    groups: list[LayerGroup]
    plan: Plan
    split: SplitModel | None


def build(cfg: TrainConfig, planned: Planned, device: torch.device) -> Built:
    """Creates the model the plan describes; it ends on `device`, channels-last.

    Raises:
        ValueError: The plan fails preflight (the message says what to fix).
        WeightsUnavailable: No pretrained weights for the backbone (never a silent random initialisation).
    """
    plan, ds = planned.plan, planned.ds
    if stop := blocking(preflight(plan)):
        raise ValueError(f"preflight: {stop[0].message}. Fix: {stop[0].fix}")
    weights = "none" if plan.head.init == "random" else (cfg.weights if plan.backbone == cfg.backbone else "auto")
    backbone, info = create_backbone(plan.backbone, weights, plan.in_chans)
    model = TapModel(backbone, plan.head.taps, len(ds.classes), plan.head.flip, cfg.regularisation.dropout)
    if plan.head.init == "probe" and planned.head is not None:
        h = planned.head
        model.head.load_probe(*(torch.from_numpy(a) for a in (h.std_coef, h.std_intercept, h.mean, h.scale)))
    groups = layer_groups(model)
    if [g.name for g in groups] != list(plan.phases.groups):
        raise ValueError(
            f"the plan's groups ({', '.join(plan.phases.groups)}) differ from the model's "
            f"({', '.join(g.name for g in groups)}); make the plan again"
        )
    model = model.to(device, memory_format=torch.channels_last)
    spec = plan.input
    return Built(ds, spec, model, info, groups, plan, _split(cfg, model, groups, plan, spec, device))


# PLR0913: the parts a split model is made of
def _split(  # noqa: PLR0913
    cfg: TrainConfig,
    model: TapModel,
    groups: list[LayerGroup],
    plan: Plan,
    spec: InputSpec,
    device: torch.device,
) -> SplitModel | None:
    """The cut below the first trainable group where the plan's rule wants one (`activation_cut`) and the activations
    of its cached views fit their share of the memory budget; None otherwise (the full forward runs), or when the
    model does not run as a chain there."""
    boundary = activation_cut(cfg, plan)
    if boundary is None:
        return None
    size = spec.input_size[-1]
    example = torch.zeros(1, spec.in_chans, size, size, device=device)
    try:
        split = SplitModel(model, groups, boundary, example)
    except ValueError:
        return None
    return split if activations_fit(plan.data.n_train, cached_views(cfg, plan), split.activation_bytes) else None
