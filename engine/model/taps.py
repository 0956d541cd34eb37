"""Reading a timm backbone at several depths, with timm's own `forward_intermediates` and `prune_intermediate_layers`.

A *tap* is the index of one of the backbone's intermediate outputs (timm's numbering, every block stage included), or
`FINAL` for its pre-logit features. `TapModel` is the model every run trains and exports: the backbone pruned after
its deepest tap, each tap's output average-pooled, the pooled vectors concatenated, standardised and classified by a
linear head (`ProbeHead`). With one `FINAL` tap it is the usual "backbone + new classifier".
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from engine.model.catalogue import build_model, catalogue_name
from engine.model.profile import architecture, matcher, pool, timm_kwargs

FINAL = -1  # the tap of the backbone's pre-logit features (forward_features, then forward_head(pre_logits=True))


def tap_features(model: nn.Module, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
    """The pooled output of every tap of `model` (a timm backbone) for `x`, in the order of `taps`."""
    body = sorted(t for t in taps if t != FINAL)
    out: dict[int, torch.Tensor] = {}
    if FINAL in taps:
        if body:
            final, inter = model.forward_intermediates(x, indices=body, **timm_kwargs(model))
            out.update(zip(body, inter))
        else:
            final = model.forward_features(x)
        out[FINAL] = model.forward_head(final, pre_logits=True).float()
    elif body:
        inter = model.forward_intermediates(
            x, indices=body, intermediates_only=True, stop_early=True, **timm_kwargs(model)
        )
        out.update(zip(body, inter))
    return [pool(out[t]) for t in taps]


def stage_owners(name: str) -> tuple[int, ...]:
    """For each intermediate index of architecture `name`, the layer group that produces it: the deepest group whose
    parameters it depends on (`engine.model.profile`, found once per architecture)."""
    return architecture(name).tap_owners


def tap_dims(name: str) -> tuple[tuple[int, ...], int]:
    """(channels of every intermediate, width of the FINAL features) of architecture `name` (`engine.model.profile`)."""
    arch = architecture(name)
    return arch.tap_dims, arch.final_dim


class ProbeHead(nn.Module):
    """The classifier: standardise the features (fixed buffers), dropout, then a linear layer, always in float32.

    A head that starts from the linear probe keeps the probe's standardisation as buffers instead of folding it into
    its weights: folded weights are badly conditioned (a large intercept cancels a large product), so Adam's
    uniform-size first steps wreck them, and in bf16 they lose most of their precision. Dropout acts after the
    standardisation, where a dropped feature is neutral (0) rather than an outlier.
    """

    def __init__(self, in_features: int, num_classes: int, drop: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.register_buffer("temperature", torch.ones(()))  # fitted on val at the end (engine.calibration)
        self.drop = drop

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "temperature", torch.ones(()))  # weights saved before it existed: T = 1
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def standardise(self, f: torch.Tensor) -> torch.Tensor:
        """The features as the linear layer reads them (float32, standardised)."""
        return (f.float() - self.mean) / self.scale

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=f.device.type, enabled=False):
            x = self.standardise(f)
            x = nn.functional.dropout(x, self.drop, self.training) if self.drop > 0 else x
            return self.fc(x) / self.temperature

    @torch.no_grad()
    def load_probe(self, coef: torch.Tensor, intercept: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Starts from a linear probe fitted on standardised features (its scaler's mean and scale)."""
        for dst, src in ((self.fc.weight, coef), (self.fc.bias, intercept), (self.mean, mean), (self.scale, scale)):
            dst.copy_(torch.as_tensor(src, dtype=torch.float32))


class TapModel(nn.Module):
    """A timm backbone read at `taps`, with a `ProbeHead` on the concatenated, pooled tap outputs.

    Args:
        backbone: A timm model (its ImageNet classifier is removed; it is pruned after the deepest tap unless FINAL
            is among the taps).
        taps: Intermediate indices (timm's `forward_intermediates` numbering) and/or `FINAL`.
        num_classes: Output classes.
        flip_tta: In eval mode, average the features of the image and its mirror image.
        drop: Dropout before the linear layer, in training.
    """

    def __init__(
        self, backbone: nn.Module, taps: tuple[int, ...], num_classes: int, flip_tta: bool = False, drop: float = 0.0
    ):
        super().__init__()
        self.taps, self.flip_tta = tuple(taps), flip_tta
        backbone.reset_classifier(0)
        if FINAL not in self.taps:
            backbone.prune_intermediate_layers([max(self.taps)], prune_head=True, **timm_kwargs(backbone))
        self.backbone = backbone
        self.arch = catalogue_name(backbone)
        dims, final = tap_dims(self.arch)
        self.num_features = sum(final if t == FINAL else dims[t] for t in self.taps)
        self.head = ProbeHead(self.num_features, num_classes, drop)
        self.pretrained_cfg = {**(getattr(backbone, "pretrained_cfg", None) or {}), "classifier": "head"}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The concatenated pooled tap outputs (float32); the mirror-image average in eval mode with `flip_tta`."""
        f = torch.cat(tap_features(self.backbone, x, self.taps), dim=1)
        if self.flip_tta and not self.training:  # two passes, not one of 2B: a traced export keeps a dynamic batch
            f = (f + torch.cat(tap_features(self.backbone, x.flip(-1), self.taps), dim=1)) / 2
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    # The timm interface the cached-activation path relies on (FINAL-only models).
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        f = self.backbone.forward_head(x, pre_logits=True).float()
        return f if pre_logits else self.head(f)

    def get_classifier(self) -> ProbeHead:
        return self.head

    def group_matcher(self, coarse: bool = True):
        """The backbone's own layer groups (timm's `group_matcher`), then this model's head as the last group."""
        return matcher(self.backbone, coarse)


@functools.cache
def cut_params(name: str, taps: tuple[int, ...], num_classes: int) -> int:
    """Parameters of the `TapModel` of catalogue backbone `name` read at `taps` (pruned after the deepest) with a
    head of `num_classes`: what a deployment budget counts. Counted on the meta device (no memory, no weights)."""
    architecture(name)  # profiled once on real tensors; the count below reads it
    with torch.device("meta"):
        return sum(p.numel() for p in TapModel(build_model(name), taps, num_classes).parameters())
