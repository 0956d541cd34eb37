"""Loading a run's model (finished, or any run with a best checkpoint) and scoring it on labelled images."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import load_file

from engine.data.dataset import load_dataset
from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.metrics import score
from engine.model.catalogue import build_model
from engine.model.device import pick_device
from engine.model.taps import TapModel
from engine.plan.config import TrainConfig
from engine.plan.make import load_data
from engine.plan.parts import Plan
from engine.model.weights import sha256_file
from engine.runs.result import RunResult
from engine.runs.store import Run, RunStore
from engine.model.predict import predict_logits


def has_model(run: Run) -> bool:
    """Whether the run has a model to use: its final one, or the best checkpoint of a stopped or failed run."""
    return (run.path / "plan.json").exists() and (
        (run.path / "model.safetensors").exists() or (run.path / "best.pt").exists()
    )


def load_run_model(run: Run | str) -> tuple[TapModel, InputSpec, list[str]]:
    """The run's best model (eval mode, on the CPU), its input contract and class names.

    Raises:
        DataError: The run has neither a final model nor a best checkpoint.
    """
    run = RunStore().open(run) if isinstance(run, str) else run
    if not has_model(run):
        raise DataError(
            f"run {run.id} has no model yet (status {run.status().get('state')}); resume it or wait for its first epoch"
        )
    plan = Plan.from_dict(run.read_json("plan.json"))
    classes = (run.read_json("run_info.json") or {}).get("classes") or []
    backbone = build_model(plan.backbone, pretrained=False, in_chans=plan.in_chans, drop_rate=0.0)
    model = TapModel(backbone, plan.head.taps, len(classes), plan.head.flip)
    final = run.path / "model.safetensors"
    state = _checked_weights(run, final) if final.exists() else run.load_checkpoint("best")["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{final}: these weights do not fit run {run.id}'s model ({first}); restore the file") from None
    return model.eval(), plan.input, classes


def _checked_weights(run: Run, final) -> dict:
    """The run's saved weights, once their SHA-256 is the one the run recorded (a run from before it recorded one is
    read as it is).

    Raises:
        DataError: The file was replaced or damaged since the run saved it; the message names it.
    """
    result = RunResult.read(run)
    expected = result.model_sha256 if result is not None else ""
    if expected and sha256_file(final) != expected:
        raise DataError(
            f"{final} is not the model run {run.id} saved (its SHA-256 differs from the one recorded in "
            f"metrics.json): it was replaced or damaged; restore it, or train the run again"
        )
    try:
        return load_file(str(final))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for a damaged file
        raise DataError(f"{final}: not a readable model file ({str(e).splitlines()[0]}); restore it") from None


def predict_paths(model: torch.nn.Module, spec: InputSpec, paths: list[str]) -> np.ndarray:
    """Class probabilities for image files, with the eval transform of `spec`."""
    device = pick_device()
    model = model.to(device, memory_format=torch.channels_last)
    return predict_logits(model, spec, paths, device).softmax(-1).numpy()


@dataclass(frozen=True)
class Evaluation:
    """A run's model scored on labelled photos.

    Attributes:
        accuracy: Share of the photos classified right.
        interval: Its 95% Wilson interval.
        n: Photos scored.
        per_class: Each class's accuracy (None where it has no photo).
        confusion: Counts, rows the true class, columns the predicted one, in `classes` order.
        classes: The run's classes, in output order.
    """

    accuracy: float
    interval: tuple[float, float]
    n: int
    per_class: dict[str, float | None]
    confusion: list[list[int]]
    classes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(run: Run | str, data: str | None = None, split: str | None = None) -> Evaluation:
    """Accuracy (with its 95% interval), per-class accuracy and confusion matrix.

    Args:
        data: A labelled folder (its val split when it has one, else every image).
        split: Instead of `data`: "test" or "val", the run's own split of its own data.

    Raises:
        DataError: The images have classes the run was not trained on, or the run's data has no such split.
    """
    run = RunStore().open(run) if isinstance(run, str) else run
    model, spec, classes = load_run_model(run)
    if split is not None:
        ds = load_data(TrainConfig.from_dict(run.config))
        items = ds.split(split)
        if not items:
            raise DataError(f"run {run.id}: its data has no {split} split ({ds.test_source})")
    else:
        ds = load_dataset(data, val_fraction=0.0, test_fraction=0.0)
        items = ds.val if ds.val_source == "folder" and ds.val else ds.items
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise DataError(
            f"{data or run.id}: classes {', '.join(unknown)} are not among the run's classes ({', '.join(classes)})"
        )
    y = np.array([classes.index(ds.classes[it.label]) for it in items])
    pred = predict_paths(model, spec, [it.path for it in items]).argmax(1)
    s = score(y, pred, classes)
    return Evaluation(s["accuracy"], tuple(s["interval"]), s["n"], s["per_class"], s["confusion"], classes)
