"""Loading a run's model (finished, or any run with a best checkpoint) and scoring it on labelled images."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.data.dataset import load_dataset
from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.metrics import score
from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.make import load_data
from engine.plan.trained import load_run_model
from engine.runs.store import Run, RunStore
from engine.model.predict import predict_logits


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
