"""Auto's time budget: what probing another backbone, scoring and fine-tuning will cost here, scaled from the speed
the first probe measured, and the whole plan's length as soon as that speed is known."""
from __future__ import annotations

from typing import Callable, NamedTuple

import timm
import torch

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.model.catalogue import list_entries
from engine.model.cost import epoch_seconds, total_flops
from engine.model.groups import layer_groups
from engine.model.taps import TapModel
from engine.model.weights import availability
from engine.plan.config import DEFAULT_BUDGET_S, TrainConfig
from engine.plan.rules import FIXED_S
from engine.probe.features import feature_views
from engine.probe.linear import ProbeResult

SAFETY = 0.93  # of the budget, planned; the rest absorbs the estimates' error
CHOOSE_SHARE = 0.15  # of the budget, at most, for scoring the candidate heads


def extract_seconds(measured: ProbeResult, name: str, spec: InputSpec, n_images: int) -> float:
    """Feature extraction time of `name` (every view), scaled from the measured backbone by their FLOPs."""
    ratio = total_flops(name, spec.input_size[-1]) / total_flops(measured.backbone, measured.input_spec.input_size[-1])
    speed = measured.images_per_s or 50.0
    return feature_views(n_images) * n_images / speed * ratio


def score_seconds(measured: ProbeResult, name: str, spec: InputSpec, n_images: int) -> float:
    ratio = total_flops(name, spec.input_size[-1]) / total_flops(measured.backbone, measured.input_spec.input_size[-1])
    return 2 * n_images / (measured.images_per_s or 50.0) * ratio  # both views: the chosen head may average them


def other_bundled(first: str, weights: str) -> list[str]:
    """The other backbones whose weights ship with TransferLab (auto's shoot-out), when no weights file was given."""
    if weights != "auto":
        return []
    return [e.name for e in list_entries() if e.bundled and e.name != first and availability(e.name)["available"]]


def model_groups(backbone: str, taps: tuple[int, ...], n_classes: int) -> list[str]:
    with torch.device("meta"):
        model = TapModel(timm.create_model(backbone, pretrained=False), taps, n_classes)
    return [g.name for g in layer_groups(model)]


class Forecast(NamedTuple):
    """What auto still needs after its first probe: `left_s` in all, of which `finish_s` after the head is chosen
    (validating it, scoring and saving) when `fine_tunes` is False (else the run fills the budget)."""

    left_s: float
    finish_s: float
    fine_tunes: bool


def forecast(cfg: TrainConfig, ds: Dataset, first: ProbeResult, elapsed: float,
             spec_for: Callable[[Dataset, str, int], InputSpec]) -> Forecast:
    """Seconds the auto run still needs after its first probe: the other probes that fit, choosing the head, the
    final scoring, and fine-tuning up to the budget when one epoch of the top group fits it (as `make_plan` decides)."""
    budget, n_tv = cfg.optim.budget or DEFAULT_BUDGET_S, len(ds.train) + len(ds.val)
    t, probed = elapsed, 1
    for name in other_bundled(cfg.backbone, cfg.weights):
        spec = spec_for(ds, name, cfg.data.in_chans)
        est = extract_seconds(first, name, spec, n_tv)
        if t + est + 10 * (probed + 1) + score_seconds(first, name, spec, len(ds.test) + 2 * len(ds.val)) \
                <= SAFETY * budget:
            t, probed = t + est, probed + 1
    t += CHOOSE_SHARE * budget
    finish = score_seconds(first, first.backbone, first.input_spec, len(ds.test) + 2 * len(ds.val)) + FIXED_S
    groups = model_groups(first.backbone, (-1,), len(ds.classes))
    epoch = epoch_seconds(first.backbone, first.input_spec.input_size[-1], groups[-2:-1], len(ds.train), len(ds.val),
                          first.images_per_s or 50.0, 2)
    if epoch > 0 and 3 * epoch <= SAFETY * budget - t - finish:
        return Forecast(SAFETY * budget - elapsed, finish, True)
    # no epoch to train: validating the starting head is the val score, then the test split
    finish = score_seconds(first, first.backbone, first.input_spec, len(ds.test) + len(ds.val)) + FIXED_S
    return Forecast(t + finish - elapsed, finish, False)
