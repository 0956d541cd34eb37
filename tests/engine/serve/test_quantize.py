"""engine.serve.quantize: the calibration photos, the shipped recipe, and an int8 file that answers as fp32 does."""

import logging

import numpy as np
import onnx
import pytest
import torch
from onnxruntime.quantization import CalibrationMethod, QuantFormat
from PIL import Image
from torch import nn

from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.serve.measure import onnx_runner
from engine.serve.quantize import RECIPES, calibration_photos, quantize_int8, quantize_on_val, recipe

SPEC = InputSpec((3, 32, 32), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_calibration_takes_photos_in_turn_from_each_class():
    paths = [f"a{i}" for i in range(5)] + ["b0", "b1"] + [f"c{i}" for i in range(4)]
    labels = [0] * 5 + [1] * 2 + [2] * 4
    assert calibration_photos(paths, labels, n=7) == ["a0", "b0", "c0", "a1", "b1", "c1", "a2"]
    assert sorted(calibration_photos(paths, labels, n=100)) == sorted(paths)


def test_the_recipe_is_per_channel_qdq_minmax_and_changes_go_on_top():
    shipped = recipe()
    assert shipped["quant_format"] == QuantFormat.QDQ and shipped["per_channel"]
    assert shipped["calibrate_method"] == CalibrationMethod.MinMax
    changed = recipe(calibrate_method=CalibrationMethod.Percentile)
    assert changed["calibrate_method"] == CalibrationMethod.Percentile and changed["per_channel"]


def _small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    ).eval()


def _photos(folder, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_an_int8_file_of_a_small_network_answers_as_the_fp32_model(tmp_path, caplog):
    model, paths = _small_network(), _photos(tmp_path, 24)
    out = tmp_path / "model.int8.onnx"
    with caplog.at_level(logging.WARNING):
        quantize_int8(model, SPEC, out, paths[:16])
        logging.warning("another warning")
    assert [r.getMessage() for r in caplog.records] == ["another warning"]  # the quantiser's advice done already
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert not list(tmp_path.glob(".*.onnx"))  # the fixed-shape graph it went through is removed
    x = SPEC.normalize(torch.stack(load_images(SPEC, paths))).numpy()
    with torch.no_grad():
        fp32 = model(torch.from_numpy(x)).numpy()
    int8 = onnx_runner("ONNX int8", out).forward(x)
    assert np.abs(int8 - fp32).max() < 0.05 * np.abs(fp32).max()  # 1% here; a doubled normalisation is far off


def _conv_weights_in_fp32(path) -> list[bool]:
    """Per convolution, in graph order: is its weight a float initializer (not read through DequantizeLinear)?"""
    graph = onnx.load(str(path)).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return [n.input[1] in floats for n in graph.node if n.op_type == "Conv"]


@pytest.mark.parametrize(
    ("drops", "kept", "tried"),
    [([0.2], RECIPES[0], 1), ([3.0, 0.5], RECIPES[1], 2), ([3.0, 4.0], RECIPES[0], 2)],
)
def test_the_recipe_is_chosen_on_val_the_first_within_the_allowance_else_the_least_lost(tmp_path, drops, kept, tried):
    model, paths = _small_network(), _photos(tmp_path, 16)
    left = list(drops)
    out = tmp_path / "model.int8.onnx"
    choice = quantize_on_val(model, SPEC, out, paths, lambda path: left.pop(0), n_val=40, max_drop=1.0)
    assert choice.recipe == kept and len(choice.val_drops) == tried and choice.n_val == 40
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["model.int8.onnx"]  # the others removed
    assert not list(tmp_path.glob(".*"))
    fp32_convs = _conv_weights_in_fp32(out)
    assert fp32_convs == ([True, True] if kept == RECIPES[1] else [False, False])  # both convs are in the first 3
    assert f"int8 recipe chosen on 40 val photos: {kept}" in choice.sentence()
