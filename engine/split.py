"""Cutting a model at a layer-group boundary, so the frozen part runs once and its output can be cached.

The part above the boundary is executed as the chain of modules that `forward_features` calls, found by recording a
forward pass; the chain is verified by tensor identity (each module's input is the previous module's output), so a
model that does not run as a chain there is refused rather than mis-executed. Nothing is written per architecture.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.groups import LayerGroup


class _Stop(Exception):
    def __init__(self, value: torch.Tensor):
        self.value = value


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


class SplitModel:
    """`prefix(x)` → activation at the boundary; `suffix(a)` → logits. `suffix(prefix(x)) == model(x)`."""

    def __init__(self, model: nn.Module, groups: list[LayerGroup], boundary: int, example: torch.Tensor):
        """Args: boundary: index of the first group above the cut (1 ≤ boundary < head).

        Raises:
            ValueError: The modules above the boundary do not run as a simple chain.
        """
        self.model = model
        last = [g for g in groups[:boundary] if g.modules][-1]
        mods = dict(model.named_modules())
        calls: list[tuple[str, int, torch.Tensor]] = []
        handles = [mods[u].register_forward_hook(lambda m, i, o, u=u: calls.append((u, id(i[0]) if i else 0, o)))
                   for u in _units(model, groups)]
        try:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                out = model.forward_features(example)
            model.train(was_training)
        finally:
            for h in handles:
                h.remove()
        names = [c[0] for c in calls]
        tap = max(i for i, n in enumerate(names) if n in last.modules)
        chain = calls[tap + 1:]
        prev = calls[tap][2]
        for name, inp, o in chain:
            if inp != id(prev) or names.count(name) != 1:
                raise ValueError(f"{type(model).__name__} does not run as a chain above {last.name} ({name})")
            prev = o
        if prev is not out:
            raise ValueError(f"{type(model).__name__}: forward_features does more after {names[-1]}")
        self.tap_name = names[tap]
        self.suffix_units = [mods[n] for n, _, _ in chain]
        self.tap = mods[self.tap_name]

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """Runs forward_features only up to the boundary."""
        handle = self.tap.register_forward_hook(lambda m, i, o: (_ for _ in ()).throw(_Stop(o)))
        try:
            self.model.forward_features(x)
        except _Stop as s:
            return s.value
        finally:
            handle.remove()
        raise RuntimeError("the boundary module did not run")

    def suffix_features(self, a: torch.Tensor) -> torch.Tensor:
        for unit in self.suffix_units:
            a = unit(a)
        return a

    def suffix(self, a: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.suffix_features(a))
