"""A plan and a run for photos from somewhere else: the target section of the plan, DANN and MMD in phase 2 with
their curves, the head standardised on the target photos, the target test scored once, and what is refused."""

import pytest
from PIL import Image, ImageOps

from engine.errors import DataError
from engine.plan.config import ConfigError, TrainConfig
from engine.plan.domain import MAX_VAL_LOSS, keeps_epoch
from engine.plan.make import get_plan
from engine.plan.preflight import preflight
from engine.runs.store import RunStore
from engine.service.training import train


def _inverted(src_files, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(src_files):
        ImageOps.invert(Image.open(f).convert("RGB")).save(dst / f"x{i:03d}.jpg", quality=90)
    return dst


@pytest.fixture
def domains(tiny_folder, tmp_path):
    """The tiny training photos, 12 unlabelled colour-inverted photos of theirs, and 2 labelled inverted ones per
    class as a target test."""
    classes = sorted(tiny_folder.iterdir())
    target = _inverted([f for cls in classes for f in sorted(cls.iterdir())[:4]], tmp_path / "field")
    test = tmp_path / "field-test"
    for cls in classes:
        _inverted(sorted(cls.iterdir())[4:], test / cls.name)
    return tiny_folder, target, test


def _cfg(data, target, test, **kw):
    base = dict(strategy="top-k", top_k=1, head_epochs=0, finetune_epochs=2, batch_size=4, views=1, val_fraction=0.34)
    return TrainConfig.create(data=str(data), target=str(target), target_test=str(test), **{**base, **kw})


@pytest.mark.parametrize("method", ["dann", "mmd"])
def test_an_adapted_run_records_its_domain_curves_and_scores_the_target_test(domains, tmp_path, method):
    data, target, test = domains
    cfg = _cfg(data, target, test, adapt=method)
    plan = get_plan(cfg).plan
    assert plan.target.adapt == method and plan.target.n == 12 and plan.target.n_test == 6 and plan.target_reason
    assert "DANN" in plan.target_reason if method == "dann" else "MMD" in plan.target_reason
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    epochs = [e for e in run.events("epoch") if e.epoch > 0]
    key = "domain_acc" if method == "dann" else "mmd"
    assert len(epochs) == 2 and all(key in e.adapt for e in epochs)
    assert epochs[-1].adapt["adapt_weight"] > epochs[0].adapt["adapt_weight"]  # the ramp
    assert m.target_test_n == 6 and 0 <= m.target_test_accuracy <= 1
    assert m.start_target_test_accuracy is not None


def test_the_head_standardised_on_the_target_photos_keeps_their_statistics(domains, tmp_path):
    import torch
    from safetensors.torch import load_file

    data, target, test = domains
    cfg = _cfg(data, target, test, target_norm=True, finetune_epochs=1)
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    head = load_file(str(run.path / "model.safetensors"))
    start = run.load_checkpoint("start")["model"]
    assert not torch.allclose(head["head.mean"], start["head.mean"])  # the target photos' own statistics
    best = next(e for e in run.events("epoch") if e.epoch == m.best_epoch)
    assert m.best_val_acc == pytest.approx(best.val_acc)  # val is read with the training photos' statistics
    assert any("Asked for" in d["sentence"] for d in run.read_json("plan.json")["decisions"])


def test_a_head_adapted_to_the_target_photos_is_the_head_the_run_starts_from(domains, tmp_path):
    data, target, test = domains
    starts = {}
    for method in ("none", "coral"):
        cfg = _cfg(data, target, test, strategy="feature-extraction", head_epochs=0, target_head=method)
        plan = get_plan(cfg).plan
        assert plan.target.head == ("" if method == "none" else method)
        run = RunStore(tmp_path / "runs").create(cfg.to_dict())
        assert train(cfg, run).status == "finished"
        starts[method] = run.load_checkpoint("start")["model"]["head.fc.weight"]
        said = plan.target_reason
        assert ("as asked, the run starts from CORAL" in said) == (method == "coral")
    assert not starts["none"].allclose(starts["coral"])


def test_batchnorm_statistics_re_estimated_on_the_target_photos_are_saved_and_val_keeps_the_backbones(
    domains, tmp_path
):
    import torch
    from safetensors.torch import load_file

    data, target, test = domains
    cfg = _cfg(data, target, test, target_bn=True, finetune_epochs=1)
    plan = get_plan(cfg).plan
    assert plan.target.bn and plan.target.norm  # the re-estimated features are read on their own statistics
    assert "as asked, the saved model reads target photos with the re-estimated statistics" in plan.target_reason
    assert "re-estimated on 12 target photos (AdaBN)" in plan.target_reason
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    saved, start = load_file(str(run.path / "model.safetensors")), run.load_checkpoint("start")["model"]
    stats = [k for k in start if k.endswith("running_mean") and not k.startswith("head.")]
    assert stats and all(not torch.allclose(saved[k], start[k]) for k in stats)  # every layer: the target photos'
    best = next(e for e in run.events("epoch") if e.epoch == m.best_epoch)
    assert m.best_val_acc == pytest.approx(best.val_acc)  # val is read with the backbone's own statistics
    assert "re-estimate BatchNorm on the target photos" in {e.name for e in run.events("setup")}
    with pytest.raises(ConfigError, match="target_bn"):
        _cfg(data, target, test, target_bn=True, target_norm=False)
    scratch = get_plan(_cfg(data, target, test, target_bn=True, strategy="scratch", finetune_epochs=1)).plan
    assert not scratch.target.bn and "BatchNorm re-estimation was asked for, but the run does not start" in (
        scratch.target_reason
    )  # asked for and not possible: said, not ignored


def test_what_an_adapted_plan_cannot_do_is_said_in_one_line(domains):
    data, target, test = domains
    with pytest.raises(ConfigError, match="needs photos to adapt to"):
        TrainConfig.create(data=str(data), adapt="dann")
    frozen = get_plan(_cfg(data, target, test, strategy="feature-extraction", adapt="dann")).plan
    assert "adapt-frozen" in {f.code for f in preflight(frozen) if f.error}
    with pytest.raises(DataError, match="no labelled photos"):
        get_plan(_cfg(data, target, target))  # the target folder holds no labelled photo
    first = sorted(data.iterdir())[0]
    leaky = _inverted(sorted(first.iterdir())[:2], target.parent / "leaky" / first.name)  # photos of the target folder
    with pytest.raises(DataError, match="also in the target folder"):
        get_plan(_cfg(data, target, leaky.parent))


def test_an_adapted_run_keeps_the_latest_epoch_close_to_the_best_on_val_or_the_best_on_labelled_target_photos():
    assert keeps_epoch(0.91, None, (0.90, -1.0), 0.91, adapted=False)
    assert not keeps_epoch(0.90, None, (0.90, -1.0), 0.90, adapted=False)  # a tie keeps the earlier epoch
    assert keeps_epoch(0.90, None, (0.91, -1.0), 0.91, adapted=True)  # adaptation: the latest close to the best
    assert not keeps_epoch(0.91 - MAX_VAL_LOSS - 0.001, None, (0.91, -1.0), 0.91, adapted=True)
    assert keeps_epoch(0.80, 0.7, (0.90, 0.6), 0.90, adapted=True)  # labelled target photos decide
    assert not keeps_epoch(0.95, 0.5, (0.90, 0.6), 0.95, adapted=True)


def test_pseudo_labels_join_the_training_photos_only_when_the_head_is_sure():
    import numpy as np

    from engine.plan.domain import PSEUDO_CONFIDENCE, pseudo_labelled
    from engine.probe.linear import fit_linear

    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0], [0.0, 4.0]])
    y = np.repeat([0, 1], 50)
    xs = centres[y] + rng.normal(0, 1, (100, 2))
    head = fit_linear(xs, y, xs, y, 2)
    far = centres[np.repeat([0, 1], 20)] + rng.normal(0, 1, (40, 2))  # target photos, standardised alike
    unsure = np.zeros((10, 2))  # on the boundary: never pseudo-labelled
    zt = (np.concatenate([far, unsure]) - head.mean) / head.scale
    refit, n = pseudo_labelled(head, xs, y, zt, c=1.0)
    logits = zt @ head.std_coef.T + head.std_intercept
    sure = (np.exp(logits).max(1) / np.exp(logits).sum(1)) >= PSEUDO_CONFIDENCE
    assert n == int(sure.sum()) and 0 < n <= 40
    assert np.array_equal(refit.mean, head.mean) and refit.std_coef.shape == head.std_coef.shape


