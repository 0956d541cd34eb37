"""The Plan's typed parts: what the pages read from them is derived there, from the same object the run executes."""

from conftest import a_plan


def test_the_numbers_a_page_shows_are_properties_of_the_plan_it_runs():
    plan = a_plan(estimate_s=400.0, plan_s=100.0, ram_bytes=2_500_000_000, disk_bytes=10**9, n_train=30, n_val=12)
    assert plan.cost.run_s == 300.0 and plan.cost.run_minutes == 5
    assert (plan.cost.ram_gb, plan.cost.disk_gb) == (2.5, 1.0)
    assert plan.data.n_outside_test == 42
    assert a_plan(estimate_s=10.0, plan_s=9.0).cost.run_minutes == 1  # a button never says "about 0 min"
    assert "run_minutes" not in plan.to_dict()["cost"]  # derived, never stored
