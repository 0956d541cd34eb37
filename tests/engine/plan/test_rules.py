"""engine.plan.rules: the classic probe table, the per-group rates and the group labels."""

import pytest

from engine.plan.rules import band, discriminative, group_labels, layer_decay


@pytest.mark.parametrize(
    ("accuracy", "expected"), [(0.95, 0), (0.85, 1), (0.70, 1), (0.6999, 2), (0.50, 2), (0.4999, 3), (0.0, 3)]
)
def test_band_edges_follow_the_table(accuracy, expected):
    assert band(accuracy) == expected  # above 85%; 70-85% inclusive; 50-70% inclusive; below 50%


def test_discriminative_rates_decay_below_the_head_down_to_the_floor_and_frozen_groups_get_none():
    rates = discriminative(6, trainable=[1, 2, 3, 4, 5], base=1e-3)
    assert rates == [0.0, 1e-5, 1e-5, 1e-5, 1e-4, 1e-3]  # 1e-3 * max(0.01, 0.1 ** distance)
    assert discriminative(4, trainable=[2, 3], base=1e-3, decay=0.5) == [0.0, 0.0, 5e-4, 1e-3]


def test_transformer_blocks_decay_gently_and_cnn_stages_by_tenfold():
    assert layer_decay(True) == 0.75 and layer_decay(False) == 0.1


def test_group_labels_name_stem_stages_and_head():
    assert group_labels(["conv_stem", "blocks.0", "blocks.1", "classifier"]) == [
        "stem",
        "stage 1 of 2",
        "stage 2 of 2",
        "head",
    ]