def test_auto_with_target_photos_tries_the_adaptations_and_says_what_it_kept(domains):
    data, target, test = domains
    cfg = TrainConfig.create(
        data=str(data), target=str(target), target_test=str(test), strategy="auto", batch_size=4, val_fraction=0.34
    )
    plan = get_plan(cfg).plan
    assert plan.phases.trains_below_head, plan.reason  # auto fine-tunes the tiny photos: what the trials need
    said = plan.target_reason
    assert "Adaptation tried on the cached features" in said and "DANN at 0.3" in said and "MMD at 1" in said
    assert "Simple fixes first" in said and "rates 10x smaller below the head" in said
    assert "stronger augmentation (RandAugment)" in said  # its pass over 12 tiny photos fits the budget
    assert (plan.phases.augment == "randaugment") == (plan.target.fix == "stronger")  # the fix kept is the plan run
    assert plan.target.adapt in ("none", "dann", "mmd")
    assert (plan.target.adapt == "none") == ("no adaptation loss" in said)
    assert "re-estimated on 12 target photos (AdaBN), scored by reverse validation" in said  # a candidate, on evidence
    assert "Expected on those photos (ATC on an adapted reference's support):" in said and "re-estimated, " in said
    assert "The head adapted to the target photos on their cached features" in said and "SHOT" in said
    assert "Expected on the target photos (ATC on the support of a reference adapted to them" in said
    assert "refitted; reverse validation chooses" in said
    assert plan.target.bn == ("reads target photos with the re-estimated statistics" in said)


