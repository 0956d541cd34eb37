"""A run built from its config: the data, the input contract, the probe (for auto and LP-FT), the backbone with its new
head, the layer groups, the plan, and the cut at the freeze boundary when the frozen part below it can be cached.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from engine.config import Plan, TrainConfig, make_plan
from engine.data import Dataset, load_dataset
from engine.features import InputSpec
from engine.groups import LayerGroup, layer_groups
from engine.recommend import Recommendation, recommend
from engine.split import SplitModel, StageHeadModel, probe_classifier
from engine.weights import WeightsInfo, create_backbone

if TYPE_CHECKING:
    from engine.probe import ProbeResult


@dataclass
class Built:
    """What the trainer runs. `split` is None when phase 2 runs the full forward pass; `probe` is None unless the
    strategy needed one."""

    ds: Dataset
    spec: InputSpec
    model: nn.Module
    weights: WeightsInfo
    groups: list[LayerGroup]
    plan: Plan
    split: SplitModel | None
    probe: ProbeResult | None


def build(cfg: TrainConfig, device: torch.device) -> Built:
    """Loads the data and backbone for `cfg` and resolves its plan; the model ends on `device`, channels-last.

    Raises:
        WeightsUnavailable: No pretrained weights for the backbone (never a silent random initialisation).
        DataError: The data cannot be used (the message names the file or folder).
    """
    ds = load_dataset(cfg.data, cfg.val, cfg.val_fraction, cfg.seed)
    spec = InputSpec.for_backbone(cfg.backbone, cfg.in_chans)
    if cfg.mean or cfg.std:
        spec = dataclasses.replace(spec, mean=tuple(cfg.mean or spec.mean), std=tuple(cfg.std or spec.std))
    probe, rec = None, None
    if cfg.strategy in ("auto", "lp-ft"):
        from engine.probe import probe as run_probe
        probe = run_probe(ds, cfg.backbone, cfg.weights, per_stage=cfg.strategy == "auto", in_channels=cfg.in_chans)
        rec = probe.recommendation
    model, weights = create_backbone(cfg.backbone, "none" if cfg.strategy == "scratch" else cfg.weights, cfg.in_chans)
    model.reset_classifier(len(ds.classes))
    groups = layer_groups(model)
    plan = make_plan(cfg, [g.name for g in groups], rec)
    if plan.head_stage is not None:
        model, groups, plan = _cut(cfg, model, groups, plan, ds, spec, probe)
    head = probe_classifier(model, cfg.dropout)
    if plan.head_from_probe:
        fit = probe.head if plan.head_stage is None else _stage_fit(cfg, ds, plan.head_stage)
        head.set_probe(*(torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in
                         (fit.std_coef, fit.std_intercept, fit.mean, fit.scale)))
    model = model.to(device, memory_format=torch.channels_last)
    return Built(ds, spec, model, weights, groups, plan, _split(cfg, model, groups, plan, spec, device), probe)


def _split(cfg: TrainConfig, model: nn.Module, groups: list[LayerGroup], plan: Plan, spec: InputSpec,
           device: torch.device) -> SplitModel | None:
    """The cut below the first trainable group, when that group is neither the stem nor the head, caching is on, and
    no MixUp/CutMix needs the images; None when the model does not run as a chain there."""
    boundary = next((i for i, f in enumerate(plan.frozen) if not f), len(groups) - 1)
    if not (cfg.cache_activations and 0 < boundary < len(groups) - 1 and not (cfg.mixup or cfg.cutmix)):
        return None
    size = spec.input_size[-1]
    try:
        return SplitModel(model, groups, boundary, torch.zeros(1, spec.in_chans, size, size, device=device))
    except ValueError:
        return None


def _cut(cfg: TrainConfig, model: nn.Module, groups: list[LayerGroup], plan: Plan, ds: Dataset, spec: InputSpec,
         probe: ProbeResult) -> tuple[nn.Module, list[LayerGroup], Plan]:
    """The stage-head plan: the network cut after the best stage; else the plan falls back to a freeze boundary."""
    size = spec.input_size[-1]
    try:
        cut = StageHeadModel(model, groups, plan.head_stage, len(ds.classes),
                             torch.zeros(1, spec.in_chans, size, size), cfg.dropout)
    except ValueError as e:
        fallback: Recommendation = recommend(probe.accuracy, [g.name for g in groups], len(ds.train),
                                             [c["accuracy"] for c in probe.stage_curve], cfg.in_chans,
                                             allow_stage_head=False)
        plan = make_plan(cfg, [g.name for g in groups], fallback)
        return model, groups, dataclasses.replace(plan, reason=f"{plan.reason} (The network cannot be cut: {e}.)")
    cut_groups = layer_groups(cut)
    assert [g.name for g in cut_groups] == list(plan.groups), "cut groups differ from the plan"
    return cut, cut_groups, plan


def _stage_fit(cfg: TrainConfig, ds: Dataset, stage: int):
    """The linear probe's fit on the features of the cut stage (cached by the probe)."""
    from engine.probe import features_for, fit_linear
    fs, _, _ = features_for(ds, cfg.backbone, cfg.weights, in_chans=cfg.in_chans)
    (xtr, ytr), (xva, yva) = fs.select("train", stage), fs.select("val", stage)
    return fit_linear(xtr, ytr, xva, yva, len(ds.classes))
