"""How a run ended and what it scored, typed: the record a run writes as `metrics.json` and every reader reads back
(the dashboard's pages, the CLI, the model card, the comparison), one field per key.

The val split chose the epoch ("chosen on"); the test split was scored once, at the end, and never chose anything.
A run that stopped before its end has its status, its best val score so far and no test figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.runs.store import Run


@dataclass(frozen=True)
class RunResult:
    """The run's final record. `best_epoch` 0 is the starting model (the probe's head); -1, none validated."""

    status: str = ""  # finished, cancelled or failed
    error: str = ""  # why it failed, in one line
    seconds: float = 0.0
    run_id: str = ""
    run_dir: str = ""
    best_epoch: int = -1
    best_val_acc: float = 0.0
    chosen_on: str = "val"
    probe_accuracy: float | None = None  # the plan's: the final-feature probe on val
    head_accuracy: float | None = None  # the plan's: the head the run starts from, on val
    start_val_accuracy: float | None = None  # the run's epoch 0: that head on val as the run scores every epoch
    classes: list[str] = field(default_factory=list)
    # the val split, as the chosen model scores it
    val_interval: list[float] | None = None  # 95% Wilson interval of best_val_acc
    val_loss: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    val_paths: list[str] = field(default_factory=list)
    val_labels: list[int] = field(default_factory=list)
    val_pred: list[int] = field(default_factory=list)
    val_conf: list[float] = field(default_factory=list)  # the predicted class's probability
    # the test split, scored once
    test_source: str = ""  # where the test photos came from (a test/ folder, or carved from the training photos)
    test_accuracy: float | None = None
    test_interval: list[float] | None = None
    test_n: int = 0
    test_per_class: dict[str, float] = field(default_factory=dict)
    test_confusion: list[list[int]] = field(default_factory=list)
    test_paths: list[str] = field(default_factory=list)
    test_labels: list[int] = field(default_factory=list)
    test_pred: list[int] = field(default_factory=list)
    test_conf: list[float] = field(default_factory=list)
    start_test_accuracy: float | None = None  # the starting head on test: the probe-vs-fine-tune gap's other side
    start_test_interval: list[float] | None = None
    cv_estimate: float | None = None  # without a test split: the probe head's cross-validated accuracy, when it won
    model_sha256: str = ""  # of model.safetensors as the run saved it
    # how far to trust an answer (engine.calibration): the temperature fitted on val, ECE before and after it
    temperature: float = 1.0
    ece_val_before: float | None = None
    ece_val: float | None = None
    ece_test_before: float | None = None
    ece_test: float | None = None
    reliability_val: list[dict] = field(default_factory=list)
    reliability_test: list[dict] = field(default_factory=list)
    unsure: dict = field(default_factory=dict)  # {"threshold", "coverage", "accuracy"} on val
    unsure_test: dict = field(default_factory=dict)  # {"coverage", "accuracy"} of that threshold on test
    # photos from where the model will be used (labelled, never adapted to), scored once
    target_test_accuracy: float | None = None
    target_test_interval: list[float] | None = None
    target_test_n: int = 0
    start_target_test_accuracy: float | None = None  # the starting head, no adaptation: the gain's other side
    target_reverse: dict | None = None  # the chosen model against its start by reverse validation (reverse_check)
    start_target_test_interval: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `metrics.json` record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunResult:
        """The result a `metrics.json` record holds (keys a later or earlier version wrote and this one does not
        know are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    @classmethod
    def read(cls, run: Run) -> RunResult | None:
        """The run's result; None while it has none (queued, or still training)."""
        record = run.read_json("metrics.json")
        return None if record is None else cls.from_dict(record)

    @property
    def scored_split(self) -> str:
        """The split whose photos the result's per-photo predictions are from: test when scored, else val."""
        return "test" if self.test_pred else "val"

    def predictions(self) -> tuple[list[str], list[int], list[int], list[float]]:
        """(paths, true labels, predicted labels, confidences) of the scored split's photos."""
        if self.scored_split == "test":
            return self.test_paths, self.test_labels, self.test_pred, self.test_conf
        return self.val_paths, self.val_labels, self.val_pred, self.val_conf

    def class_scores(self) -> tuple[dict[str, float], list[list[int]]]:
        """(per-class accuracy, confusion matrix) of the scored split."""
        if self.scored_split == "test":
            return self.test_per_class, self.test_confusion
        return self.per_class, self.confusion
