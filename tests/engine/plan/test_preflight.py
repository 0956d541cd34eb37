"""Preflight: each classic pitfall found with its fix; errors stop the run, warnings are the person's to accept."""

from __future__ import annotations

import pytest
from conftest import a_plan

from engine.plan.preflight import blocking, preflight


def _codes(plan) -> dict[str, bool]:
    return {f.code: f.error for f in preflight(plan)}


def test_a_sound_plan_has_no_finding():
    assert preflight(a_plan()) == []


@pytest.mark.parametrize(
    ("fields", "code", "error"),
    [
        ({"lrs": (0.0, 0.0, 1e-3)}, "zero-lr", True),
        ({"head_lr": 0.0}, "zero-head-lr", True),
        ({"head_epochs": 0, "finetune_epochs": 0, "init": "random"}, "no-epochs", True),
        ({"lrs": (0.0, 3e-3, 1e-3)}, "high-lr", False),
        ({"lrs": (0.0, 1e-7, 1e-7)}, "low-lr", False),
        ({"frozen": (False, False, False), "lrs": (1e-5, 1e-4, 1e-3), "warmup_epochs": 0}, "no-warmup", False),
        ({"ram_bytes": 10**15}, "memory", True),
        ({"batch_size": 1}, "batch-size", True),
        ({"leaks": 3, "leak_note": "3 test photos are copies of training photos"}, "leak", False),
        ({"adapt": "mmd", "frozen": (True, True, False)}, "adapt-frozen", True),
    ],
)
def test_each_pitfall_is_found_with_a_fix_and_only_errors_block(fields, code, error):
    findings = preflight(a_plan(**fields))
    found = {f.code: f for f in findings}
    assert code in found and found[code].error is error and found[code].fix
    assert (found[code] in blocking(findings)) is error


def test_a_random_head_may_train_fast_and_without_warm_up():
    plan = a_plan(init="random", frozen=(False, False, False), lrs=(3e-3, 3e-3, 3e-3), warmup_epochs=0)
    assert "high-lr" not in _codes(plan) and "no-warmup" not in _codes(plan)
