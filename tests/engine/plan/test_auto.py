"""Auto's policy: the budget fit after the target photos (fewer epochs, the adaptation dropped, or the linear head),
the trials' gate, and the depth and epochs it fine-tunes; each decision says its numbers."""

from dataclasses import replace

import pytest
from conftest import with_

from engine.plan.auto import SAFETY, fit_to_budget, trials_worth_trying
from engine.plan.config import TrainConfig
from engine.plan.cost import costed
from engine.plan.make import get_plan


def _priced(cfg, spent: float = 0.0):
    return lambda plan: costed(cfg, plan, 5.0, "cpu", spent).cost


@pytest.fixture
def adapted(tiny_folder):
    """A top-group plan with MMD and 12 epochs, costed at 5 images a second (its config, the plan)."""
    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = get_plan(cfg).plan
    return costed(cfg, with_(p, adapt="mmd", adapt_strength=1.0, n=12, finetune_epochs=12), 5.0, "cpu")


@pytest.mark.parametrize("asked", [None, "mmd"])
def test_auto_fits_its_epochs_to_the_budget_after_the_target_photos_or_drops_the_adaptation(
    tiny_folder, adapted, asked
):
    rest = adapted.cost.estimate_s - 12 * adapted.cost.finetune_epoch_s

    def within(epochs: float) -> TrainConfig:
        budget = (rest + epochs * adapted.cost.finetune_epoch_s) / SAFETY
        target = {"target": str(tiny_folder)} if asked else {}  # only read by the plan, never here
        return TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=budget, adapt=asked, **target)

    def fitted(cfg, plan):
        phases, target, said = fit_to_budget(cfg, plan, _priced(cfg, plan.cost.plan_s))
        return costed(cfg, replace(plan, phases=phases, target=target, decisions=said), 5.0, "cpu"), said

    same = fit_to_budget(within(12.5), adapted, _priced(within(12.5), adapted.cost.plan_s))
    assert same == (adapted.phases, adapted.target, ())  # it fits: unchanged, nothing to say
    fewer, said = fitted(within(5.5), adapted)
    assert fewer.target.adapt == "mmd" and fewer.phases.finetune_epochs == 5
    assert said[0].kind == "budget-fit" and said[0]["epochs"] == 5 and said[0]["planned"] == 12
    assert "runs 5 of the 12 epochs" in said[0].sentence and f"about {said[0]['epoch_s']:.0f} s" in said[0].sentence
    assert fewer.cost.estimate_s <= SAFETY * within(5.5).optim.budget + 0.5  # the time shown holds the budget
    warm, _ = fitted(within(1.5), with_(adapted, warmup_epochs=3))  # a longer warm-up, kept by the trials
    assert warm.phases.warmup_epochs <= max(1, warm.phases.finetune_epochs)  # never longer than the epochs that fit
    short, said = fitted(within(1.5), adapted)
    if asked is None:  # auto's own choice, with too few epochs left: without it, or the linear head
        assert short.target.adapt == "none" and said[0].kind == "adaptation-dropped" and said[0].about == "target"
        assert (
            "no adaptation loss after all" in short.target_reason
            and f"{said[0]['fit']} epoch(s)" in short.target_reason
        )
        assert short.cost.estimate_s <= SAFETY * within(1.5).optim.budget + 0.5
    else:  # asked for: kept, on the epochs that fit
        assert short.target.adapt == "mmd" and short.phases.finetune_epochs == 1


def test_auto_keeps_the_linear_head_when_no_epoch_fits_after_the_target_photos(tiny_folder):
    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = costed(cfg, with_(get_plan(cfg).plan, finetune_epochs=12), 5.0, "cpu")
    tight = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=30)
    phases, _, said = fit_to_budget(tight, p, _priced(tight, p.cost.plan_s + 60))
    n = len(p.phases.groups)
    assert phases.finetune_epochs == 0 and phases.frozen == tuple([True] * (n - 1) + [False])
    assert phases.lrs[:-1] == (0.0,) * (n - 1) and not phases.trains_below_head
    assert said[-1].chosen == "linear head" and "the linear head is the model after all" in said[-1].sentence


def test_the_trials_are_tried_only_when_a_fine_tune_still_fits_after_the_target_photos(tiny_folder):
    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = costed(cfg, with_(get_plan(cfg).plan, finetune_epochs=4), 5.0, "cpu")
    auto = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=p.cost.estimate_s * 2)
    assert trials_worth_trying(auto, p, _priced(auto, p.cost.plan_s))
    assert not trials_worth_trying(auto, p, _priced(auto, p.cost.plan_s + 2 * p.cost.estimate_s))  # budget spent
    assert not trials_worth_trying(auto, with_(p, finetune_epochs=0), _priced(auto, p.cost.plan_s))


def test_auto_fine_tunes_as_deep_as_twelve_epochs_fit_and_not_at_all_below_three():
    from engine.plan.auto import finetune_depth, probe_fits

    def epoch_s(k: int) -> float:  # 10 s per trainable group below the head
        return 10.0 * k

    assert finetune_depth(epoch_s, 6, 500.0) == (4, 12)  # 12 epochs of 4 groups fit (480 s); of 6 they do not
    assert finetune_depth(epoch_s, 6, 100.0) == (1, 10)  # only the top group, for as many epochs as fit
    assert finetune_depth(epoch_s, 6, 29.0) == (1, 0)  # fewer than 3 epochs: no fine-tuning
    assert probe_fits(10.0, 50.0, 1, 5.0, 85.0) and not probe_fits(10.0, 50.0, 1, 5.0, 84.0)  # 10 s kept per probe
