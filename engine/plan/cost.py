"""What a plan costs, for every strategy and for a person's edits: one function turns a plan and the forward pace the
planner measured into seconds for each step the run takes, in the order it takes them:

1. validating the starting head (epoch 0), when the head starts from the probe;
2. caching the frozen part's output once: K augmented views of the training photos and the val photos, when a head
   phase runs or phase 2 runs on cached activations;
3. each phase-2 epoch, on cached activations (the trainable groups alone) or the full forward pass;
4. the final scoring (val again unless no epoch trains, and the test split), and a fixed allowance for building and
   saving.

The same rules decide the trainer's path (`activation_cut`, `cached_views`), so the estimate and the run cannot
disagree on which path a phase takes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine.data.batch_augment import device_input, pixel_bytes
from engine.model.catalogue import get_entry
from engine.model.device import pick_device
from engine.model.profile import architecture, profile
from engine.model.resources import activations_fit, plan_bytes
from engine.probe.features import FIT_BYTES_PER_VALUE, fit_rows
from engine.model.taps import FINAL
from engine.plan.config import TrainConfig
from engine.plan.parts import Cost, Plan
from engine.plan.rules import FIXED_S


def activation_cut(cfg: TrainConfig, plan: Plan) -> int | None:
    """The group at which phase 2 may run on cached activations (the first trainable one), or None for the full
    forward: caching is on, that group is neither the stem nor the head, no MixUp/CutMix needs the images, the head
    reads the final features without mirror averaging and phase 2 has epochs. Whether the activations fit their
    memory share is checked on top (`runs_on_activations`, and the trainer on the real cut)."""
    boundary = next((i for i, f in enumerate(plan.phases.frozen) if not f), len(plan.phases.groups) - 1)
    mixing = cfg.regularisation.mixup or cfg.regularisation.cutmix
    wanted = (
        cfg.runtime.cache_activations
        and 0 < boundary < len(plan.phases.groups) - 1
        and not mixing
        and plan.head.taps == (FINAL,)
        and not plan.head.flip
        and plan.phases.finetune_epochs > 0
    )
    return boundary if wanted else None


def cached_views(cfg: TrainConfig, plan: Plan) -> int:
    """Augmented views of each training photo the frozen part is run on: one without augmentation (the views would be
    identical), else as many as the plan's memory budget allowed."""
    return 1 if plan.phases.augment == "none" and not cfg.regularisation.random_erasing else max(1, plan.phases.views)


def runs_on_activations(cfg: TrainConfig, plan: Plan, device: str = "cpu") -> bool:
    """Whether phase 2 is expected to run on cached activations: a cut is wanted and its activations fit."""
    cut = activation_cut(cfg, plan)
    if cut is None:
        return False
    per_image = profile(plan.backbone, plan.input.input_size[-1], device).cut(plan.phases.groups[cut])
    return per_image is not None and activations_fit(plan.data.n_train, cached_views(cfg, plan), per_image)


def costed(cfg: TrainConfig, plan: Plan, images_per_s: float, device: str, plan_s: float | None = None) -> Plan:
    """`plan` with its cost: at `images_per_s` (the whole network's forward pace with decoding, as the probe
    measured it; 0 when there was no probe: the measured forward pace of the architecture), the seconds of each step
    and `estimate_s`, the whole run's (planning, `plan_s`, included), and the memory and disk it needs."""
    prof = profile(plan.backbone, plan.input.input_size[-1], device)
    data, ph, target = plan.data, plan.phases, plan.target
    speed = images_per_s or prof.forward_pace
    views = 2 if plan.head.flip else 1
    ft = ph.finetune_epochs
    trainable = [ph.groups[i] for i in ph.trainable if i < len(ph.groups) - 1]
    on_activations = runs_on_activations(cfg, plan, device)
    start_s = data.n_val * views / speed if plan.head.init != "random" else 0.0
    caching = ph.head_epochs or on_activations
    cache_s = (cached_views(cfg, plan) * data.n_train + data.n_val) / speed if caching else 0.0

    def epoch(n_val: int) -> float:
        if on_activations:
            return prof.cached_epoch_seconds(trainable, data.n_train, n_val)
        return prof.epoch_seconds(trainable, data.n_train, n_val, speed, views)

    epoch_s = epoch(data.n_val) if ft else 0.0
    if (target.adapt != "none" or plan.distill.n_target) and ft:  # the target photos' frozen part once, then a target
        # batch beside every batch (adapted to, or the teacher's answers learnt on them),
        cache_s += target.n / speed if on_activations else 0.0
        epoch_s += epoch(0)  # which costs what a training batch costs: its training steps again, without val
    # the final val and test scoring; with no epoch to train, the starting head's validation is already the val score;
    # the target photos once more for their statistics, the target test for the chosen model and the starting head
    val_again = data.n_val if ph.head_epochs or ft or plan.head.init == "random" else 0
    checked = bool(ft) and target.checks_against_start  # whenever an epoch may win
    score_s = (val_again + data.n_test + target.reads(data.n_val, checked)) * views / speed
    planning = plan.cost.plan_s if plan_s is None else plan_s
    teach_s = teacher_seconds(plan, device)
    ram, disk = footprint(plan, device)
    cost = Cost(
        estimate_s=round(planning + start_s + teach_s + cache_s + ft * epoch_s + score_s + FIXED_S, 1),
        plan_s=round(planning, 1),
        start_s=round(start_s, 1),
        teach_s=round(teach_s, 1),
        cache_s=round(cache_s, 1),
        finetune_epoch_s=round(epoch_s, 1),
        score_s=round(score_s, 1),
        images_per_s=round(speed, 2),
        ram_bytes=ram,
        disk_bytes=disk,
    )
    return replace(plan, cost=cost)


def teacher_seconds(plan: Plan, device: str) -> float:
    """The teacher's pass over the training photos (and the target photos it answers for) of a distilled run (0
    without one), at the teacher backbone's forward pace measured on this machine."""
    d = plan.distill
    if not d.on:
        return 0.0
    return (plan.data.n_train + d.n_target) / profile(d.backbone, d.input_size, device).forward_pace


def footprint(plan: Plan, device: str) -> tuple[int, int]:
    """(memory, disk) bytes the run needs: features, cached views, the model, the head's fit, decoded photos."""
    data, head = plan.data, plan.head
    views = 2 if head.flip else 1
    dim = architecture(plan.backbone).head_dim(head.taps)
    fit = min(fit_rows(dim, views), data.n_train) * dim * views * FIT_BYTES_PER_VALUE
    ram, disk = plan_bytes(
        plan.backbone,
        data.n_train + data.n_val + data.n_test,
        data.n_train,
        plan.phases.views,
        dim,
        int(get_entry(plan.backbone).params_m * 1e6),
        int(np.prod(plan.input.input_size)),
        fit,
    )
    if plan.phases.finetune_epochs and device_input(torch.device(device), plan.phases.augment):
        disk += pixel_bytes(data.n_train, plan.input)  # the training photos decoded once for the GPU input path
    return ram, disk


def edit_plan(cfg: TrainConfig, plan: Plan, **changes) -> Plan:
    """`plan` with a person's edits (`Plan.edit`), its costs counted again at the pace it was planned at."""
    new = plan.edit(**changes)
    return new if new is plan else costed(cfg, new, plan.cost.images_per_s, pick_device(cfg.runtime.device).type)
