"""The frozen part's cached views: stored and read back (or nothing when incomplete), keyed by what made them, and the
head's input they hold."""

from __future__ import annotations

import torch

from engine.model.catalogue import build_model
from engine.model.taps import FINAL, TapModel
from engine.train.views import Views, frozen_forward, load_views, save_views, views_key


def test_views_are_read_back_as_saved_with_their_missing_parts_none(tmp_path):
    views = Views(torch.randn(2, 5, 4), torch.randn(3, 4), None, None)
    save_views(tmp_path / "views.pt", views)
    back = load_views(tmp_path / "views.pt")
    assert torch.equal(back.train_feats, views.train_feats) and torch.equal(back.val_feats, views.val_feats)
    assert back.train_acts is None and back.val_acts is None and back.target_acts is None


def test_missing_or_incomplete_views_are_none_so_they_are_made_again(tmp_path):
    assert load_views(tmp_path / "none.pt") is None
    save_views(tmp_path / "views.pt", Views(torch.randn(1, 2, 3), torch.randn(2, 3), None, None))
    data = (tmp_path / "views.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert load_views(tmp_path / "cut.pt") is None
    torch.save({"train_feats": torch.zeros(1)}, tmp_path / "partial.pt")
    assert load_views(tmp_path / "partial.pt") is None


def test_the_key_changes_with_anything_that_made_the_views():
    made = {"data": "abc", "weights": "sha", "views": 2, "seed": 0}
    assert views_key(made) == views_key(dict(reversed(made.items())))
    assert views_key(made) != views_key({**made, "seed": 1}) and len(views_key(made)) == 16


def test_without_a_split_the_cached_input_is_the_heads_input_without_mirror_averaging():
    torch.manual_seed(0)
    model = TapModel(build_model("tf_efficientnet_lite0", pretrained=False), (3, FINAL), 4, flip_tta=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features, acts = frozen_forward(model, None, x)
        model.flip_tta = False
        assert torch.allclose(features, model.features(x)) and acts is None
