"""Export and prediction: TorchScript, ONNX (checked against PyTorch) and safetensors, with a model card.

The model card is the input contract: class names, input size, interpolation, crop fraction, mean/std, backbone,
weight source and hash, metrics and the config that produced the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from engine.paths import usual_mode

from engine.calibration import Unsure
from engine.data.drift import drift_warnings
from engine.data.imageio import MODES, load_image
from engine.data.decode import load_images
from engine.data.spec import to_tensor
from engine.plan.stored import read_plan
from engine.runs.result import RunResult
from engine.runs.store import Run
from engine.text import literal
from engine.serve.evaluate import load_run_model
from engine.serve.summary import test_phrase

EXPORT_FORMATS = ("torchscript", "onnx", "safetensors")
DEFAULT_EXPORT = ("onnx", "safetensors")  # what the dashboard offers first: no PyTorch needed to run them


@dataclass(frozen=True)
class Prediction:
    """One photo's answer.

    Attributes:
        top: (class, calibrated probability) of the likeliest classes, the likeliest first.
        unsure: The top probability is below the threshold chosen on val.
        threshold: That threshold (0 when the run chose none).
        unsure_sentence: Why to doubt it, in words ("" when sure).
        warnings: How far the photo is from the training photos (size, colour), in words.
    """

    top: list[tuple[str, float]]
    unsure: bool
    threshold: float
    unsure_sentence: str
    warnings: list[str]


def predict_image(run: Run, data: bytes | str | Path, k: int = 5) -> Prediction:
    """Top-k classes with their calibrated probabilities for one photo, whether the run would call it unsure (its top
    probability below the threshold chosen on val), and drift warnings."""
    model, spec, classes = load_run_model(run)
    img = load_image(data, spec.in_chans)
    x = spec.normalize(to_tensor(img, spec.geometry())[None])
    with torch.inference_mode():
        probs = model(x).float().softmax(-1)[0]
    top = probs.topk(min(k, len(classes)))
    result = RunResult.read(run)
    threshold = (result.unsure or {}).get("threshold", 0.0) if result is not None else 0.0
    ranked = [(classes[i], float(p)) for p, i in zip(top.values, top.indices)]
    unsure = bool(ranked and ranked[0][1] < threshold)
    guesses = ", ".join(f"{literal(c)} {p:.0%}" for c, p in ranked[:2])
    return Prediction(
        top=ranked,
        unsure=unsure,
        threshold=threshold,
        unsure_sentence=f"Unsure: top guesses {guesses}. Below {threshold:.0%} confidence this model is often "
        f"wrong (the threshold was chosen on the validation photos)."
        if unsure
        else "",
        warnings=drift_warnings(img, spec, run.read_json("data_stats.json")),
    )


def model_card(run: Run) -> dict:
    plan, result = read_plan(run.path), RunResult.read(run)
    info = run.read_json("run_info.json") or {}
    spec = plan.input.to_dict() if plan else {}
    return {
        "format": "transferlab-model-card/1",
        "run_id": run.id,
        "backbone": plan.backbone if plan else None,
        "classes": info.get("classes"),
        "input_size": spec.get("input_size"),
        "interpolation": spec.get("interpolation"),
        "crop_pct": spec.get("crop_pct"),
        "mean": spec.get("mean"),
        "std": spec.get("std"),
        "weights": {k: v for k, v in (info.get("weights") or {}).items() if k != "path"},
        "metrics": {
            k: None if result is None else getattr(result, k)
            for k in (
                "best_val_acc",
                "best_epoch",
                "per_class",
                "probe_accuracy",
                "test_accuracy",
                "test_interval",
                "test_n",
                "cv_estimate",
                "temperature",
                "ece_val",
                "ece_test",
                "unsure",
            )
        },
        "status": (result and result.status) or run.status().get("state"),
        "strategy": plan.strategy if plan else None,
        "taps": list(plan.head.taps) if plan else None,
        "flip_tta": plan.head.flip if plan else None,
        "config": {k: v for k, v in run.config.items() if k != "data"},  # the data section holds server paths
        "in_chans": (spec.get("input_size") or [3])[0],
        "preprocessing": f"{MODES.get((spec.get('input_size') or [3])[0], '(H, W, C) .npy array')} channels; "
        "resize the short side to input_size / crop_pct, centre-crop input_size, "
        "scale to [0, 1], subtract mean, divide by std; NCHW float32",
    }


def _trust_line(m: dict) -> str:
    """The model card's calibration line: the temperature the exports carry and what the unsure threshold means."""
    unsure = m.get("unsure") or {}
    if not unsure:
        return "- **Confidence:** not calibrated (a run from before calibration)."
    ece_text = f"; calibration error (ECE) {m['ece_val']:.3f} on val" if m.get("ece_val") is not None else ""
    return (
        f"- **Confidence:** probabilities are calibrated (temperature {m['temperature']:.2f}, in the exported models"
        f"{ece_text}). Unsure threshold {unsure['threshold']:.2f}: on val, {Unsure(**unsure).sentence()} (look "
        f"at its top guesses)."
    )


