"""Augmented training batches for the full-forward path, one image at a time: a Dataset of seeded per-image
augmentations and a batch sampler that follows the loop's epoch order. On CUDA a DataLoader decodes and augments in
worker processes and hands batches over in pinned memory (for the presets the GPU input path cannot batch, or with
TRANSFERLAB_DEVICE_INPUT=0); on the CPU the same dataset runs in the training thread (the cores are busy training).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from engine.data.decode import DECODED


class AugmentedImages(Dataset):
    """Item `(i, seed)` → image `i` decoded at the working geometry, augmented with its own seed (uint8, 3×S×S).

    Seeding per image makes a batch's pixels independent of which process made them, so CPU and GPU runs and a
    resumed run see the same augmentations.
    """

    def __init__(
        self, paths: Sequence[str], work_key: str, work_geometry: Callable, transform: Callable, chans: int = 3
    ):
        self.paths, self.work_key, self.work_geometry, self.transform = list(paths), work_key, work_geometry, transform
        self.chans = chans

    def __len__(self) -> int:
        return len(self.paths)

    def decode_all(self, workers: int = 4) -> None:
        """Decodes every image into the shared cache with `workers` threads (items then only augment)."""
        DECODED.get_many(self.paths, self.work_key, self.work_geometry, workers, self.chans)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        i, seed = item
        img = DECODED.get_many([self.paths[i]], self.work_key, self.work_geometry, 1, self.chans)[0]
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            return self.transform(img)
        finally:
            torch.random.set_rng_state(state)


class EpochBatches(Sampler):
    """Yields the current epoch's batches as lists of (index, seed); `set_epoch` installs the next order."""

    def __init__(self, batch_size: int, base_seed: int):
        self.batch_size, self.base_seed = batch_size, base_seed
        self.batches: list[list[tuple[int, int]]] = []

    def set_epoch(self, order: Sequence[int], epoch: int) -> list[list[int]]:
        """Installs `order` for `epoch`; returns the index batches (batches of fewer than 2 images are dropped)."""
        idx = [list(map(int, order[b : b + self.batch_size])) for b in range(0, len(order), self.batch_size)]
        idx = [b for b in idx if len(b) >= 2]
        self.batches = [[(i, self.seed_of(i, epoch)) for i in b] for b in idx]
        return idx

    def seed_of(self, index: int, epoch: int) -> int:
        """The augmentation seed of image `index` in `epoch`."""
        return self.base_seed * 7919 + epoch * 1_000_003 + index

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def loader_workers(device: torch.device) -> int:
    """Worker processes for `device`: up to 8 on CUDA (TRANSFERLAB_WORKERS overrides), none on the CPU."""
    if "TRANSFERLAB_WORKERS" in os.environ:
        return max(0, int(os.environ["TRANSFERLAB_WORKERS"]))
    if device.type != "cuda":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def make_loader(dataset: AugmentedImages, batches: EpochBatches, device: torch.device) -> DataLoader:
    """A DataLoader over `batches`: worker processes and pinned memory on CUDA, the calling thread on the CPU."""
    workers = loader_workers(device)
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )
