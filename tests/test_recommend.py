import pytest

from engine.recommend import Recommendation, discriminative_mults, recommend

GROUPS = ["stem", "b0", "b1", "b2", "b3", "b4", "b5", "b6", "head"]


@pytest.mark.parametrize("acc,strategy,trainable", [
    (0.90, "feature-extraction", [8]),
    (0.80, "top-k", [7, 8]),
    (0.60, "top-k", [5, 6, 7, 8]),
    (0.40, "full", list(range(9))),
])
def test_accuracy_bands(acc, strategy, trainable):
    rec = recommend(acc, GROUPS, n_train=800)
    assert rec.strategy == strategy and rec.trainable == trainable
    assert f"{acc:.1%}" in rec.reason


def test_more_data_unfreezes_more():
    assert len(recommend(0.80, GROUPS, 5000).trainable) > len(recommend(0.80, GROUPS, 800).trainable)
    assert len(recommend(0.80, GROUPS, 50000).trainable) > len(recommend(0.80, GROUPS, 5000).trainable)


def test_transferability_cliff_puts_the_head_on_the_best_stage():
    curve = [0.5, 0.4, 0.7, 0.85, 0.87, 0.90, 0.94, 0.87]
    rec = recommend(0.87, GROUPS, 800, curve)
    assert rec.strategy == "stage-head" and rec.head_stage == rec.best_stage == 6
    assert rec.groups == tuple(GROUPS[:7]) + ("head",) and rec.trainable == [6, 7]
    assert "94.0%" in rec.reason and "b5" in rec.reason and rec.head_epochs == 0


def test_transferability_cliff_moves_the_freeze_boundary_when_the_network_cannot_be_cut():
    curve = [0.5, 0.4, 0.7, 0.85, 0.87, 0.90, 0.94, 0.87]
    rec = recommend(0.87, GROUPS, 800, curve, allow_stage_head=False)
    assert rec.best_stage == 6 and rec.trainable == [6, 7, 8] and rec.strategy == "top-k"
    assert "94.0%" in rec.reason and "b5" in rec.reason
    flat = recommend(0.87, GROUPS, 800, [0.5, 0.6, 0.7, 0.8, 0.85, 0.86, 0.87, 0.87])
    assert flat.strategy == "feature-extraction"


def test_non_rgb_inputs_train_the_stem():
    rec = recommend(0.90, GROUPS, 800, in_channels=4)
    assert 0 in rec.trainable and "4 channel" in rec.reason


def test_discriminative_rates_and_round_trip():
    assert discriminative_mults(5, [2, 3, 4]) == [0, 0, 0.01, 0.1, 1.0]
    rec = recommend(0.6, GROUPS, 800)
    assert Recommendation.from_dict(rec.to_dict()) == rec
    lrs = rec.to_dict()["lrs"]
    assert lrs[-1] == 1e-3 and lrs[-2] == 1e-4 and lrs[-3] == 1e-5 and lrs[0] == 0
