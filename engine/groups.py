"""Layer groups: the ordered stem → stages → head split of any timm model, from the model's own `group_matcher`.

One function serves the probe (features after each group), freezing and learning rates (a group index), and the UI
(the diagram). Nothing here is written per architecture.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
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


def _classifier_names(model: nn.Module) -> tuple[str, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    cls = cfg.get("classifier", "classifier")
    return (cls,) if isinstance(cls, str) else tuple(cls)


def _top_modules(model: nn.Module, names: set[str]) -> list[str]:
    """The shortest module paths whose parameters all belong to `names`, in registration order."""
    under: dict[str, set[str]] = {m: {f"{m}.{p}" for p, _ in mod.named_parameters()} for m, mod in model.named_modules()
                                  if m}
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
    labels = getattr(model, "group_labels", None)  # models that name their own groups (StageHeadModel)
    for i, params in enumerate(ordered):
        mods = _top_modules(model, set(params))
        is_head = any(p == h or p.startswith(h + ".") for p in params for h in heads)
        role = "head" if is_head and i == len(ordered) - 1 else ("stem" if i == 0 else "stage")
        own = "+".join(mods) if mods else params[0].split(".")[0]
        name = labels[i] if labels and len(labels) == len(ordered) else own
        out.append(LayerGroup(i, name, role, tuple(params), tuple(mods), sum(sizes[p] for p in params)))
    return out


def _pool(out: torch.Tensor | tuple | list) -> torch.Tensor:
    """Global average pool of an intermediate output: (B, C, H, W) over space, (B, N, C) over tokens."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 4:
        return out.mean(dim=(2, 3), dtype=torch.float32)
    if out.ndim == 3:
        return out.mean(dim=1, dtype=torch.float32)
    return out.float().flatten(1)


class StageTaps:
    """Forward hooks that collect the pooled output of every non-head group during a forward pass.

    The output of a group is that of its module that runs last, found from the call order, so no architecture is
    special-cased. Use as a context manager; read `features()` after each forward.
    """

    def __init__(self, model: nn.Module, groups: list[LayerGroup]):
        self.groups = [g for g in groups if g.role != "head" and g.modules]
        self._order = 0
        self._seen: dict[str, tuple[int, torch.Tensor]] = {}
        self._handles = []
        mods = dict(model.named_modules())
        for g in self.groups:
            for m in g.modules:
                self._handles.append(mods[m].register_forward_hook(self._hook(m)))

    def _hook(self, name: str):
        def fn(_module, _inputs, output):
            self._order += 1
            self._seen[name] = (self._order, _pool(output))
        return fn

    def features(self) -> list[torch.Tensor]:
        """Pooled features per non-head group for the last forward pass, then reset."""
        feats = [max((self._seen[m] for m in g.modules if m in self._seen), key=lambda t: t[0])[1] for g in self.groups]
        self._seen.clear()
        return feats

    def __enter__(self) -> "StageTaps":
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


def group_names(backbone: str) -> list[str]:
    """Layer-group names of a catalogue backbone, without weights or memory (built on the meta device)."""
    import timm
    with torch.device("meta"):
        model = timm.create_model(backbone, pretrained=False)
    return [g.name for g in layer_groups(model)]
