"""Each strategy's phases: here, the time budget a person gives top-k or full, which cuts their fine-tuning epochs to
those the cost model says end within it, and says so; on real weights, the plan made with one."""

from conftest import a_plan

from engine.plan import auto
from engine.plan.config import TrainConfig
from engine.plan.parts import Cost
from engine.plan.phases import capped
from engine.plan.reasons import render


def _price(plan):
    """20 s before and after phase 2, 10 s an epoch."""
    return Cost(estimate_s=20 + 10 * plan.phases.finetune_epochs, finetune_epoch_s=10)


def test_a_budget_cuts_top_ks_epochs_to_those_that_fit_and_says_so():
    cfg = TrainConfig.create(data="x", strategy="top-k", budget=100)
    phases, said = capped(cfg, a_plan(strategy="top-k", finetune_epochs=10, warmup_epochs=3), _price)
    fit = int((auto.SAFETY * 100 - 20) // 10)
    assert 1 <= fit < 10 and phases.finetune_epochs == fit and phases.warmup_epochs == min(3, fit)
    assert f"it runs {fit} of the 10 epochs planned, to end within your 100 s budget" in render(said)


def test_one_epoch_stays_when_none_fits_and_nothing_changes_without_a_budget_or_for_auto():
    draft = a_plan(strategy="top-k", finetune_epochs=10)
    phases, said = capped(TrainConfig.create(data="x", strategy="top-k", budget=15), draft, _price)
    assert phases.finetune_epochs == 1 and "one at least, although it does not end within it" in render(said)
    assert capped(TrainConfig.create(data="x", strategy="top-k"), draft, _price) == (draft.phases, ())
    assert capped(TrainConfig.create(data="x", strategy="auto", budget=15), draft, _price) == (draft.phases, ())
    roomy = TrainConfig.create(data="x", strategy="full", budget=10_000)
    assert capped(roomy, draft, _price) == (draft.phases, ())


def test_a_real_top_k_plan_with_a_short_budget_runs_fewer_epochs(tiny_folder):
    from engine.plan.make import get_plan

    common = dict(data=str(tiny_folder), strategy="top-k", val_fraction=0.34, views=1, finetune_epochs=50)
    free = get_plan(TrainConfig.create(**common)).plan
    budget = max(1, round(free.cost.estimate_s / 2))  # half of what every epoch would take here, on this machine
    short = get_plan(TrainConfig.create(**common, budget=budget)).plan
    assert free.phases.finetune_epochs == 50 and 1 <= short.phases.finetune_epochs < 50
    assert f"to end within your {budget} s budget" in short.reason
    assert short.cost.estimate_s <= budget or short.phases.finetune_epochs == 1
