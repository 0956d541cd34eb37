"""Device and precision: CUDA when present, else CPU; bf16 autocast where the CPU has native bf16 instructions."""
from __future__ import annotations

import contextlib
import functools
import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else CPU."""
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
