"""The Plan's typed parts: what the pages read from them is derived there, from the same object the run executes."""

import pytest
from conftest import a_plan


def test_the_numbers_a_page_shows_are_properties_of_the_plan_it_runs():
    plan = a_plan(estimate_s=400.0, plan_s=100.0, ram_bytes=2_500_000_000, disk_bytes=10**9, n_train=30, n_val=12)
    assert plan.cost.run_s == 300.0 and plan.cost.run_minutes == 5
    assert (plan.cost.ram_gb, plan.cost.disk_gb) == (2.5, 1.0)
    assert plan.data.n_outside_test == 42
    assert a_plan(estimate_s=10.0, plan_s=9.0).cost.run_minutes == 1  # a button never says "about 0 min"
    assert "run_minutes" not in plan.to_dict()["cost"]  # derived, never stored


def test_a_resumed_run_is_expected_to_take_what_is_left_of_its_plan():
    """After Resume the time left starts from the run's own remaining epochs, not the whole run again."""
    plan = a_plan(
        estimate_s=1000.0,
        plan_s=100.0,
        start_s=20.0,
        cache_s=30.0,
        score_s=50.0,
        finetune_epoch_s=200.0,
        head_epochs=4,
        finetune_epochs=3,
    )  # run 900 s: 20 start, 30 caches, 50 scoring, 3 x 200 tuning, so 4 head epochs of 50 s
    assert plan.seconds_left(0) == 900.0
    assert plan.seconds_left(2) == pytest.approx(30 + 50 + 2 * 50 + 3 * 200)
    assert plan.seconds_left(5) == pytest.approx(30 + 50 + 2 * 200)
    assert plan.seconds_left(7) == pytest.approx(30 + 50)  # every epoch done: the scoring is left
