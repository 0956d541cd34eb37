"""The plan's rules: the classic bands, discriminative rates, edits that make a plan custom, preflight."""

import dataclasses

import pytest

from engine.plan.preflight import blocking, preflight
from engine.plan.rules import BANDS, Plan, band, discriminative, group_labels

GROUPS = ("stem", "b0", "b1", "b2", "head")


def plan(**kw) -> Plan:
    base = dict(
        data="d",
        fingerprint="f",
        backbone="tf_efficientnet_lite0",
        in_chans=3,
        input_spec={},
        strategy="top-k",
        taps=(-1,),
        tap_label="final features",
        flip_tta=False,
        head_init="probe",
        groups=GROUPS,
        labels=tuple(group_labels(list(GROUPS))),
        head_lr=1e-3,
        head_epochs=10,
        frozen=(True, True, True, False, False),
        lrs=(0.0, 0.0, 0.0, 1e-4, 1e-3),
        finetune_epochs=15,
        warmup_epochs=1,
        augment="basic",
        bn_frozen_stats=False,
        batch_size=32,
        views=4,
        reason="why",
    )
    return Plan(**{**base, **kw})


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
    assert edited.strategy == "custom" and edited.edited and edited.lrs == (0.0, 0.0, 1e-5, 1e-4, 1e-3)
    refrozen = p.edit(frozen=(True, True, True, True, False))
    assert refrozen.lrs == (0.0, 0.0, 0.0, 0.0, 1e-3)
    assert p.edit(head_lr=0.01).head_lr == 0.01 and p.edit(head_lr=0.01).strategy == "custom"
    assert Plan.from_dict(edited.to_dict()) == edited


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="unknown field"):
        Plan.from_dict({**plan().to_dict(), "surprise": 1})


def test_preflight_passes_a_sound_plan_and_stops_a_trainable_group_at_rate_0():
    assert preflight(plan()) == []
    bad = dataclasses.replace(plan(), lrs=(0.0, 0.0, 0.0, 0.0, 1e-3))
    assert [f.code for f in blocking(preflight(bad))] == ["zero-lr"] and "b2" in preflight(bad)[0].message
    assert blocking(preflight(dataclasses.replace(plan(), batch_size=1)))
    hot = dataclasses.replace(plan(), lrs=(0.0, 0.0, 0.0, 1e-2, 1e-3))
    assert [f.code for f in preflight(hot)] == ["high-lr"] and not blocking(preflight(hot))


def test_preflight_refuses_a_plan_whose_caches_exceed_the_memory_budget(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "1G")
    assert preflight(dataclasses.replace(plan(), ram_bytes=900 * 1024**2)) == []
    stop = blocking(preflight(dataclasses.replace(plan(), ram_bytes=3 * 1024**3)))
    assert [f.code for f in stop] == ["memory"] and "TRANSFERLAB_MEMORY" in stop[0].fix


def test_the_stored_plan_is_keyed_by_the_device_it_was_costed_for():
    from engine.plan.config import TrainConfig
    from engine.plan.make import plan_key

    cfg = TrainConfig.create(data="/data")
    assert plan_key(cfg, "fp", "cpu") == plan_key(cfg, "fp", "cpu")
    assert plan_key(cfg, "fp", "cpu") != plan_key(cfg, "fp", "cuda")


def test_auto_fine_tunes_as_deep_as_twelve_epochs_fit_and_not_at_all_below_three():
    from engine.plan.rules import finetune_depth, probe_fits

    def epoch_s(k: int) -> float:  # 10 s per trainable group below the head
        return 10.0 * k

    assert finetune_depth(epoch_s, 6, 500.0) == (4, 12)  # 12 epochs of 4 groups fit (480 s); of 6 they do not
    assert finetune_depth(epoch_s, 6, 100.0) == (1, 10)  # only the top group, for as many epochs as fit
    assert finetune_depth(epoch_s, 6, 29.0) == (1, 0)  # fewer than 3 epochs: no fine-tuning
    assert probe_fits(10.0, 50.0, 1, 5.0, 85.0) and not probe_fits(10.0, 50.0, 1, 5.0, 84.0)  # 10 s kept per probe
