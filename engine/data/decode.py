"""Decoded images kept in memory, bounded in bytes: each JPEG is decoded once per resolution, shared by threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Callable

import torch

from engine.data.imageio import load_image
from engine.data.spec import InputSpec, to_tensor
from engine.paths import memory_share


class DecodeCache:
    """Decoded, resized images as uint8 tensors per (path, geometry key), least recently used dropped first.

    Thread-safe: the training thread and probe jobs share one cache. Decoding itself runs outside the lock.
    """

    def __init__(self, max_bytes: int | None = None):
        self._max_bytes = max_bytes
        self._store: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    # PLR0913: keyword options: workers, cancel, progress
    def get_many(  # noqa: PLR0913
        self,
        paths_: list[str],
        key: str,
        geometry: Callable,
        workers: int = 4,
        chans: int = 3,
        keep: bool = True,
    ) -> list[torch.Tensor]:
        """uint8 (chans, H, W) tensors of `paths_` after `geometry`; `key` names (geometry, chans) in the cache.
        With `keep=False` newly decoded images are not kept (a single pass, such as feature extraction, would only
        push out images that are read again)."""
        with self._lock:
            found = {p: self._store[(p, key)] for p in dict.fromkeys(paths_) if (p, key) in self._store}
            for p in found:
                self._store.move_to_end((p, key))
        missing = [p for p in dict.fromkeys(paths_) if p not in found]
        if missing:
            decode = lambda q: to_tensor(load_image(q, chans), geometry)  # noqa: E731
            with ThreadPoolExecutor(workers) if len(missing) > 1 and workers > 1 else nullcontext() as pool:
                decoded = list(pool.map(decode, missing) if pool else map(decode, missing))
            with self._lock:
                for p, t in zip(missing, decoded):
                    found[p] = t
                    if keep:
                        self._put((p, key), t)
        return [found[p] for p in paths_]

    def _put(self, k: tuple[str, str], t: torch.Tensor) -> None:
        if k in self._store:
            self._bytes -= self._store.pop(k).numel()
        self._store[k] = t
        self._bytes += t.numel()
        while self._bytes > self.max_bytes and self._store:
            _, old = self._store.popitem(last=False)
            self._bytes -= old.numel()

    def clear(self) -> None:
        """Drop every decoded image."""
        with self._lock:
            self._store.clear()
            self._bytes = 0

    @property
    def max_bytes(self) -> int:
        """Its share of the memory budget, read on first use (not at import, where a bad TRANSFERLAB_MEMORY would
        fail before any error handling)."""
        if self._max_bytes is None:
            self._max_bytes = memory_share("decoded images")
        return self._max_bytes

    @property
    def nbytes(self) -> int:
        return self._bytes


DECODED = DecodeCache()


def load_images(spec: InputSpec, image_paths: list[str], keep: bool = True) -> list[torch.Tensor]:
    """The images at `image_paths` through `spec`'s eval geometry, as uint8 (C, H, W) tensors (kept in the decode
    cache unless `keep` is False)."""
    return DECODED.get_many(image_paths, spec.key(), spec.geometry(), chans=spec.in_chans, keep=keep)
