"""Cutting a model at a layer-group boundary, so the frozen part runs once and its output can be cached.

The part above the boundary is executed as the chain of modules that `forward_features` calls, found by recording a
forward pass; the chain is verified by tensor identity (each module's input is the previous module's output), so a
model that does not run as a chain there is refused rather than mis-executed. Nothing is written per architecture.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.groups import LayerGroup


class ProbeLinear(nn.Linear):
    """The classifier: standardise features (fixed buffers), dropout, then a linear layer, always in float32.

    A head that starts from the linear probe keeps the probe's standardisation as buffers instead of folding it into
    its weights: folded weights are badly conditioned (a large intercept cancels a large product), so Adam's
    uniform-size first steps wreck them, and in bf16 they lose most of their precision. Dropout acts after the
    standardisation, where a dropped feature is neutral (0) rather than an outlier.
    """

    drop: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = (x.float() - self.feat_mean) / self.feat_scale
            if self.drop > 0:
                x = nn.functional.dropout(x, self.drop, self.training)
            return nn.functional.linear(x, self.weight.float(), None if self.bias is None else self.bias.float())

    def set_probe(self, coef: torch.Tensor, intercept: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> None:
        with torch.no_grad():
            self.weight.copy_(coef)
            self.bias.copy_(intercept)
            self.feat_mean.copy_(mean)
            self.feat_scale.copy_(scale)


def probe_classifier(model: nn.Module, drop: float = 0.0) -> ProbeLinear:
    """Turns the model's Linear classifier into a `ProbeLinear` (same parameters, identity standardisation) that
    also owns the head dropout (the model's own pre-classifier dropout is switched off)."""
    head = model.get_classifier()
    if type(head) is nn.Linear:
        head.__class__ = ProbeLinear
        head.register_buffer("feat_mean", torch.zeros(head.in_features, device=head.weight.device))
        head.register_buffer("feat_scale", torch.ones(head.in_features, device=head.weight.device))
    head.drop = drop
    if hasattr(model, "drop_rate"):
        model.drop_rate = 0.0
    return head


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


def _record(model: nn.Module, groups: list[LayerGroup], example: torch.Tensor
            ) -> tuple[list[tuple[str, int, torch.Tensor]], torch.Tensor]:
    """One eval-mode forward_features: (unit name, id of its input, its output) in call order, and the output."""
    mods = dict(model.named_modules())
    calls: list[tuple[str, int, torch.Tensor]] = []
    handles = [mods[u].register_forward_hook(lambda m, i, o, u=u: calls.append((u, id(i[0]) if i else 0, o)))
               for u in _units(model, groups)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model.forward_features(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return calls, out


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
        calls, out = _record(model, groups, example)
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


def chain_until(model: nn.Module, groups: list[LayerGroup], stage: int, example: torch.Tensor
                ) -> tuple[list[str], int]:
    """Names of the modules that `forward_features` runs as a plain chain from the input to the end of group `stage`,
    and the number of channels there. The model is run once in eval mode (no BatchNorm statistic changes).

    Raises:
        ValueError: Part of that path is not a chain (extra inputs, repeated calls) or its output is not a feature map.
    """
    calls, _ = _record(model, groups, example)
    names = [c[0] for c in calls]
    tap = max(i for i, n in enumerate(names) if n in groups[stage].modules)
    prev_id = id(example)
    for name, inp, out in calls[:tap + 1]:
        if inp != prev_id or names.count(name) != 1:
            raise ValueError(f"{type(model).__name__} does not run as a chain up to {groups[stage].name} ({name})")
        prev_id = id(out)
    if calls[tap][2].ndim != 4:
        raise ValueError(f"{type(model).__name__}: the output of {groups[stage].name} is not a feature map")
    return names[:tap + 1], int(calls[tap][2].shape[1])


class StageHeadModel(nn.Module):
    """A backbone cut after one layer group, with global average pooling and a new linear head.

    Used when the features of an intermediate stage transfer better than the final ones. It keeps the timm model
    interface the engine relies on (`forward_features`, `forward_head`, `get_classifier`, `reset_classifier`,
    `group_matcher`) and exports like any module.
    """

    def __init__(self, model: nn.Module, groups: list[LayerGroup], stage: int, num_classes: int, example: torch.Tensor,
                 drop_rate: float = 0.0):
        super().__init__()
        mods = dict(model.named_modules())
        names, channels = chain_until(model, groups, stage, example)
        owner = {m: g.index for g in groups[:stage + 1] for m in g.modules}
        unit_group, last = [], 0
        for n in names:
            last = owner.get(n, last)  # parameter-free units join the group before them
            unit_group.append(last)
        self.units = nn.ModuleList(mods[n] for n in names)
        self.unit_names = names
        self.unit_group = unit_group
        self.group_labels = [g.name for g in groups[:stage + 1]] + ["head"]
        self.num_features = channels
        self.head_drop = drop_rate
        self.classifier = nn.Linear(self.num_features, num_classes)
        probe_classifier(self, drop_rate)
        self.pretrained_cfg = {**(getattr(model, "pretrained_cfg", None) or {}), "classifier": "classifier"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = unit(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.float().mean(dim=(2, 3))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes)
        probe_classifier(self, self.head_drop)

    def group_matcher(self, coarse: bool = True):
        head = len(self.group_labels) - 1

        def match(name: str) -> tuple[int]:
            if name.startswith("units."):
                return (self.unit_group[int(name.split(".")[1])],)
            return (head,)
        return match
