"""What a run will write and hold, checked before it starts."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
from torch import nn

from engine.errors import NotEnoughSpace
from engine.model import resources
from engine.model.taps import FINAL, tap_dims

ARCH = "tf_efficientnet_lite0"
Usage = namedtuple("Usage", "total used free")


def test_feature_bytes_and_head_width_follow_the_backbones_stage_widths():
    dims, final = tap_dims(ARCH)
    assert resources.feature_bytes(ARCH, 10, views=1) == 10 * (sum(dims) + final) * 4
    assert resources.feature_bytes(ARCH, 10) == 2 * resources.feature_bytes(ARCH, 10, views=1)
    assert resources.head_dim(ARCH, (FINAL,)) == final
    assert resources.head_dim(ARCH, (len(dims) - 1, FINAL)) == dims[-1] + final


def test_checkpoints_count_the_weights_six_times():
    model = nn.Linear(10, 3)  # 33 float32 parameters
    assert resources.checkpoint_bytes(model) == 6 * 33 * 4


def test_too_little_disk_is_one_line_with_the_folder_the_need_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**12, 10**12 - 10**6, 10**6))
    with pytest.raises(NotEnoughSpace) as e:
        resources.need_disk(tmp_path, 10**9, "The feature cache")
    said = str(e.value)
    assert str(tmp_path) in said and "The feature cache needs about 1,067 MB" in said and "TRANSFERLAB_HOME" in said
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**12, 0, 10**12))
    resources.need_disk(tmp_path, 10**9, "The feature cache")  # enough: no error


def test_views_that_fit_keep_at_least_one_and_never_more_than_wanted(monkeypatch):
    monkeypatch.setattr(resources, "memory_share", lambda what: 4 * 1000 * 100 * 3)  # three views of 1000 x 100
    assert resources.views_that_fit(1000, 100, wanted=8) == 3
    assert resources.views_that_fit(1000, 100, wanted=2) == 2
    assert resources.views_that_fit(10**9, 100, wanted=8) == 1
    assert resources.activations_fit(1000, 3, 400) and not resources.activations_fit(1000, 4, 400)


def test_the_decode_cache_is_capped_by_its_share_and_the_rest_counted_in_full(monkeypatch):
    monkeypatch.setattr(resources, "memory_share", lambda what: 1000)
    ram, disk = resources.plan_bytes(ARCH, 100, 80, views=2, dim=10, params=50, image_bytes=500, fit_bytes=7)
    assert ram == 1000 + 2 * 80 * 10 * 4 + 7
    assert disk == resources.feature_bytes(ARCH, 100) + 6 * 50 * 4  # the checkpoints as the save counts them
