"""The end of a run: the best model on val is restored, scored on val and, once, on the test split, and saved."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.metrics import score
from engine.plan.rules import FIXED_S
from engine.train.callbacks import scoring_seconds
from engine.train.paths import predict_logits

if TYPE_CHECKING:
    from engine.train.loop import Trainer


def final_metrics(learn: "Trainer") -> dict:
    """Restores the best checkpoint, scores it (val: "chosen on"; test: once, never used to choose) and saves it as
    `model.safetensors`. Each scoring is a named step with its progress."""
    best = learn.run.load_checkpoint("best")
    if best is not None:
        learn.model.load_state_dict(best["model"])
    learn.model.eval()
    val_paths, test = [it.path for it in learn.ds.val], learn.ds.test
    val_logits = learn.best_logits  # the best epoch was validated through the images: the same logits as scoring
    learn.report.expect(scoring_seconds(learn) + FIXED_S)
    if val_logits is None:
        learn.report("score the chosen model on val", 0.0)
        val_logits = predict_logits(learn.model, learn.spec, val_paths, learn.device, check_cancel=learn.check_cancel,
                                    progress=lambda f: learn.report("score the chosen model on val", f))
    yva = learn.yva.numpy()
    val = score(yva, val_logits.argmax(1).numpy(), learn.classes)
    metrics = {"best_val_acc": val["accuracy"], "chosen_on": "val", "val_interval": val["interval"],
               "per_class": val["per_class"], "confusion": val["confusion"], "val_paths": val_paths,
               "val_pred": val_logits.argmax(1).tolist(), "val_labels": yva.tolist(),
               "val_conf": val_logits.softmax(1).max(1).values.tolist(), "classes": learn.classes,
               "val_loss": float(F.cross_entropy(val_logits, learn.yva)), "test_source": learn.ds.test_source}
    if test:
        learn.report("score the test split", 0.0)
        y = np.array([it.label for it in test])
        logits = predict_logits(learn.model, learn.spec, [it.path for it in test], learn.device,
                                check_cancel=learn.check_cancel,
                                progress=lambda f: learn.report("score the test split", f))
        t = score(y, logits.argmax(1).numpy(), learn.classes)
        metrics.update(test_accuracy=t["accuracy"], test_interval=t["interval"], test_n=t["n"],
                       test_per_class=t["per_class"], test_confusion=t["confusion"],
                       test_paths=[it.path for it in test], test_pred=logits.argmax(1).tolist(),
                       test_labels=y.tolist(), test_conf=logits.softmax(1).max(1).values.tolist())
    else:  # too little data for a test split: the cross-validated estimate of the probe's head, when it won
        metrics.update(test_accuracy=None, test_interval=None, test_n=0,
                       cv_estimate=learn.plan.head_cv if learn.best[1] == 0 else None)
    if learn.rank == 0:
        save_file({k: v.contiguous() for k, v in learn.model.state_dict().items()},
                  str(learn.run.path / "model.safetensors"))
    if test:
        metrics.update(start_test(learn, metrics))
    return metrics


def start_test(learn: "Trainer", metrics: dict) -> dict:
    """The starting model (the probe's head on the pretrained backbone, epoch 0) scored on the test split, so the
    probe-vs-fine-tune gap is measured on photos nothing chose on. When no trained epoch beat it, it is the run's
    model and its test score is the one just computed; otherwise its checkpoint is scored, then the best model is
    put back."""
    keys = ("accuracy", "interval")
    if learn.best[1] == 0:
        return {f"start_test_{k}": metrics[f"test_{k}"] for k in keys}
    start = learn.run.load_checkpoint("start")
    if start is None:  # a run started before this checkpoint existed
        return {}
    best = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.model.load_state_dict(start["model"])
    learn.report("score the starting head on test", 0.0)
    test = learn.ds.test
    logits = predict_logits(learn.model, learn.spec, [it.path for it in test], learn.device,
                            check_cancel=learn.check_cancel,
                            progress=lambda f: learn.report("score the starting head on test", f))
    learn.model.load_state_dict(best)
    t = score(np.array([it.label for it in test]), logits.argmax(1).numpy(), learn.classes)
    return {f"start_test_{k}": t[k] for k in keys}


def end_metrics(learn: "Trainer", t_start: float, status: str, error: str = "", metrics: dict | None = None) -> None:
    """The run's final metrics (scores, or what is known at a cancel or failure) on `learn.metrics`."""
    plan = getattr(learn, "plan", None)
    learn.metrics = {**(metrics or {}), "status": status, "seconds": time.time() - t_start, "error": error,
                     "best_epoch": learn.best[1], "run_id": learn.run.id, "run_dir": str(learn.run.path),
                     "probe_accuracy": getattr(plan, "probe_accuracy", None),
                     "head_accuracy": getattr(plan, "head_accuracy", None)}
    learn.metrics.setdefault("best_val_acc", max(learn.best[0], 0.0))
    learn.metrics.setdefault("test_accuracy", None)
