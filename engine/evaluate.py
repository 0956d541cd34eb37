"""Loading a trained run's model and evaluating it on any labelled folder with the same class names."""
from __future__ import annotations

import numpy as np
import timm
import torch
from safetensors.torch import load_file
from sklearn.metrics import confusion_matrix

from engine.data import load_dataset
from engine.device import autocast, pick_device
from engine.errors import DataError
from engine.features import InputSpec
from engine.groups import layer_groups
from engine.split import StageHeadModel, probe_classifier
from engine.store import Run, RunStore


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Accuracy of each class among its true images; NaN for a class without images."""
    return {c: float((pred[y == i] == i).mean()) if (y == i).any() else float("nan") for i, c in enumerate(classes)}


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Counts of (true class, predicted class), every class a row and a column even when absent."""
    return confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


def load_run_model(run: Run | str) -> tuple[torch.nn.Module, InputSpec, list[str]]:
    """The run's best model (eval mode), its input contract and class names."""
    run = RunStore().open(run) if isinstance(run, str) else run
    plan = run.read_json("plan.json")
    if plan is None or not (run.path / "model.safetensors").exists():
        raise DataError(f"run {run.id} has no finished model (status {run.status().get('state')}); resume it first")
    n_cls = len(plan["classes"])
    spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan["input_spec"].items()})
    model = timm.create_model(run.config["backbone"], pretrained=False, num_classes=n_cls, in_chans=spec.in_chans)
    if plan.get("head_stage") is not None:
        size = spec.input_size[-1]
        model = StageHeadModel(model, layer_groups(model), plan["head_stage"], n_cls,
                               torch.zeros(1, spec.in_chans, size, size))
    probe_classifier(model)
    model.load_state_dict(load_file(str(run.path / "model.safetensors")))
    return model.eval(), spec, plan["classes"]


@torch.inference_mode()
def predict_paths(model: torch.nn.Module, spec: InputSpec, paths: list[str], batch_size: int = 32) -> np.ndarray:
    """Class probabilities for image files, with the eval transform of `spec`."""
    device = pick_device()
    model = model.to(device, memory_format=torch.channels_last).eval()
    out = []
    with autocast(device):
        for b in range(0, len(paths), batch_size):
            x = spec.normalize(torch.stack(spec.load(paths[b:b + batch_size]))
                               .to(device))
            out.append(model(x).float().softmax(-1).cpu())
    return torch.cat(out).numpy()


def evaluate(run: Run | str, data: str) -> dict:
    """Accuracy, per-class accuracy and confusion matrix on `data` (its val split if it has one, else every image).

    Raises:
        DataError: The folder has classes the run was not trained on.
    """
    model, spec, classes = load_run_model(run)
    ds = load_dataset(data, val_fraction=0.0)
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise DataError(f"{data}: classes {', '.join(unknown)} are not among the run's classes ({', '.join(classes)})")
    items = ds.val if ds.val_source == "folder" and ds.val else ds.items
    y = np.array([classes.index(ds.classes[it.label]) for it in items])
    probs = predict_paths(model, spec, [it.path for it in items])
    pred = probs.argmax(1)
    return {"accuracy": float((pred == y).mean()), "n": len(y),
            "per_class": {c: None if np.isnan(a) else a for c, a in per_class_accuracy(y, pred, classes).items()},
            "confusion": confusion(y, pred, len(classes)), "classes": classes}
