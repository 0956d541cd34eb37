"""The device module: the C allocator's settings for tensor work on the CPU."""

import subprocess
import sys

import pytest

from engine.model import device

FAULTS = """
import resource, sys, torch
from engine.model.device import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == "tuned" else False
x = torch.ones(16 << 20)  # warm up: 64 MB
del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # what a batch's activations do: a large buffer allocated, written and freed
    x = torch.ones(16 << 20)
    del x
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=str(device.__file__).rsplit("/engine/", 1)[0],
    )
    tuned, faults = out.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_tuned_allocator_reuses_large_buffers_instead_of_faulting_them_in_again():
    tuned, tuned_faults = _faults("tuned")
    assert tuned == "True"
    _, default_faults = _faults("default")
    # each 64 MB buffer is 16,384 fresh pages by default; the tuned heap hands the same pages back
    assert default_faults > 20 * 16_000
    assert tuned_faults < default_faults / 2  # measured: 3-7 of the 20 buffers fault in again, against all 20


def test_the_allocator_is_left_alone_when_the_user_tuned_it(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    device.tune_cpu_allocator.cache_clear()
    try:
        assert device.tune_cpu_allocator() is False
    finally:
        device.tune_cpu_allocator.cache_clear()
