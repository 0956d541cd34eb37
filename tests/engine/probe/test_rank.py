"""The ranking of a pool: margins, and diversity over the head's doubts (the first photos are not all one doubt)."""

import numpy as np

from engine.probe.rank import CANDIDATES, margins, rank_pool


def test_margin_is_the_likeliest_minus_the_runner_up():
    probs = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [0.9, 0.05, 0.05]])
    assert np.allclose(margins(probs), [0.2, 0.01, 0.85])


def test_the_first_photos_come_from_every_cluster_of_doubts_not_one():
    """Twenty photos of one confusing pair, all of smaller margin, beside ten other doubts in five places far apart
    in features, and twenty sure photos: the first ten are spread over the places, where the margin alone would take
    ten of the twenty."""
    rng = np.random.default_rng(0)
    pair = rng.normal(0, 0.01, (20, 8)) + np.eye(8)[0] * 10
    others = np.eye(8)[1:6].repeat(2, axis=0) * 10 + rng.normal(0, 0.01, (10, 8))
    sure = rng.normal(0, 1, (20, 8))
    x = np.concatenate([pair, others, sure])
    margin = np.concatenate([np.linspace(0.01, 0.05, 20), np.linspace(0.1, 0.14, 10), np.full(20, 0.9)])
    order = rank_pool(x, margin.astype(np.float32), 10)
    assert sorted(order.tolist()) == list(range(50))  # every photo ranked once
    firsts = order[:10]
    assert len({int(i) // 2 for i in firsts if 20 <= i < 30}) == 5  # the five other places all come
    assert (firsts < 30).all()  # and no sure photo does
    assert (np.argsort(margin)[:10] < 20).all()  # the margin alone would give all ten to the pair


def test_a_pool_smaller_than_the_candidates_is_ranked_by_margin():
    margin = np.array([0.3, 0.1, 0.2], dtype=np.float32)
    assert rank_pool(np.zeros((3, 4)), margin, 3).tolist() == [1, 2, 0]
    assert len(rank_pool(np.zeros((3, 4)), margin, 1)) == 3
    assert CANDIDATES >= 2
