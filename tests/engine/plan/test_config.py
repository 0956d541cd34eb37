"""TrainConfig: sections, flat names, versioned storage, unknown keys refused, version 1 runs migrated."""

from __future__ import annotations

import pytest

from engine.plan.config import CONFIG_VERSION, ConfigError, TrainConfig


def test_flat_names_build_sections_and_round_trip():
    cfg = TrainConfig.create(data="/d", data_root="/r", strategy="top-k", lr=1e-3, mixup=0.2, seed=3)
    assert (cfg.data.path, cfg.data.root, cfg.optim.strategy, cfg.optim.lr) == ("/d", "/r", "top-k", 1e-3)
    assert (cfg.regularisation.mixup, cfg.runtime.seed) == (0.2, 3)
    assert TrainConfig.create(**cfg.flat()) == cfg
    stored = cfg.to_dict()
    assert stored["version"] == CONFIG_VERSION and stored["data"]["path"] == "/d"
    assert TrainConfig.from_dict(stored) == cfg
    assert cfg.with_(strategy="full").optim.strategy == "full" and cfg.optim.strategy == "top-k"


def test_unknown_keys_are_refused_with_their_names():
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.create(data="/d", learning_rate=0.1)
    stored = TrainConfig.create(data="/d").to_dict()
    with pytest.raises(ConfigError, match="colour"):
        TrainConfig.from_dict({**stored, "colour": "red"})
    with pytest.raises(ConfigError, match="optim: lr_typo"):
        TrainConfig.from_dict({**stored, "optim": {**stored["optim"], "lr_typo": 1}})
    with pytest.raises(ConfigError, match="newer TransferLab"):
        TrainConfig.from_dict({**stored, "version": CONFIG_VERSION + 1})


def test_a_version_1_flat_config_of_an_old_run_is_migrated():
    old = {
        "data": "/d",
        "val": None,
        "backbone": "tf_efficientnet_lite0",
        "strategy": "full",
        "lr": 0.01,
        "views": 2,
        "data_root": "/r",
        "mean": None,
        "std": None,
        "eval_mode": "auto",
        "bn_eval_unfrozen": True,
        "freeze": [True, False],
    }
    cfg = TrainConfig.from_dict(old)
    assert (cfg.data.path, cfg.data.root, cfg.optim.strategy, cfg.optim.lr, cfg.runtime.views) == (
        "/d",
        "/r",
        "full",
        0.01,
        2,
    )
    assert cfg.optim.freeze == (True, False)


def test_values_are_checked_where_they_live():
    with pytest.raises(ConfigError, match="strategy 'fast'"):
        TrainConfig.create(data="/d", strategy="fast")
    with pytest.raises(ConfigError, match="batch_size 1"):
        TrainConfig.create(data="/d", batch_size=1)
    with pytest.raises(ConfigError, match="balance"):
        TrainConfig.create(data="/d", balance="oversample")
