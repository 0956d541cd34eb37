"""Preflight: the plan checked against the classic fine-tuning pitfalls, each finding with its fix.

Errors stop the run (the plan cannot do what it says); warnings are pitfalls a person may accept knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.paths import memory_budget
from engine.plan.parts import Plan
from engine.plan.rules import BASE_LR

COLD = 1e-2  # a rate this fraction of the usual head rate, or less, barely trains


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    fix: str
    error: bool = False


def preflight(plan: Plan) -> list[Finding]:
    """Returns the pitfalls found (empty when the plan is sound)."""
    out = []
    ph = plan.phases
    head = len(ph.groups) - 1
    pretrained = plan.head.init != "random"
    idle = [ph.groups[i] for i in ph.trainable if ph.lrs[i] <= 0 and ph.finetune_epochs]
    if idle:
        out.append(
            Finding(
                "zero-lr",
                f"group(s) {', '.join(idle)} are trainable but their learning rate is 0, so they would not change",
                "give them a rate, or freeze them",
                error=True,
            )
        )
    if ph.head_epochs and ph.head_lr <= 0:
        out.append(
            Finding("zero-head-lr", "the head phase has a learning rate of 0", "give the head a rate", error=True)
        )
    if ph.total_epochs == 0 and plan.head.init == "random":
        out.append(Finding("no-epochs", "the plan trains nothing and its head is random", "add epochs", error=True))
    hot = [ph.groups[i] for i, lr in enumerate(ph.lrs[:head]) if pretrained and lr > 1e-3]
    if hot:
        out.append(
            Finding(
                "high-lr",
                f"pretrained group(s) {', '.join(hot)} train at a rate above 1e-3: this erases "
                f"what they learned on ImageNet",
                "use discriminative rates (1e-4 to 1e-5 below the head)",
            )
        )
    cold = [ph.groups[i] for i in ph.trainable if ph.finetune_epochs and 0 < ph.lrs[i] < BASE_LR * COLD]
    if ph.trainable and len(cold) == len(ph.trainable):
        out.append(
            Finding(
                "low-lr",
                f"every trainable group's rate is below {BASE_LR * COLD:.0e}, over "
                f"{1 / COLD:.0f} times below the usual head rate {BASE_LR:.0e}: the weights would hardly "
                f"move",
                "check the learning-rate suggestion (its curve should be falling there), or keep the plan's rates",
            )
        )
    if not any(ph.frozen) and ph.finetune_epochs and ph.warmup_epochs == 0 and pretrained:
        out.append(
            Finding(
                "no-warmup",
                "full fine-tuning starts at full rate: the head's large early gradients disturb the pretrained layers",
                "warm up for at least one epoch (warmup_epochs=1)",
            )
        )
    if plan.cost.ram_bytes > memory_budget():
        out.append(
            Finding(
                "memory",
                f"the plan's caches need about {plan.cost.ram_bytes / 1e9:.1f} GB of memory and the "
                f"budget is {memory_budget() / 1e9:.1f} GB",
                "cache fewer augmented views (views), or raise TRANSFERLAB_MEMORY if the machine has the memory",
                error=True,
            )
        )
    out += _data_findings(plan)
    if ph.batch_size < 2:
        out.append(
            Finding(
                "batch-size",
                f"batch size {ph.batch_size}: BatchNorm needs at least 2 images per batch",
                "use a batch size of 2 or more (32 is the default)",
                error=True,
            )
        )
    return out


def _data_findings(plan: Plan) -> list[Finding]:
    """What the data and the target photos say about the plan: leaks across splits, adaptation with nothing to adapt."""
    out = []
    if plan.data.leaks:
        out.append(
            Finding(
                "leak",
                f"{plan.data.leak_note}: the accuracy measured on them will be higher than on new photos",
                "exclude the copies from val and test (Data: Check my photos), or accept a score that is inflated",
            )
        )
    if plan.target.adapt != "none" and not plan.phases.trains_below_head:
        out.append(
            Finding(
                "adapt-frozen",
                f"adaptation ({plan.target.adapt}) changes the layers below the head, and this plan trains none of "
                f"them (only the head, or no fine-tuning epoch)",
                "fine-tune at least the top group (top-k, or more budget for auto), or adapt none",
                error=True,
            )
        )
    return out


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.error]