@pytest.mark.parametrize("chosen_score", [0.0, 1.0])
def test_a_fine_tune_that_carries_to_the_target_photos_worse_than_its_start_gives_the_start_back(
    domains, tmp_path, monkeypatch, chosen_score
):
    import torch
    from safetensors.torch import load_file

    from engine.train import reverse_check

    data, target, test = domains
    cfg = _cfg(data, target, test, adapt="mmd", target_norm=True)  # adapted: the latest epoch close to the best
    plan = get_plan(cfg).plan
    assert plan.target.reverse > 0  # the starting head's score, from the plan's evidence
    real, calls = reverse_check.model_reverse, []

    def chosen_then_real(ctx):  # the chosen model is read first, then the starting head
        calls.append(1)
        return (chosen_score, real(ctx)[1]) if len(calls) == 1 else real(ctx)

    monkeypatch.setattr(reverse_check, "model_reverse", chosen_then_real)
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    checked = m.target_reverse
    assert 0 < checked["start"] <= 1 and checked["epoch"] > 0 and len(calls) == 2  # both read the same way
    from engine.serve.summary import run_summary

    assert checked["sentence"] in run_summary(m, plan)  # the Train page says it
    saved, start = load_file(str(run.path / "model.safetensors")), run.load_checkpoint("start")["model"]
    same = all(torch.equal(saved[k], start[k]) for k in start if not k.startswith("head."))
    if chosen_score == 0.0:  # below the start beyond its standard error: the start is the model
        assert checked["kept"] == "start" and m.best_epoch == 0 and same
        assert "starting head is kept" in checked["sentence"]
    else:
        assert checked["kept"] == "chosen" and m.best_epoch == checked["epoch"] and not same
