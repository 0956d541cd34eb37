"""What a forward pass and a training step cost: measured once on a random instance, remembered in the cache folder."""

from __future__ import annotations

import json

import torch
from torch import nn

from engine import paths
from engine.model import pace


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_a_step_is_timed_with_gradients_even_when_planning_runs_in_inference_mode():
    with torch.inference_mode():
        forward, step = pace._measure("tiny", 32, torch.device("cpu"), _tiny)
    assert forward > 0 and step > 0


def test_costs_are_measured_once_and_read_back_from_the_cache_folder(monkeypatch):
    calls = []

    def measure(name, size, device, build):
        calls.append((name, size))
        return 0.01, 0.03

    monkeypatch.setattr(pace, "_measure", measure)
    monkeypatch.setattr(pace, "_STEP_COSTS", {})
    assert pace.step_costs("never-built", 40, build=_tiny) == (0.01, 0.03)
    assert pace.step_costs("never-built", 40, build=_tiny) == (0.01, 0.03)
    assert calls == [("never-built", 40)]

    monkeypatch.setattr(pace, "_STEP_COSTS", {})  # a new process: read from the cache folder, not measured again
    assert pace.step_costs("never-built", 40, build=_tiny) == (0.01, 0.03)
    assert calls == [("never-built", 40)]
    stored = json.loads((paths.cache_dir() / "step-costs.json").read_text())
    assert [key for key in stored if key.startswith("never-built|40|cpu|")] != []

    pace.step_costs("never-built", 48, build=_tiny)  # another input size is another measurement
    assert calls == [("never-built", 40), ("never-built", 48)]
