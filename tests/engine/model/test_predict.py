"""engine.model.predict: the one prediction routine and the eval mode it runs in."""

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.data.spec import InputSpec
from engine.model.device import image_batches
from engine.model.predict import evaluating, predict_logits

SPEC = InputSpec((3, 32, 32), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def test_evaluating_restores_each_submodule_mode_and_keeps_running_statistics():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    model.train()
    model[3].eval()  # a frozen group's BatchNorm
    before = model[1].running_mean.clone()
    with evaluating(model), torch.no_grad():
        assert not any(m.training for m in model.modules())
        model(torch.randn(8, 4) + 5)
    assert torch.equal(model[1].running_mean, before)  # val photos did not move the statistics
    assert [m.training for m in model] == [True, True, True, False] and model.training


def test_evaluating_restores_the_modes_when_the_body_raises():
    model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2))
    model.train()
    try:
        with evaluating(model):
            raise RuntimeError("cancelled")
    except RuntimeError:
        pass
    assert all(m.training for m in model.modules())


def test_predict_logits_scores_in_eval_mode_and_leaves_a_frozen_batchnorm_frozen(tmp_path):
    paths = []
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(pixels).save(paths[-1])
    model = _model().train()
    model[1].eval()  # frozen with its running statistics, as BaseFinetuning-style freezing leaves it
    before = model[1].running_mean.clone()
    got = predict_logits(model, SPEC, paths, torch.device("cpu"))
    assert torch.equal(got, predict_logits(model, SPEC, paths, torch.device("cpu")))  # no dropout
    assert torch.equal(model[1].running_mean, before)
    assert model.training and not model[1].training
    assert got.shape == (3, 3)


def test_predictions_are_float32_whatever_autocast_the_device_would_run(tmp_path, monkeypatch):
    """Every exported file runs in float32, so the accuracy a run reports is the float32 model's, even where training
    runs under bf16 autocast (here forced, whatever this CPU executes)."""
    import engine.model.device as device_module

    monkeypatch.setattr(device_module, "autocast_dtype", lambda device: torch.bfloat16)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    model = _model().eval()
    logits = predict_logits(model, SPEC, paths, torch.device("cpu"))
    with torch.no_grad(), device_module.autocast(torch.device("cpu")):  # under the autocast training would use
        x = next(image_batches(SPEC, paths, torch.device("cpu")))[1]
        assert model(x).dtype == torch.bfloat16  # the forced autocast is in force
        logits_under = predict_logits(model, SPEC, paths, torch.device("cpu"))
    exact = model(x)
    assert logits.dtype == torch.float32 and torch.allclose(logits, exact, atol=1e-6)
    assert torch.allclose(logits_under, exact, atol=1e-6)
