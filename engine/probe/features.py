"""Frozen features: the pooled output of every tap of a backbone, for each image and its mirror image, streamed to disk.

One forward pass per batch (`forward_intermediates`) gives every stage at once. The arrays are written to `.npy` files
as they are computed and read back memory-mapped, so memory does not grow with the number of images. The cache key is
(backbone, weights hash, data, input contract, precision), so a repeated probe loads them instead of running the
network, and the model is not even built.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from engine import paths
from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.model.catalogue import catalogue_name
from engine.model.device import autocast, pick_device, precision_name, to_device
from engine.model.resources import feature_bytes, need_disk
from engine.model.taps import FINAL, tap_dims, tap_features
from engine.paths import memory_share
from engine.progress import QUIET_STEP, Step

VIEWS = ("image", "mirror image")
MIRROR_MAX_IMAGES = 5000  # above this many images the probe reads each image once: the mirror view's gain is small
MIN_FIT_ROWS = 4000  # a fit always may use this many images, whatever the budget
FIT_BYTES_PER_VALUE = 24  # float32 features, sklearn's float64 copy and the standardised copy


@dataclass
class FeatureSet:
    """Pooled features of a list of items at every tap: `arrays[tap]` is (N, views, D), possibly memory-mapped."""

    taps: tuple[int, ...]
    arrays: dict[int, np.ndarray]
    labels: np.ndarray
    splits: np.ndarray
    cached: bool = False
    images_per_s: float = 0.0  # forward passes a second (every view) when the features were extracted

    def x(self, split: str, taps: tuple[int, ...], view: int = 0) -> np.ndarray:
        """(n, D) features of one split at the concatenated `taps`, for one view."""
        return self.rows(np.flatnonzero(self.splits == split), taps, view)

    def rows(self, index: np.ndarray, taps: tuple[int, ...], view: int = 0) -> np.ndarray:
        """(len(index), D) features of the items `index` at the concatenated `taps`, for one view."""
        return np.concatenate([np.asarray(self.arrays[t][index, view], dtype=np.float32) for t in taps], axis=1)

    def dim(self, taps: tuple[int, ...]) -> int:
        return sum(int(self.arrays[t].shape[2]) for t in taps)

    def y(self, split: str) -> np.ndarray:
        return self.labels[self.splits == split]

    @property
    def views(self) -> int:
        return next(iter(self.arrays.values())).shape[1]


# PLR0913: every input the cache key depends on
def feature_key(  # noqa: PLR0913
    backbone: str,
    weights_sha: str | None,
    data_fingerprint: str,
    spec: InputSpec,
    precision: str,
    views: int,
) -> str:
    raw = f"{backbone}|{weights_sha}|{data_fingerprint}|{spec.key()}|{precision}|{views}|taps-v2"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _name(tap: int) -> str:
    return "final" if tap == FINAL else f"tap{tap}"


@torch.inference_mode()
# PLR0913: the model, its input, where the features go, and how
def extract(  # noqa: PLR0913
    model: nn.Module,
    spec: InputSpec,
    image_paths: list[str],
    out_dir: Path,
    views: int = 2,
    batch_size: int = 32,
    device: torch.device | None = None,
    progress: Step = QUIET_STEP,
) -> tuple[int, ...]:
    """Writes the pooled features of every intermediate and of FINAL, for `views` views (the image, then its mirror
    image), as `out_dir/tap<i>.npy` and `final.npy` of shape (N, views, D). Returns the taps written.

    Args:
        model: A timm backbone (eval mode is set here).
        progress: Told the fraction of images done after every batch, and asked for a cancel before it.
    """
    device = device or pick_device()
    model = model.eval().to(device, memory_format=torch.channels_last)
    n = len(image_paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    taps = tuple(range(len(tap_dims(catalogue_name(model))[0]))) + (FINAL,)
    arrays: dict[int, np.memmap] = {}  # .npy files written block by block: the whole array is never in memory
    try:
        with autocast(device):
            for start in range(0, n, batch_size):
                progress.check_cancel()
                chunk = image_paths[start : start + batch_size]
                x = spec.normalize(to_device(torch.stack(load_images(spec, chunk, keep=False)), device))
                xs = torch.cat([x, x.flip(-1)]) if views == 2 else x
                feats = tap_features(model, xs, taps)
                for tap, f in zip(taps, feats):
                    f = f.float().cpu().numpy().reshape(views, len(chunk), -1).transpose(1, 0, 2)
                    if tap not in arrays:
                        arrays[tap] = np.lib.format.open_memmap(
                            out_dir / f"{_name(tap)}.npy", mode="w+", dtype=np.float32, shape=(n, views, f.shape[2])
                        )
                    arrays[tap][start : start + len(chunk)] = f
                progress((start + len(chunk)) / n)
    finally:
        for a in arrays.values():
            a.flush()
    return tuple(arrays)


def load_cached(key: str) -> FeatureSet | None:
    """The cached features under `key` (memory-mapped), or None."""
    folder = paths.cache_dir() / f"features-{key}"
    if not (folder / "meta.json").exists():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    taps = tuple(meta["taps"])
    size = sum((folder / f"{_name(t)}.npy").stat().st_size for t in taps)
    mmap = "r" if size > memory_share("features") else None  # larger than its share: read from disk as used
    arrays = {t: np.load(folder / f"{_name(t)}.npy", mmap_mode=mmap) for t in taps}
    return FeatureSet(
        taps,
        arrays,
        np.load(folder / "labels.npy"),
        np.load(folder / "splits.npy"),
        cached=True,
        images_per_s=float(meta.get("images_per_s", 0.0)),
    )


# PLR0913: the cache key, the model, its input and labels, and how
def compute_cached(  # noqa: PLR0913
    key: str,
    model_fn: Callable[[], nn.Module],
    spec: InputSpec,
    image_paths: list[str],
    labels: np.ndarray,
    splits: np.ndarray,
    views: int = 2,
    device: torch.device | None = None,
    progress: Step = QUIET_STEP,
) -> FeatureSet:
    """The features under `key`, computed (and written to the cache atomically, by one builder at a time) when they
    are not there yet."""
    if (fs := load_cached(key)) is not None and len(fs.labels) == len(labels):
        return fs
    folder = paths.cache_dir() / f"features-{key}"
    with paths.building(folder, progress) as tmp:  # a second probe of the same photos waits, then reads these
        if (fs := load_cached(key)) is not None and len(fs.labels) == len(labels):
            return fs
        model = model_fn()
        need_disk(
            folder.parent,
            feature_bytes(catalogue_name(model), len(image_paths), views),
            f"the feature cache of {len(image_paths):,} images",
        )
        t0 = time.perf_counter()
        taps = extract(model, spec, image_paths, tmp, views, device=device, progress=progress)
        speed = views * len(image_paths) / max(time.perf_counter() - t0, 1e-9)
        np.save(tmp / "labels.npy", np.asarray(labels))
        np.save(tmp / "splits.npy", np.asarray(splits, dtype="U8"))
        (tmp / "meta.json").write_text(
            json.dumps({"taps": list(taps), "n": len(image_paths), "views": views, "images_per_s": speed})
        )
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    fs = load_cached(key)
    assert fs is not None
    fs.cached = False
    return fs


def current_precision(device: torch.device | None = None) -> str:
    return precision_name(device or pick_device())


def fit_rows(dim: int, views: int) -> int:
    """The most images one linear fit of `dim` features over `views` views may use: its share of the memory budget,
    and never fewer than MIN_FIT_ROWS. Above it, a fit uses a stratified sample (`cap_rows`)."""
    return max(MIN_FIT_ROWS, memory_share("linear fit") // (dim * views * FIT_BYTES_PER_VALUE))


def cap_rows(index: np.ndarray, labels: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """`index` when it has at most `cap` items, else a stratified sample of `cap` of them (every class in proportion,
    at least one each), in their original order."""
    if len(index) <= cap:
        return index
    rng, y = np.random.default_rng(seed), labels[index]
    keep = []
    for c in np.unique(y):
        members = index[y == c]
        keep.append(rng.choice(members, size=max(1, round(cap * len(members) / len(index))), replace=False))
    return np.sort(np.concatenate(keep))


def feature_views(n_images: int, mirror: bool = True) -> int:
    """Views the probe extracts per image: the image and its mirror image, or the image alone for large datasets
    (`MIRROR_MAX_IMAGES`), where a second view would double the probe's time for a fraction of a point, or when the
    run asks for no mirror view (`RuntimeConfig.probe_mirror`: the lesson's runs, which must fit a few minutes)."""
    return 2 if mirror and n_images <= MIRROR_MAX_IMAGES else 1
