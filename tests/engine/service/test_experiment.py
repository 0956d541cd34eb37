"""The lesson's experiment: four configurations, results read back from each run's own stored metrics."""

from engine.runs.events import EpochEnded, SetupStep
from engine.runs.store import RunStore
from engine.serve.view import RunView
from engine.service.experiment import (
    ARMS,
    LessonEstimate,
    LessonRow,
    lesson_configs,
    lesson_estimate,
    lesson_progress,
    lesson_rows,
    lesson_sentence,
    snapshot,
)


def test_four_arms_on_one_backbone_and_dataset(tiny_folder):
    cfgs = lesson_configs(str(tiny_folder))
    assert set(cfgs) == set(ARMS) and next(iter(cfgs)) == "probe"  # submitted first: its result is on screen soonest
    assert {c.backbone for c in cfgs.values()} == {"tf_efficientnet_lite0"}
    assert cfgs["scratch"].weights == "none" and cfgs["scratch"].optim.strategy == "scratch"
    assert cfgs["probe"].optim.strategy == "feature-extraction" and cfgs["probe"].optim.head_epochs == 0
    assert cfgs["finetune"].optim.strategy == "top-k" and cfgs["finetune"].optim.finetune_epochs >= 1
    assert cfgs["auto"].optim.strategy == "auto"
    assert not any(c.runtime.probe_mirror for c in cfgs.values())  # one view per photo: half the probe's time


def test_rows_come_from_each_runs_stored_test_result(tmp_path):
    store = RunStore(tmp_path)
    runs = {}
    for i, arm in enumerate(("scratch", "probe")):
        run = runs[arm] = store.create({}, arm)
        run.append(EpochEnded(epoch=1, val_acc=0.5))
        run.write_json(
            "metrics.json",
            {"test_accuracy": 0.2 + 0.6 * i, "test_interval": [0.1, 0.9], "test_n": 161, "seconds": 100.0 - 80 * i},
        )
    rows = lesson_rows({arm: snapshot(run) for arm, run in runs.items()})
    assert [r.arm for r in rows] == ["scratch", "probe"] and rows[1].test_accuracy == 0.8
    assert rows[0].epochs_trained == 1
    sentence = lesson_sentence(rows)
    assert sentence.startswith("From scratch (random initialisation): 20% in 100 s;")
    assert "linear probe): 80% in 20 s" in sentence and "161 test photos" in sentence


def test_a_running_experiment_and_one_without_a_test_split_say_so():
    assert "still running" in lesson_sentence([_row("running")])
    assert "without a test split" in lesson_sentence([_row("finished")])


def _row(state: str) -> LessonRow:
    return LessonRow("scratch", "from scratch", "r1", state, None, None, None, None, 0)


def test_the_promise_is_the_cost_models_estimate_of_each_run(tiny_folder):
    estimate = lesson_estimate(str(tiny_folder))
    assert set(estimate.seconds) == set(ARMS) and all(s > 0 for s in estimate.seconds.values())
    assert estimate.seconds["auto"] == lesson_configs(str(tiny_folder))["auto"].optim.budget  # it fills it at most
    from engine.plan.make import load_data, run_estimate

    finetune = lesson_configs(str(tiny_folder))["finetune"]
    ds = load_data(finetune)
    assert run_estimate(finetune, ds) > estimate.seconds["finetune"] == run_estimate(finetune, ds, features_cached=True)
    assert estimate.total == sum(estimate.seconds.values())


def test_the_status_line_names_the_step_under_way_and_the_time_left_of_all_four():
    estimate = LessonEstimate({"probe": 30.0, "scratch": 50.0, "finetune": 80.0, "auto": 30.0})
    queued = {arm: RunView(arm, "queued") for arm in estimate.seconds}
    first = lesson_progress(queued, estimate, now=0.0)
    assert first.arm == "probe" and first.step == "queued: waiting for the runner…" and first.left_s == 190.0
    started = {**queued, "probe": RunView("probe", "running", setups=[SetupStep(name="load and check data", t=1.0)])}
    now = lesson_progress(started, estimate, now=2.0)
    assert now.arm == "probe" and now.step.startswith("load and check data") and now.left_s == 190.0
    done = {**started, "probe": RunView("probe", "finished"), "scratch": started["probe"]}
    assert lesson_progress(done, estimate, now=2.0).arm == "scratch"
    assert lesson_progress(queued, None, now=0.0).left_s is None  # no estimate yet: no number is made up
    ended = {arm: RunView(arm, "finished") for arm in estimate.seconds}
    assert lesson_progress(ended, estimate, now=0.0).arm is None
