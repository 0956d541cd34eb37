"""The plain-words lines the pages show for a run: its header and the sentence that replaces an empty chart."""

from pathlib import Path

from conftest import a_plan

from engine.runs.result import RunResult
from engine.serve.summary import no_epoch_sentence, run_header, run_summary

PLAN = a_plan(
    path="/srv/secret/place/plant-leaves-15",
    n_train=800,
    n_val=300,
    n_test=161,
    strategy="auto",
    head_epochs=0,
    finetune_epochs=3,
)


def test_the_header_names_the_dataset_not_its_path_or_config():
    line = run_header({"data": {"path": PLAN.data.path, "val": None}}, PLAN)
    assert line == "plant-leaves-15 · 800 train / 300 val / 161 test photos · tf_efficientnet_lite0 · auto"
    assert "/srv" not in line and "{" not in line


def test_the_header_of_a_run_without_a_plan_yet_uses_its_config():
    line = run_header({"data": {"path": "/x/tiny"}, "backbone": "resnet18", "optim": {"strategy": "top-k"}}, None)
    assert line == "tiny · resnet18 · top-k"


def test_one_sentence_instead_of_a_chart_with_one_point():
    assert "first of 3 training epochs" in no_epoch_sentence(0.91, PLAN, "running")
    assert no_epoch_sentence(0.91, a_plan(head_epochs=0, finetune_epochs=0), "finished").startswith("No epoch")


def test_the_test_figure_in_words_says_why_it_is_missing():
    from engine.runs.result import RunResult
    from engine.serve.summary import test_phrase

    scored = RunResult(status="finished", test_accuracy=0.9, test_interval=[0.85, 0.94], test_n=161)
    assert test_phrase(scored, a_plan(n_test=161)).startswith("90.0% on 161 test photos nothing was chosen on")
    stopped = RunResult(status="cancelled")
    assert test_phrase(stopped, a_plan(n_test=161)) == (
        "not scored: the run cancelled before scoring its test split (161 photos); resume it to finish"
    )
    assert test_phrase(RunResult(status="finished", cv_estimate=0.8), a_plan()).startswith("no test split")
    # a run whose plan was never made: whether it would have held out test photos is not known
    assert test_phrase(stopped, None) == "not scored: the run cancelled before its plan was made"
    assert test_phrase(RunResult(status="finished"), None) == "no test split (too little data)"
    # a plan of another version: whether the run held out test photos is not known either
    for status in ("cancelled", "finished"):
        assert test_phrase(RunResult(status=status), None, plan_unreadable=True) == (
            "no test score recorded; its plan cannot be read by this version of TransferLab"
        )


def test_the_worst_mistakes_are_the_wrong_test_photos_most_confident_first_and_a_deleted_photo_is_left_out(tmp_path):
    from engine.runs.result import RunResult
    from engine.serve.summary import Mistake, worst_mistakes

    paths = [str(tmp_path / f"{i}.jpg") for i in range(1, 6)]
    for p in paths[:4]:
        Path(p).write_bytes(b"")
    result = RunResult.from_dict(
        {
            "status": "finished",
            "classes": ["a", "b"],
            "test_paths": paths,
            "test_labels": [0, 0, 1, 1, 0],
            "test_pred": [1, 0, 0, 1, 1],
            "test_conf": [0.6, 0.9, 0.8, 0.7, 0.99],
        }
    )
    assert worst_mistakes(result) == [
        Mistake(paths[2], "b", "a", 0.8, "test"),
        Mistake(paths[0], "a", "b", 0.6, "test"),
    ]
    assert worst_mistakes(result, k=1) == [Mistake(paths[2], "b", "a", 0.8, "test")]


def test_a_run_that_trains_no_epoch_is_not_said_to_have_kept_its_head_over_trained_ones():
    result = RunResult(status="finished", best_epoch=0, best_val_acc=0.86, test_accuracy=0.85, test_interval=(0.8, 0.9))
    frozen = run_summary(result, a_plan(head_epochs=0, finetune_epochs=0, accuracy=0.86))
    assert "The plan trains no epoch" in frozen and "No trained epoch" not in frozen
    trained = run_summary(result, a_plan(head_epochs=0, finetune_epochs=3, accuracy=0.86))
    assert "No trained epoch beat the starting head" in trained


def test_the_starting_head_is_quoted_as_the_run_scored_it_when_that_differs_from_the_plans_cached_figure():
    """The probe's val figure comes from the plan's cached features (bf16 on a CPU with native bf16); the run scores
    epoch 0 as it scores every epoch. Both are said, each for what it is, and the gain of training is counted from
    the run's own epoch 0, not from the plan's figure."""
    plan = a_plan(head_epochs=0, finetune_epochs=3, accuracy=0.863, probe_accuracy=0.863)
    result = RunResult(status="finished", best_epoch=2, best_val_acc=0.893, start_val_accuracy=0.873)
    line = run_summary(result, plan)
    assert "got 86.3% of the validation photos on the features the plan cached" in line
    assert "the head the run started from got 87.3% as the run scores every epoch" in line
    assert "added +2.0 points" in line  # 89.3 - 87.3, not 89.3 - 86.3
    same = run_summary(RunResult(status="finished", best_epoch=0, best_val_acc=0.863, start_val_accuracy=0.863), plan)
    assert "got 86.3% of the validation photos." in same and "cached" not in same
