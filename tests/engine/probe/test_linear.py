"""The linear probe: standardised logistic regression, the per-stage curve, shoot-outs, and the real-data figures."""

import time

import numpy as np
import pytest
from conftest import shared_dataset

from engine.data.dataset import load_dataset
from engine.errors import DataError, WeightsUnavailable
from engine.model.catalogue import input_spec
from engine.model.taps import FINAL
from engine.probe.linear import fit_linear, probe
from engine.probe.shootout import shootout


def test_fit_linear_on_separable_features():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(4, 1, (30, 5))]).astype(np.float32)
    y = np.array([0] * 30 + [1] * 30)
    fit = fit_linear(x[::2], y[::2], x[1::2], y[1::2], n_classes=3)
    assert fit.accuracy > 0.95 and fit.probabilities.shape == (30, 3)
    raw_logits = x[1::2] @ fit.coef.T + fit.intercept  # the classifier also works on unstandardised features
    assert (raw_logits.argmax(1) == fit.predictions).all()
    balanced = fit_linear(x[::2], y[::2], x[1::2], y[1::2], n_classes=3, balanced=True)
    assert balanced.accuracy > 0.95


def test_probe_on_bad_corpus_does_not_crash(bad_corpus):
    r = probe(load_dataset(bad_corpus), "tf_efficientnet_lite0")
    assert 0 <= r.accuracy <= 1 and r.head is not None
    assert [c["tap"] for c in r.stage_curve] == list(range(8)) + [FINAL]
    assert r.stage_curve[-1]["accuracy"] == r.accuracy and r.features.views == 2


def test_one_class_is_refused_with_the_reason(tiny_folder):
    import shutil

    for extra in sorted(tiny_folder.iterdir())[1:]:
        shutil.rmtree(extra)
    with pytest.raises(DataError, match="at least 2 classes"):
        probe(load_dataset(tiny_folder), "tf_efficientnet_lite0")


def test_shootout_keeps_going_when_weights_are_missing_and_gives_a_verdict(tiny_folder, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = shootout(load_dataset(tiny_folder), ["convnext_tiny", "tf_efficientnet_lite0"])
    rows = out.rows
    assert rows[0].backbone == "tf_efficientnet_lite0" and rows[0].accuracy is not None
    assert "--weights" in rows[1].problem and "convnext_tiny" in out.verdict
    assert out.verdict.startswith("tf_efficientnet_lite0 is best")
    with pytest.raises(WeightsUnavailable):
        probe(load_dataset(tiny_folder), "convnext_tiny")


@pytest.mark.slow
def test_lite0_probe_on_real_plant_leaves(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))  # an empty feature cache: the first probe is cold
    ds = load_dataset(shared_dataset("plant-leaves-15"))
    cold = probe(ds, "tf_efficientnet_lite0", per_stage=True)
    assert not cold.cached and cold.accuracy >= 0.84, cold.accuracy
    assert cold.weights.source == "bundled" and len(cold.per_class) == 15
    assert np.array(cold.confusion).sum() == 300
    # the transferability cliff: the sixth of seven block stages (blocks.5) beats the final features
    assert cold.best_stage["name"] == "blocks.5" and cold.best_stage["accuracy"] > cold.accuracy + 0.03
    t0 = time.perf_counter()
    warm = probe(ds, "tf_efficientnet_lite0", per_stage=False)
    assert warm.cached and warm.accuracy == cold.accuracy
    assert time.perf_counter() - t0 < cold.seconds / 3


def test_large_datasets_are_probed_without_the_mirror_view(tiny_folder, monkeypatch):
    import engine.probe.features as features
    from engine.probe.choose import choose_head

    monkeypatch.setattr(features, "MIRROR_MAX_IMAGES", 5)  # the tiny set counts as large
    ds = load_dataset(tiny_folder)
    r = probe(ds, "tf_efficientnet_lite0")
    assert r.features.views == 1 and r.images_per_s > 0
    _, scored, _ = choose_head([r], len(ds.classes), 1.0)
    assert scored and not any(c.flip for c in scored)


def test_a_probe_asked_for_no_mirror_view_reads_each_photo_once_and_plans_cost_it_so(tiny_folder):
    from engine.plan.budget import Pace, extract_seconds
    from engine.plan.config import TrainConfig
    from engine.plan.make import get_plan

    ds = load_dataset(tiny_folder)
    assert probe(ds, "tf_efficientnet_lite0", per_stage=False, mirror=False).features.views == 1
    assert probe(ds, "tf_efficientnet_lite0", per_stage=False).features.views == 2  # its own cache entry
    cfg = TrainConfig.create(data=str(tiny_folder), strategy="auto", probe_mirror=False, budget=5)
    assert not any(c.flip for c in get_plan(cfg).plan.head.candidates)
    pace, spec = Pace("tf_efficientnet_lite0", 224, 10.0), input_spec("tf_efficientnet_lite0")
    assert extract_seconds(pace, "tf_efficientnet_lite0", spec, 100, mirror=False) == pytest.approx(
        extract_seconds(pace, "tf_efficientnet_lite0", spec, 100) / 2
    )


def test_cached_features_keep_the_speed_they_were_extracted_at_so_plans_still_cost_their_epochs(tiny_folder):
    from engine.plan.config import TrainConfig
    from engine.plan.make import get_plan

    ds = load_dataset(tiny_folder)
    cold = probe(ds, "resnet18", weights="none", per_stage=False)
    warm = probe(ds, "resnet18", weights="none", per_stage=False)
    assert warm.cached and warm.images_per_s == cold.images_per_s > 0
    cfg = TrainConfig.create(
        data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k", finetune_epochs=2, views=1
    )
    plan = get_plan(cfg).plan  # its probe comes from the cache
    assert plan.cost.finetune_epoch_s > 0 and plan.cost.estimate_s > plan.cost.finetune_epoch_s * 2


def test_the_shootout_scores_a_backbone_as_the_probe_page_does(tiny_folder):
    from engine.plan.config import TrainConfig
    from engine.plan.make import load_data, plan_with_probe

    cfg = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=5)
    page_probe = plan_with_probe(cfg).probes[0]
    row = shootout(load_data(cfg), ["tf_efficientnet_lite0"]).rows[0]
    assert row.accuracy == page_probe.accuracy  # the same split, input contract and features


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present():
    from engine.probe.choose import _metric

    rng = np.random.default_rng(0)
    for _ in range(20):
        y, pred = rng.integers(0, 5, 40), rng.integers(0, 6, 40)  # predictions may name a class the labels lack
        hand_written = np.mean([(pred[y == c] == c).mean() for c in np.unique(y)])  # the rule before sklearn's
        assert _metric(y, pred, "balanced accuracy") == pytest.approx(hand_written)
        assert _metric(y, pred, "accuracy") == pytest.approx((pred == y).mean())
