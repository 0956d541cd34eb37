"""Device and precision: CUDA when present, else CPU; bf16 autocast where the CPU has native bf16 instructions; and
the C allocator's settings that keep the CPU's forward and backward passes from spending their time in the kernel."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys

from typing import Iterator

import torch

from engine.data.decode import load_images
from engine.data.spec import InputSpec

# glibc's mallopt parameters (malloc.h) and the values TransferLab sets
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
KEEP_FREE_BYTES = 1 << 30  # free memory at the heap's top kept for the next batch instead of given back at once
TOP_PAD_BYTES = 64 << 20


@functools.cache
def tune_cpu_allocator() -> bool:
    """Keeps glibc's malloc from mapping and unmapping every large tensor: by default each activation buffer of a
    batch (tens of MB) is a fresh `mmap`, zero-filled by the kernel page by page and unmapped when freed, so a CPU
    forward pass spends as long in page faults as in arithmetic. Served from the heap, with up to 1 GB kept free for
    the next batch, EfficientNet-Lite0 runs about 2-3x faster on a 2-core CPU (`bench/allocator.py`).

    Does nothing outside glibc, or when the user set `MALLOC_*` variables or preloads another allocator. Returns
    whether the settings were applied."""
    if (
        not sys.platform.startswith("linux")
        or any(k.startswith("MALLOC_") for k in os.environ)
        or "malloc" in os.environ.get("LD_PRELOAD", "")
    ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return all(
        mallopt(param, value) == 1
        for param, value in ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEEP_FREE_BYTES), (M_TOP_PAD, TOP_PAD_BYTES))
    )


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else CPU. The first call tunes the C allocator for tensor
    work (`tune_cpu_allocator`)."""
    tune_cpu_allocator()
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX); emulated bf16 would be slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for full fp32. TRANSFERLAB_PRECISION=fp32 forces fp32."""
    if os.environ.get("TRANSFERLAB_PRECISION", "").lower() == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """An autocast context for `device`, or a no-op when running in fp32."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`; a CPU tensor goes to CUDA through pinned memory with a non-blocking copy."""
    if device.type == "cuda" and not t.is_cuda:
        return (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
    return t.to(device)


def precision_name(device: torch.device) -> str:
    dtype = autocast_dtype(device)
    return "fp32" if dtype is None else str(dtype).removeprefix("torch.")


def image_batches(
    spec: InputSpec, paths: list[str], device: torch.device, batch_size: int = 32, keep: bool = True
) -> Iterator[tuple[int, torch.Tensor]]:
    """Image files through `spec`'s eval geometry and normalisation, `batch_size` at a time, on `device`: (images
    done so far, batch). `keep`: the decoded images stay in the decode cache."""
    for b in range(0, len(paths), batch_size):
        chunk = paths[b : b + batch_size]
        yield b + len(chunk), spec.normalize(to_device(torch.stack(load_images(spec, chunk, keep=keep)), device))
