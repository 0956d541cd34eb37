"""Frozen features: the model's input contract, images decoded once per resolution, pooled features cached on disk.

The cache key is (backbone, weights hash, data fingerprint, transform, precision), so a repeated probe loads a small
.npz instead of running the network, and the model is not even built.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import timm.data
import torch
from PIL import Image
from torchvision.transforms import Normalize, ToTensor
from torchvision.transforms.functional import pil_to_tensor

from engine import paths
from engine.catalogue import get_entry
from engine.device import autocast, pick_device, precision_name
from engine.groups import StageTaps, layer_groups
from engine.imageio import load_image


@dataclass(frozen=True)
class InputSpec:
    """The input contract of a backbone, from timm's pretrained config: recorded with every probe, run and export."""

    input_size: tuple[int, int, int]
    interpolation: str
    crop_pct: float
    crop_mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_config(cls, cfg: dict) -> "InputSpec":
        c = timm.data.resolve_data_config(pretrained_cfg=cfg)
        return cls(tuple(c["input_size"]), c["interpolation"], float(c["crop_pct"]), c.get("crop_mode", "center"),
                   tuple(c["mean"]), tuple(c["std"]))

    @classmethod
    def for_backbone(cls, name: str, in_chans: int = 3) -> "InputSpec":
        return cls.from_config(get_entry(name).pretrained_cfg).with_chans(in_chans)

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    def with_chans(self, n: int) -> "InputSpec":
        """The contract for `n` input channels, its statistics matching `adapt_first_conv`'s filters: the RGB mean for
        1 channel, the first two for 2, RGB plus the RGB mean for each extra channel."""
        if n == self.in_chans:
            return self
        if self.in_chans != 3 or n < 1:
            raise ValueError(f"in_chans must be at least 1 (got {n}), adapted from a 3-channel contract")
        def extend(v: tuple[float, ...]) -> tuple[float, ...]:
            return (sum(v) / 3,) if n == 1 else v[:2] if n == 2 else v + (sum(v) / 3,) * (n - 3)
        return replace(self, input_size=(n, *self.input_size[1:]), mean=extend(self.mean), std=extend(self.std))

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def geometry(self) -> Callable:
        """timm's eval transform without ToTensor/Normalize: PIL (or uint8 tensor) in, resized and cropped out."""
        return _eval_geometry(self)

    def load(self, image_paths: list[str]) -> list[torch.Tensor]:
        """The images at `image_paths` through the eval geometry, as uint8 (C, H, W) tensors (decoded once)."""
        return DECODED.get_many(image_paths, self.key(), self.geometry(), chans=self.in_chans)

    def normalize(self, batch_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) to normalised float, channels-last."""
        mean = torch.tensor(self.mean, device=batch_u8.device).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=batch_u8.device).view(1, -1, 1, 1) * 255
        return ((batch_u8.float() - mean) / std).contiguous(memory_format=torch.channels_last)


@functools.cache
def _eval_geometry(spec: InputSpec) -> Callable:
    """Built once per contract: `load` and every batch of `extract` reuse it."""
    tf = timm.data.create_transform(input_size=spec.input_size, interpolation=spec.interpolation,
                                    crop_pct=spec.crop_pct, crop_mode=spec.crop_mode, is_training=False)
    steps = [t for t in tf.transforms
             if not isinstance(t, (ToTensor, Normalize)) and type(t).__name__ != "MaybeToTensor"]
    return lambda img: _compose(steps, img)


def _compose(steps: list, img):
    for s in steps:
        img = s(img)
    return img


def to_tensor(img: Image.Image | np.ndarray, geometry: Callable) -> torch.Tensor:
    """A decoded image (PIL, or an (H, W, C) uint8 array) through `geometry`, as a uint8 (C, H, W) tensor."""
    if isinstance(img, np.ndarray):
        return geometry(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    return pil_to_tensor(geometry(img))


class DecodeCache:
    """Decoded, resized images as uint8 tensors, kept in memory per (path, resolution): JPEGs are decoded once."""

    def __init__(self, max_bytes: int = 2 * 1024**3):
        self.max_bytes = max_bytes
        self._store: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._bytes = 0

    def get_many(self, paths_: list[str], key: str, geometry: Callable, workers: int = 4,
                 chans: int = 3) -> list[torch.Tensor]:
        """uint8 (chans, H, W) tensors of `paths_` after `geometry`; `key` names (geometry, chans) in the cache."""
        missing = [p for p in dict.fromkeys(paths_) if (p, key) not in self._store]
        if missing:
            decode = lambda q: to_tensor(load_image(q, chans), geometry)  # noqa: E731
            with ThreadPoolExecutor(workers) if len(missing) > 1 and workers > 1 else nullcontext() as pool:
                for p, t in zip(missing, pool.map(decode, missing) if pool else map(decode, missing)):
                    self._put((p, key), t)
        out = []
        for p in paths_:
            self._store.move_to_end((p, key))
            out.append(self._store[(p, key)])
        return out

    def _put(self, k: tuple[str, str], t: torch.Tensor) -> None:
        self._store[k] = t
        self._bytes += t.numel()
        while self._bytes > self.max_bytes and len(self._store) > 1:
            _, old = self._store.popitem(last=False)
            self._bytes -= old.numel()


DECODED = DecodeCache()


@torch.inference_mode()
def extract(model: torch.nn.Module, spec: InputSpec, image_paths: list[str], batch_size: int = 64,
            device: torch.device | None = None, progress: Callable[[int, int], None] | None = None
            ) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """Pooled final features and pooled features after every non-head layer group.

    Returns:
        (final (N, D), per-group features [(N, D_g)], group names).
    """
    device = device or pick_device()
    model = model.eval().to(device, memory_format=torch.channels_last)
    groups = layer_groups(model)
    finals, stages = [], []
    with StageTaps(model, groups) as taps, autocast(device):
        for start in range(0, len(image_paths), batch_size):
            chunk = image_paths[start:start + batch_size]
            x = spec.normalize(torch.stack(spec.load(chunk)).to(device))
            finals.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
            stages.append([f.cpu() for f in taps.features()])
            if progress:
                progress(min(start + batch_size, len(image_paths)), len(image_paths))
        names = [g.name for g in taps.groups]
    per_stage = [torch.cat([s[i] for s in stages]).numpy() for i in range(len(names))]
    return torch.cat(finals).numpy(), per_stage, names


@dataclass
class FeatureSet:
    """Features of every item of a dataset, in `Dataset.items` order."""

    final: np.ndarray
    stages: list[np.ndarray]
    stage_names: list[str]
    labels: np.ndarray
    splits: np.ndarray
    cached: bool

    def select(self, split: str, stage: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        mask = self.splits == split
        feats = self.final if stage is None else self.stages[stage]
        return feats[mask], self.labels[mask]


def feature_key(backbone: str, weights_sha: str | None, data_fingerprint: str, spec: InputSpec, precision: str) -> str:
    raw = f"{backbone}|{weights_sha}|{data_fingerprint}|{spec.key()}|{precision}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def load_cached(key: str) -> FeatureSet | None:
    path = paths.cache_dir() / f"features-{key}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        n = int(z["n_stages"])
        return FeatureSet(z["final"], [z[f"stage{i}"] for i in range(n)], list(z["stage_names"]), z["labels"],
                          z["splits"], cached=True)


def save_cached(key: str, fs: FeatureSet) -> Path:
    path = paths.cache_dir() / f"features-{key}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, final=fs.final, labels=fs.labels, splits=fs.splits, n_stages=len(fs.stages),
             stage_names=np.array(fs.stage_names), **{f"stage{i}": s for i, s in enumerate(fs.stages)})
    tmp.replace(path)  # atomic: a crash never leaves a torn cache file
    return path


def current_precision(device: torch.device | None = None) -> str:
    return precision_name(device or pick_device())
