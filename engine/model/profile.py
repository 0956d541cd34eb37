"""A backbone's profile: the facts about it that planning reads, asked once from one model instance.

Planning needs to know, before anything trains, what a backbone is made of and what it costs here: its layer groups
(those of the model a run trains: the backbone with a head on its final features, or pruned after a deeper tap), its
taps and their widths, which group produces each tap, its normalisation (BatchNorm keeps running statistics,
LayerNorm does not), its parameters and the shapes a weights file must fit, each group's forward FLOPs, the
activation bytes at the input of each group (what a cut there caches per image) and the seconds an inference forward
pass and a training step take on this machine.

`profile(backbone, size, device)` builds the architecture once (randomly initialised, on the CPU) and reads all of
it from that instance: the structure and shapes from copies of it on the meta device (no memory, no compute), the
owners of the taps and the step costs from the instance itself. An architecture asked for on its own keeps its
instance until its profile is made from it. The architecture's facts (`Architecture`) are
independent of the input size and kept for the process; a profile adds what depends on the size and the device.
Nothing else in planning builds a model to ask these questions (timm's `pretrained_cfg` and `feature_info` play the
same part for timm: the model's facts, asked once).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import itertools
import math
import threading
from dataclasses import dataclass

import torch
from timm.models import group_parameters
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from engine.model.catalogue import build_model, is_transformer, pretrained_cfg
from engine.model.groups import layer_groups
from engine.model.pace import step_costs

NORMS = ("batchnorm", "layernorm", "none")  # the normalisation kinds: running statistics, per-sample, none
_LOCK = threading.RLock()  # one build per architecture, whichever thread asks first
_ARCHITECTURES: dict[str, "Architecture"] = {}
_PROFILES: dict[tuple[str, int, str], "BackboneProfile"] = {}
_spare: tuple[str, nn.Module] | None = None  # the instance an architecture was last read from, until its profile is
# made from it too (one instance kept at most: a profile asked for later builds its own)


@dataclass(frozen=True)
class Architecture:
    """What a backbone is made of, whatever its input size.

    Attributes:
        name: The catalogue (or timm) name.
        tap_dims: Channels of every intermediate output (timm's `forward_intermediates` numbering).
        final_dim: Width of the pre-logit features (the `FINAL` tap).
        tap_owners: For each intermediate, the index of the layer group that produces it.
        groups: The layer groups of the trained model with a head on the final features, the head last.
        pruned_groups: For each intermediate, the groups of the trained model pruned after it (a head on that tap).
        backbone_groups: The bare backbone's own groups (its ImageNet classifier included), as FLOPs are counted.
        norm: One of `NORMS`.
        transformer: A stack of identical transformer blocks (rates decay per block, not per stage).
        params: Parameters with the pretrained head.
        shapes: Every state-dict entry's shape, in the model's order (what a weights file must fit).
    """

    name: str
    tap_dims: tuple[int, ...]
    final_dim: int
    tap_owners: tuple[int, ...]
    groups: tuple[str, ...]
    pruned_groups: tuple[tuple[str, ...], ...]
    backbone_groups: tuple[str, ...]
    norm: str
    transformer: bool
    params: int
    shapes: tuple[tuple[str, tuple[int, ...]], ...]

    def groups_for(self, taps: tuple[int, ...]) -> tuple[str, ...]:
        """The layer groups of the model a run trains with a head on `taps`: pruned after the deepest tap unless the
        final features are among them."""
        if any(t < 0 for t in taps):
            return self.groups
        return self.pruned_groups[max(taps)]

    def head_dim(self, taps: tuple[int, ...]) -> int:
        """The width of the head's input: the pooled features of `taps`, concatenated."""
        return sum(self.final_dim if t < 0 else self.tap_dims[t] for t in taps)

    @property
    def has_batchnorm(self) -> bool:
        return self.norm == "batchnorm"

    def tap_names(self) -> list[str]:
        """A name for each intermediate: the first module of its owner group ("blocks.6" for
        "blocks.6+conv_head+bn2"), numbered when a group produces several."""
        out = []
        for i, g in enumerate(self.tap_owners):
            same = [j for j, o in enumerate(self.tap_owners) if o == g]
            first = self.backbone_groups[g].split("+")[0]
            out.append(first if len(same) == 1 else f"{first}#{same.index(i) + 1}")
        return out


@dataclass(frozen=True)
class BackboneProfile:
    """A backbone at one input size on one kind of device: its architecture and what it costs here.

    Attributes:
        arch: The size-independent facts.
        size: The input side (px).
        device: "cpu" or "cuda" (step costs are measured per kind of device).
        group_flops: Forward FLOPs of one image through each of the bare backbone's groups (`arch.backbone_groups`).
        cut_bytes: For each group of `arch.groups`, the bytes of one image's float32 activation at its input (None:
            the forward pass does not reach it as a module call, so no cut is made there).
        forward_s: Seconds per image of an inference forward pass through the whole network, measured here.
        step_s: Seconds per image of a training step (forward with gradients and backward), measured here.
    """

    arch: Architecture
    size: int
    device: str
    group_flops: tuple[float, ...]
    cut_bytes: tuple[int | None, ...]
    forward_s: float
    step_s: float

    @property
    def name(self) -> str:
        return self.arch.name

    @property
    def total_flops(self) -> float:
        return sum(self.group_flops)

    def flops_share(self, trainable: list[str] | tuple[str, ...]) -> float:
        """The share of the forward FLOPs in the groups named `trainable` (the head's are negligible and not
        counted)."""
        flops = dict(zip(self.arch.backbone_groups, self.group_flops))
        return sum(flops.get(g, 0.0) for g in trainable) / max(sum(flops.values()), 1.0)

    def cut(self, group: str) -> int | None:
        """Bytes per image cached by a cut at the input of `group` (a group of the model with a final-features
        head)."""
        return dict(zip(self.arch.groups, self.cut_bytes)).get(group)

    @property
    def forward_pace(self) -> float:
        """Images a second of an inference forward pass (no decoding)."""
        return 1.0 / max(self.forward_s, 1e-9)

    # PLR0913: each argument is one measured input of the cost model
    def epoch_seconds(
        self, trainable: list[str], n_train: int, n_val: int, images_per_s: float, val_views: int = 1
    ) -> float:
        """Seconds for one fine-tuning epoch on the full-forward path: every training image's forward at the probe's
        pace (`images_per_s`, decoding included), plus what a training step costs beyond a forward pass in proportion
        to the FLOPs of the `trainable` groups; then the validation forward of `val_views` views of each val image."""
        share = self.flops_share(trainable)
        backward = max(0.0, self.step_s - self.forward_s) * share if share else 0.0
        return n_train * (1 / images_per_s + backward) + n_val * val_views / images_per_s

    def cached_epoch_seconds(self, trainable: list[str], n_train: int, n_val: int) -> float:
        """Seconds for one fine-tuning epoch on cached activations: a training step through the `trainable` groups
        alone for every training image (their share of the FLOPs of a measured step), then their forward for each
        val image."""
        return self.flops_share(trainable) * (n_train * self.step_s + n_val * self.forward_s)


def architecture(name: str) -> Architecture:
    """The facts of architecture `name`, from one randomly initialised instance built the first time they are
    asked for in this process."""
    global _spare
    with _LOCK:
        if name not in _ARCHITECTURES:
            _spare = (name, _instance(name))
            _read(name, _spare[1], None)
        return _ARCHITECTURES[name]


def profile(name: str, size: int, device: str = "cpu") -> BackboneProfile:
    """The profile of backbone `name` at `size` px on `device`, made from one instance the first time it is asked
    for in this process (the step costs are also kept in the cache folder across processes)."""
    key = (name, int(size), device)
    global _spare
    with _LOCK:
        if key not in _PROFILES:
            if _spare is not None and _spare[0] == name:
                model, _spare = _spare[1], None
            else:
                model = _instance(name)
            _read(name, model, key)
        return _PROFILES[key]


def _instance(name: str) -> nn.Module:
    """The one instance a profile is read from: randomly initialised without touching the caller's random state,
    with ordinary autograd (planning may run under inference mode; the step costs need gradients)."""
    with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
        return build_model(name, pretrained=False).eval()


def _read(name: str, model: nn.Module, key: tuple[str, int, str] | None) -> None:
    """Records the architecture of `model` (unless known) and, with `key`, its profile at that size and device.

    The architecture is read in full precision whatever autocast the caller runs under (a probe's extraction asks for
    the next backbone's profile mid-pass): autocast caches each weight's cast copy, so the NaN that `_owners` puts in
    one group's weights would stay in the cache, and every group would seem to own every intermediate."""
    with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
        if name not in _ARCHITECTURES:
            with _full_precision():
                _ARCHITECTURES[name] = _architecture(name, model)
        if key is not None:
            _PROFILES[key] = _profile(_ARCHITECTURES[name], model, key[1], key[2])


def _full_precision() -> contextlib.ExitStack:
    """Autocast off on the CPU and, where there is one, the GPU."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast("cpu", enabled=False))
    if torch.cuda.is_available():
        stack.enter_context(torch.autocast("cuda", enabled=False))
    return stack


def meta_copy(model: nn.Module) -> nn.Module:
    """A structural copy of `model` on the meta device: every parameter and buffer replaced by one of its shape
    without data (nothing is allocated or computed)."""
    memo: dict[int, object] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        empty = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(empty, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else empty
    return copy.deepcopy(model, memo)


def _probe_size(name: str) -> int:
    """The side the taps' widths are read at: the pretrained size where the model fixes it, else 64 px."""
    cfg = pretrained_cfg(name)
    return cfg.get("input_size", (3, 224, 224))[-1] if cfg.get("fixed_input_size") else 64


def _norm(model: nn.Module) -> str:
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return "batchnorm"
    if any(isinstance(m, (nn.LayerNorm, nn.GroupNorm)) for m in model.modules()):
        return "layernorm"
    return "none"


def _architecture(name: str, model: nn.Module) -> Architecture:
    meta = meta_copy(model)
    x = torch.empty(1, 3, _probe_size(name), _probe_size(name), device="meta")
    inter = meta.forward_intermediates(x, intermediates_only=True, **timm_kwargs(meta))
    dims = tuple(int(pool(t).shape[1]) for t in inter)
    final = int(meta.forward_head(meta.forward_features(x), pre_logits=True).shape[1])
    pruned = []
    for i in range(len(dims)):
        m = meta_copy(model)
        m.reset_classifier(0)
        m.prune_intermediate_layers([i], prune_head=True, **timm_kwargs(m))
        pruned.append(tuple(g.name for g in layer_groups(Trained(m))))
    whole = meta_copy(model)
    whole.reset_classifier(0)
    return Architecture(
        name=name,
        tap_dims=dims,
        final_dim=final,
        tap_owners=_owners(model, name, len(dims)),
        groups=tuple(g.name for g in layer_groups(Trained(whole))),
        pruned_groups=tuple(pruned),
        backbone_groups=tuple(g.name for g in layer_groups(meta)),
        norm=_norm(model),
        transformer=is_transformer(name),
        params=sum(p.numel() for p in model.parameters()),
        shapes=tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()),
    )


