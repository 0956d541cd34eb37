"""Layer groups: the ordered stem → stages → head split of any timm model, from the model's own `group_matcher`.

One function serves the probe (features after each group), freezing and learning rates (a group index), and the UI
(the diagram). Nothing here is written per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from timm.models import group_parameters
from torch import nn


@dataclass(frozen=True)
class LayerGroup:
    """One group of parameters, in forward order.

    Attributes:
        index: Position, 0 = stem, last = head.
        name: Readable name built from the group's modules, e.g. "blocks.5" or "conv_stem+bn1".
        role: "stem", "stage" or "head".
        params: Parameter names in the group.
        modules: The largest modules lying wholly inside the group (used for hooks and BatchNorm policy).
        num_params: Number of scalar parameters.
    """

    index: int
    name: str
    role: str
    params: tuple[str, ...]
    modules: tuple[str, ...]
    num_params: int

    @property
    def params_m(self) -> float:
        """Parameters in millions, as the pages show them."""
        return self.num_params / 1e6


IMAGENET_CLASSES = 1000


def pretrained_head_note(model: nn.Module) -> str:
    """What the head group holds as the backbone comes: its pretrained classifier, which every run replaces with one
    output per class of its photos; "" when the backbone has no classifier (self-supervised). The classes are called
    ImageNet's only when there are its 1,000: a file a user gives may carry a head of another set."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(classifier, nn.Linear):
        return ""
    params = sum(p.numel() for p in classifier.parameters())
    n = classifier.out_features
    classes = f"{n:,} ImageNet classes" if n == IMAGENET_CLASSES else f"the {n:,} classes it was pretrained on"
    return (
        f"The head is drawn as pretrained: its last layer answers {classes} with {params / 1e6:.2f}M parameters; a "
        "run replaces that layer with one output per class of your photos."
    )


def _classifier_names(model: nn.Module) -> tuple[str, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    cls = cfg.get("classifier", "classifier")
    return (cls,) if isinstance(cls, str) else tuple(cls)


def _top_modules(model: nn.Module, names: set[str]) -> list[str]:
    """The shortest module paths whose parameters all belong to `names`, in registration order."""
    under: dict[str, set[str]] = {
        m: {f"{m}.{p}" for p, _ in mod.named_parameters()} for m, mod in model.named_modules() if m
    }
    tops: list[str] = []
    for p, _ in model.named_parameters():
        if p not in names:
            continue
        parts = p.split(".")
        for i in range(1, len(parts)):
            cand = ".".join(parts[:i])
            if under.get(cand) and under[cand] <= names:
                if cand not in tops:
                    tops.append(cand)
                break
    return tops


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """The model's coarse layer groups, in forward order, from `model.group_matcher(coarse=True)`.

    Raises:
        TypeError: The model has no `group_matcher` (not a timm model).
    """
    if not hasattr(model, "group_matcher"):
        raise TypeError(f"{type(model).__name__} has no group_matcher; layer groups need a timm model")
    grouped = group_parameters(model, model.group_matcher(coarse=True))
    sizes = dict((n, p.numel()) for n, p in model.named_parameters())
    heads = _classifier_names(model)
    out = []
    ordered = [grouped[k] for k in sorted(grouped)]
    for i, params in enumerate(ordered):
        mods = _top_modules(model, set(params))
        is_head = any(p == h or p.startswith(h + ".") for p in params for h in heads)
        role = "head" if is_head and i == len(ordered) - 1 else ("stem" if i == 0 else "stage")
        name = "+".join(m.removeprefix("backbone.") for m in mods) if mods else params[0].split(".")[0]
        out.append(LayerGroup(i, name, role, tuple(params), tuple(mods), sum(sizes[p] for p in params)))
    return out
