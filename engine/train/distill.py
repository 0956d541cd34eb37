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


def photos_key(paths: list[str]) -> torch.Tensor:
    """What the answers were read for: the photos, in order (a SHA-256, as bytes)."""
    return torch.tensor(list(hashlib.sha256("\n".join(paths).encode()).digest()), dtype=torch.uint8)


def teacher_answers(
    part: DistillPart, ds: Dataset, paths: list[str], device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """The teacher's log-probabilities for each photo of `paths` as it is, through its own input contract.

    Raises:
        DataError: The teacher's model cannot be read, or knows other classes than the data's.
    """
    model, spec, classes = load_run_model(part.teacher)
    if list(classes) != list(ds.classes):
        raise DataError(f"distill_from {part.teacher}: the teacher's classes changed since the plan was made")
    model = model.to(device)
    return predict_logits(model, spec, paths, device, progress).float().log_softmax(-1)


# PLR0913: the run, its teacher, the two sets of photos, the device and who watches
def answers(  # noqa: PLR0913
    run: Run | None,
    part: DistillPart,
    ds: Dataset,
    target_paths: list[str],
    device: torch.device,
    progress: Step = QUIET_STEP,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The teacher's answers on the training photos and on the target photos `target_paths` (None without any): kept
    in `run`'s folder for these photos, else read from the teacher now and kept (only the process that writes the run
    keeps them; the LR finder, which has no run, keeps nothing)."""
    train_paths = [it.path for it in ds.train]
    keys = {"photos": photos_key(train_paths), "target_photos": photos_key(target_paths)}
    kept = (run.read_tensors(ANSWERS) if run is not None else None) or {}
    if all(k in kept and torch.equal(kept[k], key) for k, key in keys.items()):
        return kept["log_probs"], kept.get("target_log_probs")
    got = teacher_answers(part, ds, train_paths + target_paths, device, progress)
    train, target = got[: len(train_paths)], got[len(train_paths) :]
    if run is not None:
        run.write_tensors(
            ANSWERS, {"log_probs": train, **keys, **({"target_log_probs": target} if target_paths else {})}
        )
    return train, (target if target_paths else None)


def soft_loss(logits: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² x KL(teacher || student), both softened by T (the T² keeps its gradients the size of the labels' loss's
    whatever T is; Hinton et al. 2015)."""
    t = temperature
    soft_teacher = F.log_softmax(teacher_log_probs / t, dim=-1)
    return F.kl_div(F.log_softmax(logits / t, dim=-1), soft_teacher, log_target=True, reduction="batchmean") * t * t


def distill_loss(
    logits: torch.Tensor, hard: torch.Tensor, teacher_log_probs: torch.Tensor, weight: float, temperature: float
) -> torch.Tensor:
    """(1 - weight) x the labels' loss `hard` + weight x `soft_loss`."""
    return (1 - weight) * hard + weight * soft_loss(logits, teacher_log_probs, temperature)
