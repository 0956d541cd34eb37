"""int8: static post-training quantisation with onnxruntime's quantiser.

The model is exported for one photo at a time with every shape fixed, and onnxruntime's basic graph optimisation
folds what the shapes decide (a TensorFlow-style "same" padding is computed from the photo's size at run time in the
dynamic graph; quantised, that arithmetic gives wrong pads and a misaligned network). Weights are then quantised per
output channel (int8, symmetric), activations per tensor (uint8), with ranges calibrated on the run's training photos.
The graph takes the photo already normalised, like the fp32 file: the preprocessing stays outside the quantised graph,
so the model card's recipe is applied once, the same for both files.

Chosen on val (the accuracy-controlled idea of NNCF, in two steps): the shipped recipe first; when its file loses more
val accuracy than the target allows, the same recipe with the first convolutions (the most sensitive to rounding: they
see the raw photo) and the head kept in fp32 (`RECIPES`); the first within the allowance is kept, else the one that
lost least. Test is read only after, by the export's measurements.

Speed: onnxruntime runs the dense convolutions about 2x faster in int8 on a CPU with VNNI, its depthwise ones no
faster than fp32, so an EfficientNet-Lite file is 2.2-2.5x faster, not 3x (bench/int8_variants.py profiles both).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from engine.data.decode import load_images
from engine.data.spec import InputSpec

CALIBRATION_PHOTOS = 128  # training photos the activation ranges are fitted on, spread over the classes
EARLY_CONVS = 3  # the convolutions the fallback recipe keeps in fp32, with the head
RECIPES = ("the shipped recipe", f"the first {EARLY_CONVS} convolutions and the head kept in fp32")  # tried in turn


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


class _PreProcessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _without_pre_process_advice() -> Iterator[None]:
    """onnxruntime's quantiser logs, on the root logger, to run its pre-processing first: shape inference and the
    basic graph optimisation, which `fixed_graph` has done. The advice is dropped; any other message passes."""
    advice = _PreProcessAdvice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)


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

    with _without_pre_process_advice():
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


def head_nodes(graph) -> list[str]:
    """The nodes of an ONNX graph from the pooling of each tap on: pooling, concatenation, standardisation, the linear
    layer."""
    pools = [n for n in graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    names, frontier = {n.name for n in pools}, [o for n in pools for o in n.output]
    while frontier:
        tensor = frontier.pop()
        for n in graph.node:
            if tensor in n.input and n.name not in names:
                names.add(n.name)
                frontier.extend(n.output)
    return sorted(names)


def before_conv(graph, k: int) -> list[str]:
    """Every node of an ONNX graph before its k-th convolution (the first k convolutions and what feeds them)."""
    convs = [i for i, n in enumerate(graph.node) if n.op_type == "Conv"]
    cut = convs[k] if k < len(convs) else len(graph.node)
    return [n.name for n in graph.node[:cut]]


def recipe_changes(name: str, fixed: Path) -> dict[str, Any]:
    """The `quantize_graph` changes of recipe `name` (one of `RECIPES`) for the fixed-shape graph `fixed`."""
    if name == RECIPES[0]:
        return {}
    import onnx

    graph = onnx.load(str(fixed)).graph
    return {"nodes_to_exclude": before_conv(graph, EARLY_CONVS) + head_nodes(graph)}


@dataclass(frozen=True)
class Int8Choice:
    """The int8 recipe kept, chosen on val.

    Attributes:
        recipe: The recipe of the file written (one of `RECIPES`).
        val_drops: Each recipe tried, in order -> val accuracy it lost against PyTorch, in points.
        n_val: Val photos it was chosen on.
        max_drop: The points the target allows.
    """

    recipe: str
    val_drops: dict[str, float]
    n_val: int
    max_drop: float

    def sentence(self) -> str:
        """The recipe kept and why, in words."""
        tried = "; ".join(f"{name} lost {drop:.1f}" for name, drop in self.val_drops.items())
        within = self.val_drops[self.recipe] <= self.max_drop
        why = "the first within" if within else "none within; the least lost"
        return (
            f"int8 recipe chosen on {self.n_val} val photos: {self.recipe} ({tried} points of val accuracy; "
            f"{self.max_drop:g} allowed: {why})."
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "sentence": self.sentence()}


# PLR0913: the model, its contract, the file, its calibration, and the val check with its allowance
def quantize_on_val(  # noqa: PLR0913
    model: torch.nn.Module,
    spec: InputSpec,
    out: Path,
    photos: list[str],
    val_drop: Callable[[Path], float],
    n_val: int,
    max_drop: float,
) -> Int8Choice:
    """Writes the int8 model of `model` to `out` by the first of `RECIPES` whose file loses at most `max_drop` points
    of val accuracy (`val_drop(file)`, measured on `n_val` val photos), else by the one that lost least."""
    fixed = out.with_name(f".{out.stem}.fixed.onnx")
    files: dict[str, Path] = {}
    drops: dict[str, float] = {}
    try:
        fixed_graph(model, spec, fixed)
        for i, name in enumerate(RECIPES):
            files[name] = out.with_name(f".{out.stem}.recipe{i}.onnx")
            quantize_graph(fixed, spec, files[name], photos, **recipe_changes(name, fixed))
            drops[name] = val_drop(files[name])
            if drops[name] <= max_drop:
                break
        kept = next((n for n, d in drops.items() if d <= max_drop), min(drops, key=drops.get))
        files[kept].replace(out)
    finally:
        fixed.unlink(missing_ok=True)
        for path in files.values():
            path.unlink(missing_ok=True)
    return Int8Choice(kept, drops, n_val, max_drop)
