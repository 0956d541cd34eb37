"""The plan's rules: the classic bands, discriminative rates, edits that make a plan custom, preflight."""

import pytest
from conftest import a_plan

from engine.plan.preflight import blocking, preflight
from engine.plan.parts import Plan, PlanError
from engine.plan.rules import BANDS, band, discriminative, group_labels

GROUPS = ("stem", "b0", "b1", "b2", "head")


def plan(**kw) -> Plan:
    base = dict(
        path="d",
        fingerprint="f",
        strategy="top-k",
        groups=GROUPS,
        labels=tuple(group_labels(list(GROUPS))),
        head_epochs=10,
        frozen=(True, True, True, False, False),
        lrs=(0.0, 0.0, 0.0, 1e-4, 1e-3),
        finetune_epochs=15,
        bn_frozen_stats=False,
        views=4,
    )
    return a_plan(**{**base, **kw})


@pytest.mark.parametrize("acc,idx", [(0.9, 0), (0.85, 1), (0.7, 1), (0.6, 2), (0.3, 3)])
def test_bands(acc, idx):
    assert band(acc) == idx and BANDS[idx][0] <= acc


def test_discriminative_rates():
    assert discriminative(5, [2, 3, 4], 1e-3) == [0, 0, 1e-5, 1e-4, 1e-3]
    assert discriminative(5, [4], 1e-3) == [0, 0, 0, 0, 1e-3]


def test_labels_are_readable():
    assert group_labels(list(GROUPS)) == ["stem", "stage 1 of 3", "stage 2 of 3", "stage 3 of 3", "head"]


def test_an_edit_makes_the_plan_custom_and_unfreezing_gives_the_implied_rate():
    p = plan()
    assert p.edit() is p  # no change, no custom
    edited = p.edit(frozen=(True, True, False, False, False))
    assert edited.strategy == "custom" and edited.edited and edited.phases.lrs == (0.0, 0.0, 1e-5, 1e-4, 1e-3)
    refrozen = p.edit(frozen=(True, True, True, True, False))
    assert refrozen.phases.lrs == (0.0, 0.0, 0.0, 0.0, 1e-3)
    assert p.edit(head_lr=0.01).phases.head_lr == 0.01 and p.edit(head_lr=0.01).strategy == "custom"
    assert Plan.from_dict(edited.to_dict()) == edited


def test_a_stored_plan_is_read_part_by_part_and_refused_in_one_line_when_it_is_not_this_versions():
    import json

    from engine.probe.choose import HeadChoice

    chosen = HeadChoice("tf_efficientnet_lite0", (3, 4), True, 0.1, False, "blocks.3 + blocks.4", 0.9, 0.01)
    p = plan(candidates=(chosen,), target__n_val=3, folder="/t", estimate_s=12.5)
    again = Plan.from_dict(json.loads(json.dumps(p.to_dict())))  # as plan.json holds it
    assert again == p and again.head.candidates[0].taps == (3, 4) and again.input.input_size == (3, 224, 224)
    with pytest.raises(PlanError, match=r"plan's phases has unknown field\(s\) surprise"):
        Plan.from_dict({**p.to_dict(), "phases": {**p.to_dict()["phases"], "surprise": 1}})
    with pytest.raises(PlanError, match="unknown field"):
        Plan.from_dict({**p.to_dict(), "surprise": 1})
    old = {k: v for k, v in p.to_dict().items() if k != "version"}
    with pytest.raises(PlanError, match="older TransferLab .*make the plan again"):
        Plan.from_dict(old)
    with pytest.raises(PlanError, match="incomplete"):
        Plan.from_dict({k: v for k, v in p.to_dict().items() if k != "head"})


def test_preflight_passes_a_sound_plan_and_stops_a_trainable_group_at_rate_0():
    assert preflight(plan()) == []
    bad = plan(lrs=(0.0, 0.0, 0.0, 0.0, 1e-3))
    assert [f.code for f in blocking(preflight(bad))] == ["zero-lr"] and "b2" in preflight(bad)[0].message
    assert blocking(preflight(plan(batch_size=1)))
    hot = plan(lrs=(0.0, 0.0, 0.0, 1e-2, 1e-3))
    assert [f.code for f in preflight(hot)] == ["high-lr"] and not blocking(preflight(hot))


def test_preflight_refuses_a_plan_whose_caches_exceed_the_memory_budget(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "1G")
    assert preflight(plan(ram_bytes=900 * 1024**2)) == []
    stop = blocking(preflight(plan(ram_bytes=3 * 1024**3)))
    assert [f.code for f in stop] == ["memory"] and "TRANSFERLAB_MEMORY" in stop[0].fix


def test_the_stored_plan_is_keyed_by_the_device_it_was_costed_for():
    from engine.plan.config import TrainConfig
    from engine.plan.make import plan_key

    cfg = TrainConfig.create(data="/data")
    assert plan_key(cfg, "fp", "cpu") == plan_key(cfg, "fp", "cpu")
    assert plan_key(cfg, "fp", "cpu") != plan_key(cfg, "fp", "cuda")
