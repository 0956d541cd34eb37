"""Cutting a model at a layer-group boundary, so the frozen part runs once and its output can be cached.

The part below the boundary runs with timm's `forward_intermediates` (stopping early). Running the network from a
stage onward has no timm API, so the part above is executed as the chain of modules that `forward_features` calls,
found by recording one forward pass; the chain is verified by tensor identity (each module's input is the previous
module's output), so a model that does not run as a chain there is refused rather than mis-executed. Nothing is
written per architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.model.groups import LayerGroup
from engine.model.predict import evaluating
from engine.model.taps import TapModel, stage_owners, timm_kwargs


def _units(model: nn.Module, groups: list[LayerGroup]) -> list[str]:
    """Group top modules plus their parameter-free siblings (pooling, activations between stages)."""
    tops = [m for g in groups for m in g.modules]
    mods = dict(model.named_modules())
    units = set(tops)
    for t in tops:
        parent = t.rpartition(".")[0]
        for name, child in (mods[parent] if parent else model).named_children():
            full = f"{parent}.{name}" if parent else name
            if not any(True for _ in child.parameters()):
                units.add(full)
    return [n for n in mods if n in units]


def _record(
    model: nn.Module, groups: list[LayerGroup], example: torch.Tensor
) -> tuple[list[tuple[str, int, torch.Tensor]], torch.Tensor]:
    """One eval-mode forward_features: (unit name, id of its input, its output) in call order, and the output."""
    mods = dict(model.named_modules())
    calls: list[tuple[str, int, torch.Tensor]] = []
    handles = [
        mods[u].register_forward_hook(lambda m, i, o, u=u: calls.append((u, id(i[0]) if i else 0, o)))
        for u in _units(model, groups)
    ]
    try:
        with evaluating(model), torch.no_grad():
            out = model.forward_features(example)
    finally:
        for h in handles:
            h.remove()
    return calls, out


class SplitModel:
    """`prefix(x)` → activation at the boundary (timm's `forward_intermediates`, stopping early); `suffix(a)` →
    logits (the recorded chain of modules above it). `suffix(prefix(x)) == model(x)`."""

    def __init__(self, model: TapModel, groups: list[LayerGroup], boundary: int, example: torch.Tensor):
        """Args: boundary: index of the first group above the cut (1 ≤ boundary < head).

        Raises:
            ValueError: The modules above the boundary do not run as a simple chain, or no intermediate output of
                timm's lies at the boundary.
        """
        self.model = model
        owners = stage_owners(model.arch)
        at = [i for i, g in enumerate(owners) if g == boundary - 1]
        if not at:
            raise ValueError(f"{model.arch} has no intermediate output after {groups[boundary - 1].name}")
        self.index = at[-1]
        last = [g for g in groups[:boundary] if g.modules][-1]
        mods = dict(model.named_modules())
        calls, out = _record(model, groups, example)
        names = [c[0] for c in calls]
        tap = max(i for i, n in enumerate(names) if n in last.modules)
        chain = calls[tap + 1 :]
        prev = calls[tap][2]
        for name, inp, o in chain:
            if inp != id(prev) or names.count(name) != 1:
                raise ValueError(f"{type(model).__name__} does not run as a chain above {last.name} ({name})")
            prev = o
        if prev is not out:
            raise ValueError(f"{type(model).__name__}: forward_features does more after {names[-1]}")
        self.suffix_units = [mods[n] for n, _, _ in chain]
        self.activation_bytes = calls[tap][2][0].numel() * 4  # one image's activation at the cut, float32
        with evaluating(model), torch.no_grad():
            same = torch.equal(self.prefix(example), calls[tap][2])
        if not same:
            raise ValueError(
                f"{model.arch}: timm's intermediate output {self.index} is not the input of {groups[boundary].name}"
            )

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The activation at the boundary: the backbone run only that far."""
        backbone = self.model.backbone
        return backbone.forward_intermediates(
            x, indices=[self.index], intermediates_only=True, stop_early=True, **timm_kwargs(backbone)
        )[0]

    def suffix_features(self, a: torch.Tensor) -> torch.Tensor:
        for unit in self.suffix_units:
            a = unit(a)
        return a

    def suffix(self, a: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.suffix_features(a))