def model_card_markdown(run: Run) -> str:
    """The model card as readable Markdown: the input contract, classes, weights and the honest accuracy. It names no
    folder of this server."""
    card = model_card(run)
    m = card["metrics"]
    w = card.get("weights") or {}
    test = test_phrase(RunResult.from_dict({**m, "status": card["status"]}), read_plan(run.path))
    classes = card.get("classes") or []
    return "\n".join(
        [
            f"### Model card · run {card['run_id']}",
            f"- **Accuracy:** {test}; {m['best_val_acc']:.1%} on the validation photos it was chosen on."
            if m.get("best_val_acc") is not None
            else f"- **Accuracy:** {test}.",
            f"- **Backbone:** {card['backbone']} ({card['strategy']}); weights: {w.get('source', '?')}, "
            f"sha256 `{(w.get('sha256') or '')[:16]}`",
            f"- **Input:** {card['in_chans']} channel(s), {card['input_size'][-1]}×{card['input_size'][-1]} px; "
            f"{card['preprocessing']}",
            f"- **Resampling:** {card['interpolation']}; crop fraction {card['crop_pct']}; mean {card['mean']}; "
            f"std {card['std']}",
            _trust_line(m),
            f"- **Classes ({len(classes)}), in output order:** "
            + ", ".join(f"{i} {literal(c)}" for i, c in enumerate(classes)),
        ]
    )


CHECKED_FORMATS = {"torchscript": "TorchScript", "onnx": "ONNX"}  # the files run against PyTorch after export


def _check_batches(run: Run, spec, example: torch.Tensor, check_images: int) -> tuple[list[torch.Tensor], int]:
    """The inputs every exported file is checked on: up to `check_images` of the run's val photos as the model reads
    them (random inputs when the photos are gone), in batches; and how many photos that is."""
    photos = [
        p for p in ((run.read_json("metrics.json") or {}).get("val_paths") or [])[:check_images] if Path(p).exists()
    ]
    batches = [
        spec.normalize(torch.stack(load_images(spec, photos[b : b + 32]))).contiguous()
        for b in range(0, len(photos), 32)
    ]
    return batches or [example], len(photos) or len(example)


def _agreement(name: str, ref: np.ndarray, got: np.ndarray, n: int) -> dict:
    """The check line of one exported file against PyTorch on the same inputs."""
    return {
        f"{name}_images": n,
        f"{name}_max_abs_diff": float(np.abs(ref - got).max()),
        f"{name}_same_top1": bool((ref.argmax(1) == got.argmax(1)).all()),
        f"{name}_top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }


def export_run(
    run: Run, out_dir: str | Path | None = None, formats: tuple[str, ...] = EXPORT_FORMATS, check_images: int = 300
) -> dict:
    """Writes the chosen formats and model_card.json.

    TorchScript (loaded back) and ONNX (with onnxruntime) are each run on up to `check_images` of the run's validation
    photos (random inputs when the photos are gone) and their outputs and top-1 compared with PyTorch's on the same
    inputs: one check line per file.
    """
    model, spec, classes = load_run_model(run)
    out = Path(out_dir or run.path / "export")
    out.mkdir(parents=True, exist_ok=True)
    size = spec.input_size[-1]
    example = torch.randn(2, spec.in_chans, size, size, generator=torch.Generator().manual_seed(0))
    files, checks = {}, {}
    if "safetensors" in formats:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        usual_mode(out / "model.safetensors")
        files["safetensors"] = str(out / "model.safetensors")
    batches, n = _check_batches(run, spec, example, check_images) if {"torchscript", "onnx"} & set(formats) else ([], 0)
    with torch.no_grad():
        ref = np.concatenate([model(x).numpy() for x in batches]) if batches else None
    if "torchscript" in formats:
        with torch.no_grad():
            torch.jit.trace(model, example).save(str(out / "model.torchscript.pt"))
            loaded = torch.jit.load(str(out / "model.torchscript.pt"))
            got = np.concatenate([loaded(x).numpy() for x in batches])
        checks.update(_agreement("torchscript", ref, got, n))
        files["torchscript"] = str(out / "model.torchscript.pt")
    if "onnx" in formats:
        import onnxruntime as ort

        path = out / "model.onnx"
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(None, {"image": x.numpy()})[0] for x in batches])
        checks.update(_agreement("onnx", ref, got, n))
        files["onnx"] = str(path)
    card = {**model_card(run), "files": {k: Path(v).name for k, v in files.items()}, "checks": checks}
    (out / "model_card.json").write_text(json.dumps(card, indent=2, default=float))
    return {"dir": str(out), "files": files, "checks": checks, "card": card}
