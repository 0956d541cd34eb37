"""AdaBN at the end of a run: the statistics come from the plan's sample of the target photos read through the run's
input contract, the step is reported, a stop is heard between batches, and inside `on_targets` alone."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.data.spec import InputSpec
from engine.model.bn_stats import bn_buffers
from engine.model.device import image_batches
from engine.progress import Progress
from engine.runs.events import Cancelled
from engine.train import target_bn

SPEC = InputSpec((3, 16, 16), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


class Recorded(Progress):
    def __init__(self, stop_after: int | None = None):
        self.reports, self.checks, self.stop_after = [], 0, stop_after

    def __call__(self, name: str, fraction: float) -> None:
        self.reports.append((name, fraction))

    def check_cancel(self) -> None:
        self.checks += 1
        if self.stop_after is not None and self.checks > self.stop_after:
            raise Cancelled()


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)).mean((2, 3))


def _photos(folder, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"t{i}.png"
        Image.fromarray(rng.integers(150, 256, (20, 20, 3), dtype=np.uint8)).save(path)  # bright: not ImageNet's
        paths.append(str(path))
    return paths


def _ctx(paths: list[str], report: Progress) -> SimpleNamespace:
    return SimpleNamespace(
        targets=SimpleNamespace(photos=SimpleNamespace(paths=paths)),
        cfg=SimpleNamespace(runtime=SimpleNamespace(seed=0)),
        spec=SPEC,
        device=torch.device("cpu"),
        model=Features().eval(),
        report=report,
    )


def test_the_statistics_become_the_target_photos_through_the_input_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")
    paths = _photos(tmp_path, 40)
    ctx = _ctx(paths, Recorded())
    assert target_bn.reestimate_on_targets(ctx) == 40
    with torch.no_grad():
        x = torch.cat([b for _, b in image_batches(SPEC, paths, torch.device("cpu"))])
        expected = ctx.model.conv(x).mean((0, 2, 3))
    assert torch.allclose(ctx.model.bn.running_mean, expected, atol=1e-4)
    step = "re-estimate BatchNorm on the target photos"
    assert ctx.report.reports == [(step, 0.0), (step, 1.0)] and ctx.report.checks == 2  # one check a batch of 32


def test_the_sample_is_the_plans(tmp_path, monkeypatch):
    paths = [f"{tmp_path}/p{i}.png" for i in range(300)]
    monkeypatch.setattr(target_bn, "bn_sample", lambda p, seed: p[:3] if seed == 0 else p)
    assert target_bn.sample(_ctx(paths, Recorded())) == paths[:3]


def test_a_stop_between_batches_is_heard_and_on_targets_puts_the_statistics_back(tmp_path):
    paths = _photos(tmp_path, 40)
    ctx = _ctx(paths, Recorded(stop_after=1))
    with pytest.raises(Cancelled):
        target_bn.reestimate_on_targets(ctx)
    ctx = _ctx(paths, Recorded())
    before = bn_buffers(ctx.model)
    with target_bn.on_targets(ctx) as n:
        assert n == 40 and not torch.equal(ctx.model.bn.running_mean, before["bn.running_mean"])
    assert all(torch.equal(v, bn_buffers(ctx.model)[k]) for k, v in before.items())