def _owners(model: nn.Module, name: str, n_taps: int) -> tuple[int, ...]:
    """For each intermediate, the layer group that produces it: the deepest group whose parameters it depends on.
    Each group's parameters in turn are set to NaN on the instance (and put back), and the intermediates that turn
    NaN depend on it. Nothing is written per architecture."""
    groups = layer_groups(model)
    params = dict(model.named_parameters())
    side = _probe_size(name)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    owners = [-1] * n_taps
    with torch.no_grad():
        for g in groups:
            saved = {n: params[n].detach().clone() for n in g.params}
            for n in g.params:
                params[n].fill_(math.nan)
            for i, t in enumerate(model.forward_intermediates(x, intermediates_only=True, **timm_kwargs(model))):
                if torch.isnan(t).any():
                    owners[i] = g.index
            for n, v in saved.items():
                params[n].copy_(v)
    return tuple(owners)


def _profile(arch: Architecture, model: nn.Module, size: int, device: str) -> BackboneProfile:
    """The size- and device-dependent facts; the step costs last (measuring them trains the instance a step)."""
    meta = meta_copy(model)
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, size, size, device="meta"))
    counts = {k.partition(".")[2]: sum(v.values()) for k, v in counter.get_flop_counts().items() if "." in k}
    flops = tuple(float(sum(counts.get(m, 0) for m in g.modules)) for g in layer_groups(meta))
    cuts = _cut_bytes(model, arch, size)
    fwd, step = step_costs(arch.name, size, device, lambda: model)
    return BackboneProfile(arch, size, device, flops, cuts, fwd, step)


