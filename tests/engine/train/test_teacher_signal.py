"""Distillation: the loss that mixes the teacher's answers with the labels, the answers kept in the run folder, and a
real student run on the sample that learns from a trained teacher."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.plan.config import ConfigError, TrainConfig
from engine.runs.store import RunStore
from engine.train import distill
from engine.train.distill import ANSWERS, distill_loss


def test_the_loss_is_the_labels_at_weight_0_and_the_teacher_at_weight_1():
    torch.manual_seed(0)
    logits, teacher = torch.randn(8, 5), torch.randn(8, 5).log_softmax(-1)
    hard = F.cross_entropy(logits, torch.arange(8) % 5)
    assert distill_loss(logits, hard, teacher, 0.0, 4.0) == pytest.approx(float(hard))
    assert float(distill_loss(teacher.clone(), hard, teacher, 1.0, 4.0)) == pytest.approx(0.0, abs=1e-6)  # agrees
    assert float(distill_loss(logits, hard, teacher, 1.0, 4.0)) > 0.0


def test_a_student_trained_on_the_loss_alone_comes_to_answer_like_its_teacher():
    """A linear student fitted on 24 points to a known teacher's soft answers (weight 1) ranks the classes as the
    teacher does on new points far more often than one fitted to the labels: the second choices carry what the labels
    never show."""
    torch.manual_seed(0)
    teacher_w = torch.randn(6, 4) * 2
    x, new = torch.randn(24, 6), torch.randn(1000, 6)
    teacher = (x @ teacher_w).log_softmax(-1)
    y = teacher.argmax(1)

    def fitted(weight: float) -> torch.Tensor:
        w = torch.zeros(6, 4, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.05)
        for _ in range(300):
            logits = x @ w
            loss = distill_loss(logits, F.cross_entropy(logits, y), teacher, weight, 2.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return w.detach()

    def second_choice_agreement(w):
        return float(((new @ w).topk(2).indices[:, 1] == (new @ teacher_w).topk(2).indices[:, 1]).float().mean())

    kd, labels = second_choice_agreement(fitted(1.0)), second_choice_agreement(fitted(0.0))
    assert kd > labels + 0.1


def test_mixup_with_a_teacher_is_refused_and_the_weight_is_a_share():
    with pytest.raises(ConfigError, match="MixUp"):
        TrainConfig.create(data="x", distill_from="some-run", mixup=0.2)
    with pytest.raises(ConfigError, match="distill_weight"):
        TrainConfig.create(data="x", distill_from="some-run", distill_weight=1.5)


@pytest.fixture(scope="module")
def student(finished_store, tmp_path_factory):
    """A student of the tiny finished run, trained on the same photos (its teacher's answers only: weight 1)."""
    from engine.service.training import train

    teacher = finished_store.list()[0]
    cfg = TrainConfig.from_dict(teacher.config).with_(distill_from=str(teacher.path), distill_weight=1.0)
    run = RunStore(tmp_path_factory.mktemp("student")).create(cfg.to_dict(), "student")
    result = train(cfg, run)
    return teacher, cfg, run, result


def test_a_student_run_learns_from_its_teacher_and_keeps_its_answers(student, monkeypatch):
    from engine.plan.make import load_data
    from engine.plan.parts import Plan

    teacher, cfg, run, result = student
    assert result.status == "finished", result.error
    plan = Plan.from_dict(run.read_json("plan.json"))
    assert plan.distill.teacher == str(teacher.path) and plan.distill.weight == 1.0 and plan.cost.teach_s >= 0
    assert "as well as from the labels" in plan.reason and "100% of the loss" in plan.reason
    kept = run.read_tensors(ANSWERS)
    ds = load_data(cfg)
    assert kept["log_probs"].shape == (len(ds.train), len(ds.classes))
    assert torch.allclose(kept["log_probs"].exp().sum(1), torch.ones(len(ds.train)), atol=1e-4)
    monkeypatch.setattr(distill, "teacher_answers", lambda *a, **k: pytest.fail("asked the teacher again"))
    again, on_target = distill.answers(run, plan.distill, ds, [], torch.device("cpu"))  # a resumed run reads them
    assert torch.equal(again, kept["log_probs"]) and on_target is None


def test_a_student_given_target_photos_learns_the_teachers_answers_on_them(finished_store, tmp_path, monkeypatch):
    from PIL import Image, ImageOps

    from engine.plan.parts import Plan
    from engine.service.training import train
    from engine.train import loop

    teacher = finished_store.list()[0]
    cfg = TrainConfig.from_dict(teacher.config)
    target = tmp_path / "field"
    target.mkdir()
    photos = sorted(Path(cfg.data.path).rglob("*.jpg"))[:6]
    for i, f in enumerate(photos):
        ImageOps.invert(Image.open(f).convert("RGB")).save(target / f"x{i}.jpg", quality=90)
    calls = []

    def counted(logits, teacher_log_probs, temperature):
        calls.append(len(logits))
        return distill.soft_loss(logits, teacher_log_probs, temperature)

    monkeypatch.setattr(loop, "soft_loss", counted)
    cfg = cfg.with_(distill_from=str(teacher.path), target=str(target), adapt="none", target_head="none")
    run = RunStore(tmp_path / "runs").create(cfg.to_dict(), "student")
    assert train(cfg, run).status == "finished"
    plan = Plan.from_dict(run.read_json("plan.json"))
    kept = run.read_tensors(ANSWERS)
    assert plan.distill.n_target == 6 and kept["target_log_probs"].shape == (6, 3)
    assert "the teacher's answers on the 6 target photos" in plan.reason
    assert calls and plan.phases.finetune_epochs >= 1  # a batch of target photos beside every phase-2 batch


def test_without_a_run_folder_the_answers_are_read_and_kept_nowhere(monkeypatch):
    """The LR finder sets a distilled run up with no run folder: the teacher answers, nothing is written."""
    from types import SimpleNamespace

    from engine.plan.parts import DistillPart

    got = torch.zeros(3, 2).log_softmax(-1)
    monkeypatch.setattr(distill, "teacher_answers", lambda *a, **k: got)
    ds = SimpleNamespace(train=[SimpleNamespace(path=f"{i}.png") for i in range(3)])
    train, target = distill.answers(None, DistillPart(teacher="t"), ds, [], torch.device("cpu"))
    assert torch.equal(train, got) and target is None


@pytest.mark.slow
def test_on_the_sample_a_distilled_student_beats_the_same_student_on_labels(tmp_path):
    """Auto's model on the bundled sample teaches Lite0 fine-tuned in its top groups; the same student, seed and
    epochs on the labels alone is the baseline. Scored on the sample's held-out test photos."""
    from engine.paths import SAMPLE
    from engine.runs.result import RunResult
    from engine.serve.compare import paired_test
    from engine.service.training import train

    store = RunStore(tmp_path / "runs")

    def trained(**kw):
        cfg = TrainConfig.create(data=str(SAMPLE), **kw)
        run = store.create(cfg.to_dict())
        assert train(cfg, run).status == "finished"
        return run, RunResult.read(run)

    teacher, taught_by = trained(strategy="auto", budget=150)
    _, labels = trained(strategy="top-k", finetune_epochs=6)
    _, distilled = trained(strategy="top-k", finetune_epochs=6, distill_from=str(teacher.path))
    pair = paired_test(labels, distilled)
    why = (
        f"teacher {taught_by.test_accuracy:.1%}, student on labels {labels.test_accuracy:.1%}, distilled "
        f"{distilled.test_accuracy:.1%} on {pair.n} test photos ({pair.only_b} right only distilled, {pair.only_a} "
        f"only on labels)"
    )
    assert taught_by.test_accuracy > labels.test_accuracy, f"the teacher is no better than the student: {why}"
    assert distilled.test_accuracy > labels.test_accuracy, why
