"""Fine-tuning anyway: a finished auto run that kept its linear head, continued as a fine-tuning run from the same
head."""

from engine.plan.anyway import ANYWAY_EPOCHS, finetune_anyway, kept_the_head, why_kept
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, save_planned
from engine.plan.stored import read_plan
from engine.runs.store import RunStore
from engine.train.loop import Trainer


def test_a_run_that_kept_the_head_can_fine_tune_anyway_from_it(tiny_folder, tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=5, views=1, batch_size=4)
    planned = get_plan(cfg)
    run = store.create(cfg.to_dict(), "auto")
    save_planned(run.path, planned)
    assert Trainer(cfg, run, planned=planned).fit().status == "finished"
    plan = read_plan(run.path)
    assert kept_the_head(plan) and "does not fit the time left" in why_kept(plan)

    cfg2, anyway = finetune_anyway(run.config, run.path)
    p = anyway.plan
    ph = p.phases
    assert ph.finetune_epochs == ANYWAY_EPOCHS and ph.frozen[-3:] == (False, False, False) and all(ph.frozen[:-3])
    assert p.head.taps == planned.plan.head.taps and anyway.head is not None  # the same starting head
    assert p.cost.estimate_s > p.cost.finetune_epoch_s * ANYWAY_EPOCHS > 0
    second = store.create(cfg2.to_dict(), "anyway")
    save_planned(second.path, anyway)
    assert Trainer(cfg2, second, planned=anyway).fit().status == "finished"
    epochs = [e for e in second.events("epoch") if e.epoch > 0]
    assert len(epochs) == ANYWAY_EPOCHS and epochs[0].grad_norm[-2] > 0
