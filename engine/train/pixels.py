"""The GPU input path: the training photos decoded once into a memory-mapped uint8 array at the working resolution,
then each batch read from it, copied to the device and augmented there (`BatchAugment`).

Decoding JPEGs is what limits a GPU fed by DataLoader workers (bench/gpu.py); decoding once and augmenting batches on
the device removes that limit. The array is square (the working size, a centre crop of the resized photo) and lives
on disk in the cache folder: the RAM it takes is the operating system's page cache, which gives it back as needed.
A background thread reads the next batches while the device trains on the current one.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode, v2

from engine import paths
from engine.data.batch_augment import working_side
from engine.data.imageio import load_image
from engine.data.spec import InputSpec, to_tensor
from engine.model.resources import need_disk
from engine.progress import QUIET_STEP, Step

PREFETCH = 3  # batches read ahead


def pixel_key(image_paths: Sequence[str], spec: InputSpec) -> str:
    h = hashlib.sha256(f"{working_side(spec)}|{spec.interpolation}|{spec.in_chans}|pixels-v1".encode())
    for p in image_paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def decoded_pixels(
    image_paths: Sequence[str], spec: InputSpec, workers: int = 8, progress: Step = QUIET_STEP
) -> np.ndarray:
    """The photos as a read-only memory-mapped uint8 array (N, C, W, W), decoded now (by `workers` threads) unless the
    cache already holds them."""
    side, chans, n = working_side(spec), spec.in_chans, len(image_paths)
    path = paths.cache_dir() / f"pixels-{pixel_key(image_paths, spec)}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    need_disk(path.parent, n * chans * side * side, f"the decoded copy of {n:,} training photos")
    resize = v2.Compose(
        [v2.Resize(side, interpolation=InterpolationMode(spec.interpolation), antialias=True), v2.CenterCrop(side)]
    )
    tmp = path.with_name(f"{path.stem}.{os.getpid()}-{threading.get_ident()}.partial")  # one writer each
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, chans, side, side))
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for start in range(0, n, 256):
                progress.check_cancel()
                chunk = image_paths[start : start + 256]
                images = pool.map(lambda p: to_tensor(load_image(p, chans), resize).numpy(), chunk)
                out[start : start + len(chunk)] = np.stack(list(images))
                progress(min(1.0, (start + len(chunk)) / n))
        out.flush()
        del out
        Path(tmp).rename(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="r")


def device_batches(pixels: np.ndarray, index_batches: list[np.ndarray], device: torch.device) -> Iterator[torch.Tensor]:
    """The uint8 batches `pixels[idx]` on `device`, read ahead by a background thread (pinned memory on CUDA)."""
    q: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def read() -> None:
        try:
            for idx in index_batches:
                if stop.is_set():
                    return
                batch = torch.from_numpy(np.ascontiguousarray(pixels[np.asarray(idx)]))
                q.put(batch.pin_memory() if device.type == "cuda" else batch)
            q.put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the training thread, which raises it
            q.put(e)

    reader = threading.Thread(target=read, daemon=True, name="transferlab-pixels")
    reader.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item.to(device, non_blocking=True)
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.05)
