"""A parameter budget, met by cutting the pretrained backbone: the stage the head reads is the best on val among those
that fit, the model built from the plan is within the budget, and a budget nothing meets is refused in one line."""

import pytest
import torch

from engine.model.taps import FINAL, cut_params
from engine.plan.config import ConfigError, TrainConfig
from engine.plan.make import get_plan
from engine.plan.reasons import find

BUDGET = 100_000


def _cfg(folder, **kw):
    return TrainConfig.create(data=str(folder), views=1, batch_size=4, val_fraction=0.34, max_params=BUDGET, **kw)


def test_the_head_reads_the_best_stage_on_val_that_fits_and_the_model_built_is_within_the_budget(tiny_folder):
    from engine.train.build import build

    cfg = _cfg(tiny_folder, strategy="top-k", top_k=1)
    planned = get_plan(cfg)
    plan, probe = planned.plan, planned.probes[0]
    (tap,) = plan.head.taps
    fits = {c["tap"]: c["accuracy"] for c in probe.stage_curve if cut_params(probe.backbone, (c["tap"],), 3) <= BUDGET}
    assert tap != FINAL and cut_params(probe.backbone, (FINAL,), 3) > BUDGET
    assert tap in fits and fits[tap] == max(fits.values())
    decision = find(plan.decisions, "param-budget")
    assert decision is not None and decision.chosen == probe.stage_curve[tap]["name"]
    assert f"under {BUDGET:,} parameters" in plan.reason
    assert "the pretrained filters below the cut are kept" in plan.reason
    model = build(cfg, planned, torch.device("cpu")).model
    assert sum(p.numel() for p in model.parameters()) == decision["params"] <= BUDGET
    assert model.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 3)
    assert [g for g in plan.phases.groups][-1] == "head" and len(plan.phases.groups) < 10  # the cut's groups only


def test_auto_scores_only_heads_that_fit(tiny_folder):
    planned = get_plan(_cfg(tiny_folder, strategy="auto", budget=60))
    taps, backbone = planned.plan.head.taps, planned.plan.backbone
    assert cut_params(backbone, tuple(taps), 3) <= BUDGET
    cut = find(planned.plan.decisions, "param-budget")
    assert cut is not None
    assert cut["chosen_by"] == "cross-validation" and "auto chose by cross-validation" in cut.sentence


def test_a_budget_no_stage_meets_is_refused_in_one_line(tiny_folder):
    with pytest.raises(ConfigError, match="max_params 100: even tf_efficientnet_lite0 cut after its first stage has"):
        get_plan(_cfg(tiny_folder, strategy="top-k").with_(max_params=100))
    with pytest.raises(ConfigError, match="a parameter budget is a whole number above 0"):
        _cfg(tiny_folder).with_(max_params=0)
