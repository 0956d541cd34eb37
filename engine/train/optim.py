"""Optimiser, freezing and schedule: one AdamW parameter group per layer group, a per-group learning-rate scale.

Freezing is a function of the group index with an explicit BatchNorm policy: a frozen group's BatchNorm layers are in
eval mode (running statistics fixed); `train_bn=True` still trains their affine parameters; an unfrozen group's
BatchNorm returns to train mode. The schedule sets every group's rate each step, so the rates the optimiser holds are
exactly the plan's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.model.groups import LayerGroup

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def _bn_param(model: nn.Module) -> set[str]:
    return {
        f"{m}.{p}" if m else p
        for m, mod in model.named_modules()
        if isinstance(mod, BN_TYPES)
        for p, _ in mod.named_parameters(recurse=False)
    }


def build_optimizer(
    model: nn.Module, groups: list[LayerGroup], weight_decay: float = 0.01, beside_head: nn.Module | None = None
) -> torch.optim.AdamW:
    """AdamW with, per layer group, one parameter group with weight decay and one without (norms and biases).

    Each parameter group carries `layer` (the group index) and `lr_scale` (set by `set_plan`). `beside_head` (DANN's
    domain classifier) trains at the head's rate and schedule.
    """
    params = dict(model.named_parameters())
    out = []
    for g in groups:
        decay = [params[n] for n in g.params if params[n].ndim > 1]
        no_decay = [params[n] for n in g.params if params[n].ndim <= 1]
        for ps, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if ps:
                out.append({"params": ps, "weight_decay": wd, "layer": g.index, "lr_scale": 0.0, "lr": 0.0})
    extra = list(beside_head.parameters()) if beside_head is not None else []
    if extra:
        out.append(
            {"params": extra, "weight_decay": weight_decay, "layer": groups[-1].index, "lr_scale": 0.0, "lr": 0.0}
        )
    return torch.optim.AdamW(out, lr=0.0)


def set_plan(optimizer: torch.optim.Optimizer, lrs: list[float]) -> None:
    """Stores each layer group's target rate as its `lr_scale` (multiplied by the schedule's factor each step)."""
    for pg in optimizer.param_groups:
        pg["lr_scale"] = lrs[pg["layer"]]


def apply_schedule(optimizer: torch.optim.Optimizer, factor: float) -> list[float]:
    """Sets every parameter group's rate to `lr_scale * factor`; returns the rate per layer group."""
    per_layer: dict[int, float] = {}
    for pg in optimizer.param_groups:
        pg["lr"] = pg["lr_scale"] * factor
        per_layer[pg["layer"]] = pg["lr"]
    return [per_layer[k] for k in sorted(per_layer)]


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up from `warmup_start` of the target to 1, then cosine down to `floor` (fractions of the target)."""

    total_steps: int
    warmup_steps: int = 0
    warmup_start: float = 0.1
    floor: float = 0.01

    def factor(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return self.warmup_start + (1 - self.warmup_start) * step / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def freeze(model: nn.Module, groups: list[LayerGroup], frozen: list[bool], train_bn: bool = False) -> None:
    """Sets requires_grad per group; with `train_bn`, BatchNorm affine parameters of frozen groups still train."""
    bn = _bn_param(model) if train_bn else set()
    params = dict(model.named_parameters())
    for g, is_frozen in zip(groups, frozen):
        for n in g.params:
            params[n].requires_grad_(not is_frozen or n in bn)


def set_train_mode(model: nn.Module, groups: list[LayerGroup], frozen: list[bool]) -> None:
    """model.train(), then every BatchNorm inside a frozen group back to eval mode (running statistics fixed)."""
    model.train()
    mods = dict(model.named_modules())
    for g, is_frozen in zip(groups, frozen):
        if not is_frozen:
            continue
        for name in g.modules:
            for m in mods[name].modules():
                if isinstance(m, BN_TYPES):
                    m.eval()


def set_bn_momentum(model: nn.Module, groups: list[LayerGroup], frozen: list[bool], momentum: float) -> None:
    """BatchNorm momentum of trainable groups (TF-ported backbones use 0.01, too slow for a short fine-tune)."""
    mods = dict(model.named_modules())
    for g, is_frozen in zip(groups, frozen):
        if not is_frozen:
            for name in g.modules:
                for m in mods[name].modules():
                    if isinstance(m, BN_TYPES):
                        m.momentum = momentum


def group_grad_norms(model: nn.Module, groups: list[LayerGroup]) -> torch.Tensor:
    """Per group, the L2 norm of its gradients, as one float32 tensor on the parameters' device. Nothing is copied to
    the host: a sync per parameter (hundreds per step) halved the GPU's training speed (bench/gpu.py)."""
    params = dict(model.named_parameters())
    device = next(iter(params.values())).device
    out = []
    for g in groups:
        grads = [params[n].grad for n in g.params if params[n].grad is not None]
        out.append(torch.nn.utils.get_total_norm(grads).float() if grads else torch.zeros((), device=device))
    return torch.stack(out)


def group_drift(model: nn.Module, groups: list[LayerGroup], initial: dict[str, torch.Tensor]) -> list[float]:
    """Per group, ||w - w0|| / ||w0|| over its parameters."""
    params = dict(model.named_parameters())
    out = []
    for g in groups:
        num = sum(float((params[n].detach().float().cpu() - initial[n]).pow(2).sum()) for n in g.params)
        den = sum(float(initial[n].pow(2).sum()) for n in g.params)
        out.append(math.sqrt(num) / math.sqrt(den) if den > 0 else 0.0)
    return out
