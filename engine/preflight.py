"""Preflight: the plan checked against the classic fine-tuning pitfalls, each finding with its fix."""
from __future__ import annotations

from dataclasses import dataclass

from engine.config import Plan, TrainConfig
from engine.features import InputSpec


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    fix: str


def preflight(cfg: TrainConfig, plan: Plan, spec: InputSpec) -> list[Finding]:
    """Returns the pitfalls found (empty when the plan is sound)."""
    out = []
    head = len(plan.groups) - 1
    pretrained = cfg.strategy != "scratch"
    hot = [plan.groups[i] for i, lr in enumerate(plan.lrs[:head]) if pretrained and lr > 1e-3]
    if hot:
        out.append(Finding("high-lr", f"pretrained group(s) {', '.join(hot)} train at a rate above 1e-3: this erases "
                           f"what they learned on ImageNet", "use discriminative rates (1e-4 to 1e-5 below the head)"))
    if not any(plan.frozen) and plan.finetune_epochs and plan.warmup_epochs == 0 and pretrained:
        out.append(Finding("no-warmup", "full fine-tuning starts at full rate: the random head's large gradients "
                           "disturb the pretrained layers", "warm up for at least one epoch (warmup_epochs=1)"))
    if (cfg.mean and tuple(cfg.mean) != spec.mean) or (cfg.std and tuple(cfg.std) != spec.std):
        out.append(Finding("normalisation", f"normalisation mean={cfg.mean} std={cfg.std} does not match what "
                           f"{cfg.backbone} was trained with (mean={spec.mean}, std={spec.std})",
                           "remove the override: the backbone's own mean/std are used"))
    if not cfg.eval_mode:
        out.append(Finding("eval-mode", "validation would run in train mode: dropout stays on and BatchNorm uses "
                           "batch statistics, so the numbers are noisy and wrong", "evaluate with model.eval()"))
    if cfg.bn_eval_unfrozen and not all(plan.frozen):
        out.append(Finding("bn-frozen-in-trainable", "BatchNorm of the trainable groups stays in eval mode: its "
                           "statistics cannot adapt to your images", "let unfrozen groups' BatchNorm train"))
    return out
