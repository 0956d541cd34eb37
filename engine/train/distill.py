"""A distilled run's teacher signal: the teacher's answers on the training photos (read once and kept in the run
folder, so a resumed run does not ask again) and the loss that mixes them with the labels.

The plan decides the teacher, its weight and temperature (`engine.plan.distill`); this module only executes them.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from engine.data.dataset import Dataset
from engine.errors import DataError
from engine.model.predict import predict_logits
from engine.plan.parts import DistillPart
from engine.plan.trained import load_run_model
from engine.progress import QUIET_STEP, Step
from engine.runs.store import Run

ANSWERS = "teacher.safetensors"  # in the run folder: the teacher's log-probabilities, one row a training photo


def photos_key(ds: Dataset) -> str:
    """What the answers were read for: the training photos, in order."""
    return hashlib.sha256("\n".join(it.path for it in ds.train).encode()).hexdigest()


def teacher_answers(part: DistillPart, ds: Dataset, device: torch.device, progress: Step = QUIET_STEP) -> torch.Tensor:
    """The teacher's log-probabilities for each training photo as it is, through its own input contract.

    Raises:
        DataError: The teacher's model cannot be read, or knows other classes than the data's.
    """
    model, spec, classes = load_run_model(part.teacher)
    if list(classes) != list(ds.classes):
        raise DataError(f"distill_from {part.teacher}: the teacher's classes changed since the plan was made")
    model = model.to(device)
    logits = predict_logits(model, spec, [it.path for it in ds.train], device, progress)
    return logits.float().log_softmax(-1)


def answers(
    run: Run | None, part: DistillPart, ds: Dataset, device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """The answers kept in `run`'s folder for these training photos, else read from the teacher now and kept (only
    the process that writes the run keeps them; the LR finder, which has no run, keeps nothing)."""
    if run is None:
        return teacher_answers(part, ds, device, progress)
    key = torch.tensor(list(bytes.fromhex(photos_key(ds))), dtype=torch.uint8)
    kept = run.read_tensors(ANSWERS) or {}
    if "photos" in kept and torch.equal(kept["photos"], key) and len(kept.get("log_probs", ())) == len(ds.train):
        return kept["log_probs"]
    got = teacher_answers(part, ds, device, progress)
    run.write_tensors(ANSWERS, {"log_probs": got, "photos": key})
    return got


def distill_loss(
    logits: torch.Tensor, hard: torch.Tensor, teacher_log_probs: torch.Tensor, weight: float, temperature: float
) -> torch.Tensor:
    """(1 - weight) x the labels' loss `hard` + weight x T² x KL(teacher || student), both softened by T (the T²
    keeps the soft part's gradients the size of the hard part's whatever T is; Hinton et al. 2015)."""
    t = temperature
    soft_teacher = F.log_softmax(teacher_log_probs / t, dim=-1)
    soft = F.kl_div(F.log_softmax(logits / t, dim=-1), soft_teacher, log_target=True, reduction="batchmean") * t * t
    return (1 - weight) * hard + weight * soft
