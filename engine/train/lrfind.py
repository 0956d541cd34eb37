"""Learning-rate range test (Smith 2017): the rate grows exponentially over a short run on the groups that will
train, the loss is recorded, and the model and optimiser are restored afterwards. The suggestion is the rate where
the smoothed loss falls fastest."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np

from engine.plan.config import TrainConfig
from engine.plan.make import get_plan
from engine.plan.parts import Plan
from engine.progress import QUIET, Progress
from engine.train.loop import Trainer
from engine.train.optim import freeze, set_train_mode
from engine.train.routes import make_path


@dataclass(frozen=True)
class LrRange:
    """A learning-rate range test's result.

    Attributes:
        lrs: The head rates tried, in order.
        losses: The smoothed loss at each rate.
        suggestion: The suggested head rate; None without a curve.
        groups: Each group's rate as a share of the head's, as tested.
        phase: The phase tested (1: the head only, 2: the fine-tune).
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float | None
    groups: tuple[float, ...]
    phase: int

    def to_dict(self) -> dict:
        return asdict(self)


def rates_for(plan: Plan, head_rate: float) -> tuple[float, ...]:
    """Every group's rate of `plan` with the top group's set to `head_rate` and the others kept in proportion (what
    applying a range test's suggestion to a plan does)."""
    top = plan.phases.lrs[-1]
    return tuple(lr * head_rate / top for lr in plan.phases.lrs) if top else plan.phases.lrs


def lr_find(
    cfg: TrainConfig, steps: int = 60, start: float = 1e-7, end: float = 1.0, progress: Progress = QUIET
) -> LrRange:
    """Runs the range test on the phase-2 plan of `cfg` (head only when the plan does not fine-tune), with the
    trainer's own step (`Trainer.one_batch`)."""
    planned = get_plan(cfg, progress)
    trainer = Trainer(cfg, None, planned=planned, callbacks=[])  # type: ignore[arg-type] - it records nothing in a run
    step = progress.step("lr-find")
    ctx = trainer.setup()
    plan = ctx.plan
    phase = 2 if plan.phases.finetune_epochs else 1
    n = len(plan.phases.groups)
    frozen = list(plan.phases.frozen) if phase == 2 else [True] * (n - 1) + [False]
    scale = (
        [lr / plan.phases.lrs[-1] if plan.phases.lrs[-1] else 0.0 for lr in plan.phases.lrs]
        if phase == 2
        else [0.0] * (n - 1) + [1.0]
    )
    model = ctx.model
    path = make_path(ctx, trainer.state, phase)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(ctx.opt.state_dict())
    freeze(model, ctx.groups, frozen)
    set_train_mode(model, ctx.groups, [True] * n if plan.phases.bn_frozen_stats else frozen)
    rng = np.random.default_rng(cfg.runtime.seed)
    lrs, losses, avg, best = [], [], 0.0, float("inf")
    try:
        for i in range(steps):
            lr = start * (end / start) ** (i / max(1, steps - 1))
            for pg in ctx.opt.param_groups:
                pg["lr"] = lr * scale[pg["layer"]]
            idx = rng.choice(len(ctx.ytr), size=min(cfg.optim.batch_size, len(ctx.ytr)), replace=False)
            loss, _ = trainer.one_batch(path, idx, path.batch(idx, i), None)
            avg = 0.9 * avg + 0.1 * loss
            smoothed = avg / (1 - 0.9 ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            step((i + 1) / steps)
            step.check_cancel()
            if not np.isfinite(smoothed) or smoothed > 4 * best:
                break
    finally:
        model.load_state_dict(saved_model)
        ctx.opt.load_state_dict(saved_opt)
        path.close()
    return LrRange(tuple(lrs), tuple(losses), suggest_lr(lrs, losses), tuple(scale), phase)


def suggest_lr(lrs: list[float], losses: list[float], flat: float = 0.25) -> float | None:
    """The rate where the smoothed loss falls fastest, searched only where it is really falling: after the last point
    still within `flat` of the whole drop from the starting plateau (the median of the curve's first third before its
    minimum), and before the minimum. Noise on a long flat start makes steep little slopes there; like fastai's
    `valley`, the suggestion never comes from that region.

    Returns:
        The suggested rate; the first rate tried when the loss never falls; None without a curve.
    """
    if not lrs:
        return None
    y = np.asarray(losses, dtype=float)
    cut = int(np.argmin(y))
    level = float(np.median(y[: max(3, cut // 3)]))
    drop = level - y[cut]
    if cut == 0 or drop <= 0:
        return float(lrs[0])
    high = np.flatnonzero(y[:cut] > level - flat * drop)
    begin = int(high[-1]) + 1 if len(high) else 0
    if cut - begin < 2:
        return float(lrs[begin])
    slopes = np.gradient(y[begin : cut + 1], np.log(np.asarray(lrs[begin : cut + 1])))
    return float(lrs[begin + int(np.argmin(slopes))])
