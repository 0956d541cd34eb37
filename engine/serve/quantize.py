"""int8: static post-training quantisation with onnxruntime's quantiser.

The model is exported for one photo at a time with every shape fixed, and onnxruntime's basic graph optimisation
folds what the shapes decide (a TensorFlow-style "same" padding is computed from the photo's size at run time in the
dynamic graph; quantised, that arithmetic gives wrong pads and a misaligned network). Weights are then quantised per
output channel (int8, symmetric), activations per tensor (uint8), with ranges calibrated on the run's training photos.
The graph takes the photo already normalised, like the fp32 file: the preprocessing stays outside the quantised graph,
so the model card's recipe is applied once, the same for both files.

Speed: onnxruntime runs the dense convolutions about 2x faster in int8 on a CPU with VNNI, its depthwise ones no
faster than fp32, so an EfficientNet-Lite file is 2.2-2.5x faster, not 3x (bench/int8_variants.py profiles both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.decode import load_images
from engine.data.spec import InputSpec

CALIBRATION_PHOTOS = 128  # training photos the activation ranges are fitted on, spread over the classes


def calibration_photos(paths: list[str], labels: list[int], n: int = CALIBRATION_PHOTOS) -> list[str]:
    """Up to `n` photos taken in turn from each class (in path order within a class), so every class is seen."""
    by_class: dict[int, list[str]] = {}
    for path, label in sorted(zip(paths, labels)):
        by_class.setdefault(label, []).append(path)
    chosen: list[str] = []
    queues = [list(reversed(v)) for _, v in sorted(by_class.items())]
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop())
    return chosen


def fixed_graph(model: torch.nn.Module, spec: InputSpec, out: Path) -> None:
    """Writes `model` to `out` as ONNX for one photo of the spec's size, its shape arithmetic folded into constants."""
    import onnxruntime as ort

    size = spec.input_size[-1]
    traced = out.with_name(f".{out.stem}.traced.onnx")
    try:
        with torch.no_grad():
            torch.onnx.export(
                model,
                (torch.zeros(1, spec.in_chans, size, size),),
                str(traced),
                input_names=["image"],
                output_names=["logits"],
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # folding, no CPU-only fusions
        options.optimized_model_filepath = str(out)
        ort.InferenceSession(str(traced), options, providers=["CPUExecutionProvider"])
    finally:
        traced.unlink(missing_ok=True)


def recipe(**changes: Any) -> dict[str, Any]:
    """The shipped `quantize_static` arguments (QDQ, per-channel int8 weights, uint8 activations, MinMax ranges), with
    `changes` on top (what bench/int8_variants.py compares the shipped recipe against)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    shipped = {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "calibrate_method": CalibrationMethod.MinMax,
    }
    return shipped | changes


def quantize_graph(fixed: Path, spec: InputSpec, out: Path, photos: list[str], **changes: Any) -> None:
    """Writes the int8 model of the fixed-shape ONNX graph `fixed` (see `fixed_graph`) to `out`, calibrated on
    `photos` prepared as the model card says, quantised by `recipe(**changes)`."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = list(photos)

        def get_next(self) -> dict[str, np.ndarray] | None:
            if not self.left:
                return None
            x = spec.normalize(torch.stack(load_images(spec, [self.left.pop(0)])))
            return {"image": x.contiguous().numpy()}

    quantize_static(str(fixed), str(out), Photos(), **recipe(**changes))


def quantize_int8(model: torch.nn.Module, spec: InputSpec, out: Path, photos: list[str]) -> None:
    """Writes the int8 ONNX model of `model` to `out` (one photo a call) by the shipped recipe, calibrated on
    `photos`."""
    fixed = out.with_name(f".{out.stem}.fixed.onnx")
    try:
        fixed_graph(model, spec, fixed)
        quantize_graph(fixed, spec, out, photos)
    finally:
        fixed.unlink(missing_ok=True)
