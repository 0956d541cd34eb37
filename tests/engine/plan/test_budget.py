"""The forward pace a probe measured, and other forward passes costed at it by their FLOPs (the profiles stubbed:
what is tested is the scaling, not the FLOP count, which `engine.model.profile`'s tests hold)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from engine.model.catalogue import input_spec
from engine.plan import budget
from engine.plan.budget import Pace, extract_seconds, score_seconds
from engine.probe.features import MIRROR_MAX_IMAGES

LITE0 = "tf_efficientnet_lite0"
FLOPS = {(LITE0, 224): 400.0, (LITE0, 112): 100.0, ("resnet18", 224): 1800.0}


@pytest.fixture(autouse=True)
def flops(monkeypatch):
    monkeypatch.setattr(
        budget, "profile", lambda name, size, device="cpu": SimpleNamespace(total_flops=FLOPS[name, size])
    )


def test_the_measured_backbone_at_its_own_size_costs_its_own_pace():
    pace = Pace(LITE0, 224, images_per_s=50.0)
    assert pace.seconds(LITE0, input_spec(LITE0), passes=100) == pytest.approx(2.0)


def test_another_backbone_or_size_is_scaled_by_its_flops():
    pace = Pace(LITE0, 224, images_per_s=50.0)
    assert pace.seconds("resnet18", input_spec(LITE0), passes=100) == pytest.approx(2.0 * 1800 / 400)
    small = replace(input_spec(LITE0), input_size=(3, 112, 112))
    assert pace.seconds(LITE0, small, passes=100) == pytest.approx(0.5)


def test_extraction_reads_the_mirror_view_only_below_the_large_dataset_limit_and_scoring_both():
    pace = Pace(LITE0, 224, images_per_s=100.0)
    spec = input_spec(LITE0)
    assert extract_seconds(pace, LITE0, spec, 100) == pytest.approx(2.0)
    assert extract_seconds(pace, LITE0, spec, 100, mirror=False) == pytest.approx(1.0)
    big = MIRROR_MAX_IMAGES + 1
    assert extract_seconds(pace, LITE0, spec, big) == pytest.approx(big / 100.0)
    assert score_seconds(pace, LITE0, spec, 100) == pytest.approx(2.0)
    assert score_seconds(pace, LITE0, spec, 100, views=1) == pytest.approx(1.0)