def _cut_bytes(model: nn.Module, arch: Architecture, size: int) -> tuple[int | None, ...]:
    """Per group of the model with a final-features head: the float32 bytes of one image's activation at the input of
    its first module, read from a forward pass on the meta device (the first call of that module)."""
    backbone = meta_copy(model)
    backbone.reset_classifier(0)
    tapped = Trained(backbone, arch.final_dim, device="meta")
    seen: dict[str, int] = {}
    hooks = []
    for g in layer_groups(tapped):

        def record(_, args, name=g.name) -> None:
            seen.setdefault(name, args[0].numel() * 4)

        hooks.append(tapped.get_submodule(g.modules[0]).register_forward_pre_hook(record))
    try:
        tapped(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return tuple(seen.get(g) for g in arch.groups)


# ------------------------------------------------------------------------ how taps are read and groups are made
def timm_kwargs(model: nn.Module) -> dict:
    """Extra arguments that make `forward_intermediates` list every block stage (EfficientNet, MobileNet)."""
    return {"extra_blocks": True} if "extra_blocks" in inspect.signature(model.forward_intermediates).parameters else {}


def pool(t: torch.Tensor) -> torch.Tensor:
    """Global average pool in float32: (B, C, H, W) over space, (B, N, C) over tokens. A float32 tensor is pooled
    without the `dtype` argument (the same arithmetic), which converters such as litert-torch do not take."""
    if t.ndim not in (3, 4):
        return t.float().flatten(1)
    dims = (2, 3) if t.ndim == 4 else (1,)
    return t.mean(dim=dims) if t.dtype == torch.float32 else t.mean(dim=dims, dtype=torch.float32)


def matcher(backbone: nn.Module, coarse: bool):
    """A `group_matcher` for a model holding `backbone` and a head: the backbone's groups, then the head."""
    grouped = group_parameters(backbone, backbone.group_matcher(coarse=coarse))
    owner = {f"backbone.{n}": i for i, key in enumerate(sorted(grouped)) for n in grouped[key]}
    return lambda name: (owner.get(name, len(grouped)),)


class Trained(nn.Module):
    """The model a run trains as its layer groups and its forward pass see it: a backbone (its classifier reset,
    pruned after the deepest tap unless the final features are read) and a linear head on its pooled final features.
    `engine.model.taps.TapModel` groups the same way (`matcher`); this stand-in has no standardisation and no mirror
    averaging, which change no group and no activation a cut caches."""

    def __init__(self, backbone: nn.Module, head_dim: int = 1, device: str | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(head_dim, 2, device=device)
        self.pretrained_cfg = {**(getattr(backbone, "pretrained_cfg", None) or {}), "classifier": "head"}

    def group_matcher(self, coarse: bool = True):
        return matcher(self.backbone, coarse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True))
