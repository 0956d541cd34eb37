"""What a run will write and hold, checked before it starts: disk for features and checkpoints, memory for caches."""
from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn

from engine.errors import NotEnoughSpace
from engine.model.taps import tap_dims

MARGIN = 64 * 1024**2  # bytes kept free beyond the estimate (logs, status, the file system's own needs)


def feature_bytes(arch: str, n_images: int, views: int = 2) -> int:
    """The feature cache of `n_images`: every tap and the final features, float32, for each view."""
    dims, final = tap_dims(arch)
    return n_images * views * (sum(dims) + final) * 4


def checkpoint_bytes(model: nn.Module) -> int:
    """The best and last checkpoints and the exported model: the weights three times, the optimiser's two moments."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return 5 * weights


def need_disk(folder: Path, nbytes: int, what: str) -> None:
    """Raises `NotEnoughSpace` when `folder`'s disk has less than `nbytes` (plus a margin) free."""
    free = shutil.disk_usage(folder).free
    if free < nbytes + MARGIN:
        raise NotEnoughSpace(f"{what} needs about {(nbytes + MARGIN) / 1e6:,.0f} MB in {folder}, and only "
                             f"{free / 1e6:,.0f} MB are free; free some space, or set TRANSFERLAB_HOME to a larger "
                             f"disk")
