"""What a run will write and hold, checked before it starts: disk for features and checkpoints, memory for caches."""

from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn

from engine.errors import NotEnoughSpace
from engine.model.taps import FINAL, tap_dims
from engine.paths import memory_share

MARGIN = 64 * 1024**2  # bytes kept free beyond the estimate (logs, status, the file system's own needs)
CHECKPOINT_COPIES = 6  # the weights in the starting, best and last checkpoints and the export, the optimiser's moments


def feature_bytes(arch: str, n_images: int, views: int = 2) -> int:
    """The feature cache of `n_images`: every tap and the final features, float32, for each view."""
    dims, final = tap_dims(arch)
    return n_images * views * (sum(dims) + final) * 4


def checkpoint_bytes(model: nn.Module) -> int:
    """The starting, best and last checkpoints and the exported model: the weights four times, the optimiser's two
    moments (`CHECKPOINT_COPIES`)."""
    return CHECKPOINT_COPIES * sum(p.numel() * p.element_size() for p in model.parameters())


def need_disk(folder: Path, nbytes: int, what: str) -> None:
    """Raises `NotEnoughSpace` when `folder`'s disk has less than `nbytes` (plus a margin) free."""
    free = shutil.disk_usage(folder).free
    if free < nbytes + MARGIN:
        raise NotEnoughSpace(
            f"{what} needs about {(nbytes + MARGIN) / 1e6:,.0f} MB in {folder}, and only "
            f"{free / 1e6:,.0f} MB are free; free some space, or set TRANSFERLAB_HOME to a larger "
            f"disk"
        )


def head_dim(arch: str, taps: tuple[int, ...]) -> int:
    """The width of the head's input: the pooled features of `taps`, concatenated."""
    dims, final = tap_dims(arch)
    return sum(final if t == FINAL else dims[t] for t in taps)


def views_that_fit(n_images: int, dim: int, wanted: int) -> int:
    """How many augmented views of `dim` features of `n_images` fit in their share of the memory budget (≥ 1)."""
    return max(1, min(wanted, memory_share("cached views") // max(1, n_images * dim * 4)))


def activations_fit(n_images: int, views: int, per_image: int) -> bool:
    """Whether cached activations (`per_image` bytes each) of `views` views of `n_images` fit in their share."""
    return n_images * views * per_image <= memory_share("activations")


# PLR0913: each argument is one sized input of the memory model
def plan_bytes(  # noqa: PLR0913
    arch: str,
    n_images: int,
    n_train: int,
    views: int,
    dim: int,
    params: int,
    image_bytes: int,
    fit_bytes: int,
) -> tuple[int, int]:
    """(memory, disk) a run needs for its data: the decode cache (capped by its share), the cached views, one linear
    fit; the feature cache of every stage and the checkpoints on disk (`params` float32 weights, counted as
    `checkpoint_bytes` counts them before saving). The model itself is not counted in memory."""
    ram = min(memory_share("decoded images"), n_images * image_bytes) + views * n_train * dim * 4 + fit_bytes
    return ram, feature_bytes(arch, n_images) + CHECKPOINT_COPIES * params * 4
