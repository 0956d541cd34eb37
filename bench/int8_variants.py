"""int8 recipes for one run's model: the one the export ships (engine.serve.quantize) against the usual alternatives,
each file run on the run's test photos (val when it has none) for its accuracy and its agreement with PyTorch.

The questions it answers: why a student cut to a parameter budget (its head reading early stages) loses points in
int8, and whether another calibration, or keeping the head or the first layers in fp32, keeps them; and why int8 is
not 3x faster than fp32 (the milliseconds a photo spent in dense and in depthwise convolutions, by onnxruntime's
profiler, and the formats and weight types the quantiser offers). By default it trains auto under `--max-params` on
the bundled sample (a fresh TRANSFERLAB_HOME; `--max-params 0` for auto's own model); `--run DIR` measures a finished
run. Calibration is the export's: 128 training photos taken in turn from each class. Latency: batch 1, one thread,
median.

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
from engine.serve.export import labelled_photos
from engine.serve.measure import latency, onnx_runner
from engine.serve.quantize import (
    before_conv,
    calibration_photos,
    fixed_graph,
    head_nodes,
    quantize_graph,
    quantize_int8,
)
from engine.service.training import train

EARLY = (3, 12)  # the first convolutions kept in fp32 by the "early" variants
PROFILE_WARMUP, PROFILE_RUNS = 10, 50  # photos run before and while profiling where the time goes


def finished_run(args: argparse.Namespace) -> Run:
    """The run to measure: the one given, or auto trained under the parameter budget."""
    if args.run:
        path = Path(args.run).resolve()
        return RunStore(path.parent).open(path.name)
    cfg = TrainConfig.create(data=str(args.data), strategy="auto", max_params=args.max_params or None)
    run = RunStore(Path(os.environ["TRANSFERLAB_HOME"]) / "runs").create(cfg.to_dict(), "int8")
    train(cfg, run)
    return run


def variants(fixed: Path) -> dict[str, dict]:
    """Name -> the onnxruntime quantize_static arguments that differ from the shipped recipe."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    graph = onnx.load(str(fixed)).graph
    head = head_nodes(graph)
    out = {
        "percentile calibration": {"calibrate_method": CalibrationMethod.Percentile},
        "entropy calibration": {"calibrate_method": CalibrationMethod.Entropy},
        "int8 activations": {"activation_type": QuantType.QInt8},
        "head in fp32": {"nodes_to_exclude": head},
        "QOperator format": {"quant_format": QuantFormat.QOperator},
        "per-tensor weights": {"per_channel": False},
        "uint8 weights": {"weight_type": QuantType.QUInt8},
    }
    for k in EARLY:
        out[f"first {k} convs fp32"] = {"nodes_to_exclude": before_conv(graph, k) + head}
    depthwise = [n.name for n in graph.node if n.op_type == "Conv" and _group(n) > 1]
    out["depthwise convs fp32"] = {"nodes_to_exclude": depthwise}
    return out


def _group(node) -> int:
    """A convolution's `group` attribute (1 for a dense one; its channel count for a depthwise one)."""
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def conv_ms(path: Path) -> dict[str, float]:
    """Milliseconds a photo (one thread, onnxruntime's profiler, after warm-up) spent in dense and in depthwise
    convolutions: where int8 gains its speed and where it does not."""
    import onnx
    import onnxruntime as ort

    work = Path(tempfile.mkdtemp(prefix="tl-int8-profile-"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.optimized_model_filepath = str(work / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])  # writes the graph that runs
    groups = {n.name: _group(n) for n in onnx.load(str(work / "optimized.onnx")).graph.node}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    image = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in image.shape]  # a dynamic batch axis run at one photo
    x = {image.name: np.zeros(shape, dtype=np.float32)}
    for _ in range(PROFILE_WARMUP):
        sess.run(None, x)
    options.enable_profiling = True
    options.profile_file_prefix = str(work / "profile")
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(PROFILE_RUNS):
        sess.run(None, x)
    events = json.loads(Path(sess.end_profiling()).read_text())
    out = {"dense": 0.0, "depthwise": 0.0}
    for e in events:
        node = e["name"].removesuffix("_kernel_time")
        if e.get("cat") == "Node" and node != e["name"] and "Conv" in e["args"].get("op_name", ""):
            out["depthwise" if groups.get(node, 1) > 1 else "dense"] += e["dur"] / 1e3 / PROFILE_RUNS
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SAMPLE))
    ap.add_argument("--max-params", type=int, default=500_000, help="0: no budget, auto's own model")
    ap.add_argument("--run", default=None, help="a finished run's folder (default: train auto under --max-params)")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        help="variants left out (the histogram calibrations hold every activation of 128 photos: ~20 GB for Lite1)",
    )
    args = ap.parse_args()
    run = finished_run(args)
    model, spec, classes = load_run_model(run)
    ds = load_data(TrainConfig.from_dict(run.config))
    split = "test" if ds.test else "val"
    photos, labels = labelled_photos(ds, classes, split)
    x = np.concatenate(
        [spec.normalize(torch.stack(load_images(spec, photos[b : b + 64]))).numpy() for b in range(0, len(photos), 64)]
    )
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy().argmax(1)
    params = sum(p.numel() for p in model.parameters())
    plan = json.loads((run.path / "plan.json").read_text())
    print(f"run {run.id}: {plan['backbone']}, head on {plan['head']['label']}, {params:,} parameters")
    print(f"{len(photos)} {split} photos; {os.cpu_count()} CPU cores")
    print(f"{'file':24} {'accuracy':>8} {'agrees':>7} {'MB':>6} {'1t p50 ms':>10} {'dense conv':>10} {'depthwise':>10}")
    print(f"{'PyTorch':24} {(ref == labels).mean():8.1%} {1:7.1%}")
    calibration = calibration_photos(*labelled_photos(ds, classes, "train"))
    work = Path(tempfile.mkdtemp(prefix="tl-int8-files-"))
    fixed = work / "fp32.onnx"
    fixed_graph(model, spec, fixed)
    files = {"ONNX fp32": fixed, "shipped (MinMax)": work / "shipped.onnx"}
    quantize_int8(model, spec, files["shipped (MinMax)"], calibration)
    chosen = {k: v for k, v in variants(fixed).items() if k not in args.skip}
    for i, (name, changes) in enumerate(chosen.items()):
        files[name] = work / f"v{i}.onnx"
        quantize_graph(fixed, spec, files[name], calibration, **changes)
    for name, path in files.items():
        runner = onnx_runner(name, path)
        pred = np.concatenate([runner.forward(x[i : i + 1]) for i in range(len(x))]).argmax(1)
        ms = latency(runner.with_threads(1), x[:1], 1).p50
        size = path.stat().st_size / 1e6
        acc, agrees = (pred == labels).mean(), (pred == ref).mean()
        dense, depthwise = conv_ms(path).values()
        print(f"{name:24} {acc:8.1%} {agrees:7.1%} {size:6.2f} {ms:10.1f} {dense:10.1f} {depthwise:10.1f}", flush=True)


if __name__ == "__main__":
    main()
