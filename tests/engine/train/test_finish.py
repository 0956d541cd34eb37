"""The end of a run: the starting head is scored on the test split beside the chosen model, from its own checkpoint,
and the Compare page's row reads both back."""

import shutil

import pytest
from conftest import SAMPLE
from safetensors.torch import save_file

from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.serve.compare import compare_row, gap_sentence
from engine.serve.evaluate import evaluate
from engine.service.training import train


@pytest.fixture
def with_test(tmp_path):
    """Three classes, 14 photos each: enough for a carved test split of 3 a class."""
    root = tmp_path / "data"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (root / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:14]:
            shutil.copy(f, root / cls.name / f.name)
    return root


def test_the_starting_head_is_scored_on_test_from_its_own_checkpoint(with_test, tmp_path):
    cfg = TrainConfig.create(
        data=str(with_test),
        strategy="top-k",
        top_k=2,
        head_epochs=0,
        finetune_epochs=2,
        views=1,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.2,
    )
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    metrics = train(cfg, run)
    assert metrics.status == "finished", metrics.error
    assert metrics.test_n >= 9 and (run.path / "start.pt").exists()
    chosen = evaluate(run, split="test")
    assert chosen.accuracy == pytest.approx(metrics.test_accuracy)  # the best model was put back
    start = run.load_checkpoint("start")["model"]
    shutil.move(run.path / "model.safetensors", run.path / "chosen.safetensors")
    save_file({k: v.contiguous() for k, v in start.items()}, str(run.path / "model.safetensors"))
    from engine.model.weights import sha256_file

    run.write_json("metrics.json", {**metrics.to_dict(), "model_sha256": sha256_file(run.path / "model.safetensors")})
    assert evaluate(run, split="test").accuracy == pytest.approx(metrics.start_test_accuracy)
    lo, hi = metrics.start_test_interval
    assert lo <= metrics.start_test_accuracy <= hi

    epoch0 = [e.val_acc for e in run.events("epoch") if e.epoch == 0]
    assert len(epoch0) == 1 and metrics.start_val_accuracy == epoch0[0]  # the run's own epoch 0, for the summary
    row = compare_row(run)
    assert row.start_test == metrics.start_test_accuracy and row.test == metrics.test_accuracy
    assert row.epochs_trained == 2 and 0 < row.start_seconds < row.seconds
    assert str(row.run) in gap_sentence([row]) or "kept its head" in gap_sentence([row])


def test_without_a_test_split_there_is_no_starting_checkpoint_and_the_sentence_says_why(tiny_folder, tmp_path):
    cfg = TrainConfig.create(
        data=str(tiny_folder),
        strategy="top-k",
        top_k=1,
        head_epochs=1,
        finetune_epochs=1,
        views=1,
        batch_size=4,
        val_fraction=0.34,
    )
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    assert train(cfg, run).status == "finished"
    assert not (run.path / "start.pt").exists()
    row = compare_row(run)
    assert row.test is None and row.start_test is None
    assert gap_sentence([row]).startswith("No run here has a test split")
