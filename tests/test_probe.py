import time

import numpy as np
import pytest

from conftest import shared_dataset
from engine.data import load_dataset
from engine.errors import WeightsUnavailable
from engine.probe import fit_linear, probe, shootout


def test_fit_linear_on_separable_features():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(4, 1, (30, 5))]).astype(np.float32)
    y = np.array([0] * 30 + [1] * 30)
    fit = fit_linear(x[::2], y[::2], x[1::2], y[1::2], n_classes=3)
    assert fit.accuracy > 0.95 and fit.probabilities.shape == (30, 3)
    raw_logits = x[1::2] @ fit.coef.T + fit.intercept  # the classifier also works on unstandardised features
    assert (raw_logits.argmax(1) == fit.predictions).all()


def test_probe_on_bad_corpus_does_not_crash(bad_corpus):
    r = probe(load_dataset(bad_corpus), "tf_efficientnet_lite0")
    assert 0 <= r.accuracy <= 1 and r.recommendation.reason
    assert len(r.stage_curve) == 8


def test_shootout_keeps_going_when_weights_are_missing(tiny_folder, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    rows = shootout(load_dataset(tiny_folder), ["convnext_tiny", "tf_efficientnet_lite0"])
    assert rows[0]["backbone"] == "tf_efficientnet_lite0" and rows[0]["accuracy"] is not None
    assert "--weights" in rows[1]["error"]
    with pytest.raises(WeightsUnavailable):
        probe(load_dataset(tiny_folder), "convnext_tiny")


@pytest.mark.slow
def test_lite0_probe_on_real_plant_leaves(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))  # an empty feature cache: the first probe is cold
    ds = load_dataset(shared_dataset("plant-leaves-15"))
    cold = probe(ds, "tf_efficientnet_lite0", per_stage=True)
    assert not cold.cached and cold.accuracy >= 0.85, cold.accuracy
    assert cold.weights.source == "bundled" and len(cold.per_class) == 15
    assert np.array(cold.confusion).sum() == 300
    curve = [c["accuracy"] for c in cold.stage_curve]
    # the transferability cliff: the sixth of seven block stages (blocks.5) beats the final features
    assert cold.stage_curve[6]["name"] == "blocks.5" and curve[6] > cold.accuracy + 0.03
    rec = cold.recommendation
    assert rec.best_stage == 6 and not rec.freeze[6] and rec.freeze[5] and "blocks.5" in rec.reason
    t0 = time.perf_counter()
    warm = probe(ds, "tf_efficientnet_lite0", per_stage=False)
    assert warm.cached and warm.accuracy == cold.accuracy
    assert time.perf_counter() - t0 < cold.seconds / 3
