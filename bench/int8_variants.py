"""int8 recipes for one run's model: the one the export ships (engine.serve.quantize) against the usual alternatives,
each file run on the run's test photos (val when it has none) for its accuracy and its agreement with PyTorch.

The question it answers: why a student cut to a parameter budget (its head reading early stages) loses points in
int8, and whether another calibration, or keeping the head or the first layers in fp32, keeps them. By default it
trains auto under `--max-params` on the bundled sample (a fresh TRANSFERLAB_HOME); `--run DIR` measures a finished run.
Calibration is the export's: 128 training photos taken in turn from each class. Latency: batch 1, one thread, median.

Run by hand:  .venv/bin/python bench/int8_variants.py [--data FOLDER] [--max-params 500000] [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-int8-"))

import numpy as np
import torch

from engine.data.decode import load_images
from engine.paths import SAMPLE
from engine.plan.config import TrainConfig
from engine.plan.make import load_data
from engine.plan.trained import load_run_model
from engine.runs.store import Run, RunStore
from engine.serve.export import _photos
from engine.serve.measure import latency, onnx_runner
from engine.serve.quantize import calibration_photos, fixed_graph, quantize_int8
from engine.service.training import train

EARLY = (3, 12)  # the first convolutions kept in fp32 by the "early" variants


def finished_run(args: argparse.Namespace) -> Run:
    """The run to measure: the one given, or auto trained under the parameter budget."""
    if args.run:
        path = Path(args.run).resolve()
        return RunStore(path.parent).open(path.name)
    cfg = TrainConfig.create(data=str(args.data), strategy="auto", max_params=args.max_params)
    run = RunStore(Path(os.environ["TRANSFERLAB_HOME"]) / "runs").create(cfg.to_dict(), "int8")
    train(cfg, run)
    return run


def head_nodes(graph) -> list[str]:
    """The nodes from the pooling of each tap on: pooling, concatenation, standardisation, the linear layer."""
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
    """Every node before the graph's k-th convolution (the first k convolutions and what feeds them)."""
    convs = [i for i, n in enumerate(graph.node) if n.op_type == "Conv"]
    cut = convs[k] if k < len(convs) else len(graph.node)
    return [n.name for n in graph.node[:cut]]


def variants(fixed: Path) -> dict[str, dict]:
    """Name -> the onnxruntime quantize_static arguments that differ from the shipped recipe."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantType

    graph = onnx.load(str(fixed)).graph
    head = head_nodes(graph)
    out = {
        "percentile calibration": {"calibrate_method": CalibrationMethod.Percentile},
        "entropy calibration": {"calibrate_method": CalibrationMethod.Entropy},
        "int8 activations": {"activation_type": QuantType.QInt8},
        "head in fp32": {"nodes_to_exclude": head},
    }
    for k in EARLY:
        out[f"first {k} convs fp32"] = {"nodes_to_exclude": before_conv(graph, k) + head}
    return out


def quantized(fixed: Path, out: Path, photos: list[np.ndarray], **changes) -> None:
    """The shipped recipe (QDQ, per-channel int8 weights, uint8 activations, MinMax) with `changes`."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = list(photos)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return {"image": self.left.pop(0)} if self.left else None

    args = {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "calibrate_method": CalibrationMethod.MinMax,
    }
    quantize_static(str(fixed), str(out), Photos(), **(args | changes))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SAMPLE))
    ap.add_argument("--max-params", type=int, default=500_000)
    ap.add_argument("--run", default=None, help="a finished run's folder (default: train auto under --max-params)")
    args = ap.parse_args()
    run = finished_run(args)
    model, spec, classes = load_run_model(run)
    ds = load_data(TrainConfig.from_dict(run.config))
    split = "test" if ds.test else "val"
    photos, labels = _photos(ds, classes, split)
    x = np.concatenate(
        [spec.normalize(torch.stack(load_images(spec, photos[b : b + 64]))).numpy() for b in range(0, len(photos), 64)]
    )
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy().argmax(1)
    params = sum(p.numel() for p in model.parameters())
    plan = json.loads((run.path / "plan.json").read_text())
    print(f"run {run.id}: {plan['backbone']}, head on {plan['head']['label']}, {params:,} parameters")
    print(f"{len(photos)} {split} photos; {os.cpu_count()} CPU cores")
    print(f"{'file':24} {'accuracy':>8} {'agrees':>7} {'MB':>6} {'1t p50 ms':>10}")
    print(f"{'PyTorch':24} {(ref == labels).mean():8.1%} {1:7.1%}")
    calibration = calibration_photos(*_photos(ds, classes, "train"))
    cal = [spec.normalize(torch.stack(load_images(spec, [p]))).numpy() for p in calibration]
    work = Path(tempfile.mkdtemp(prefix="tl-int8-files-"))
    fixed = work / "fp32.onnx"
    fixed_graph(model, spec, fixed)
    files = {"ONNX fp32": fixed, "shipped (MinMax)": work / "shipped.onnx"}
    quantize_int8(model, spec, files["shipped (MinMax)"], calibration)
    for i, (name, changes) in enumerate(variants(fixed).items()):
        files[name] = work / f"v{i}.onnx"
        quantized(fixed, files[name], cal, **changes)
    for name, path in files.items():
        runner = onnx_runner(name, path)
        pred = np.concatenate([runner.forward(x[i : i + 1]) for i in range(len(x))]).argmax(1)
        ms = latency(runner.with_threads(1), x[:1], 1).p50
        size = path.stat().st_size / 1e6
        acc, agrees = (pred == labels).mean(), (pred == ref).mean()
        print(f"{name:24} {acc:8.1%} {agrees:7.1%} {size:6.2f} {ms:10.1f}", flush=True)


if __name__ == "__main__":
    main()
