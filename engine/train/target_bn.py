"""The run's model with its BatchNorm statistics re-estimated on the target photos (`plan.target.bn`, AdaBN), at the
end of the run: after val and the test split were scored with the backbone's own statistics (photos like the training
ones keep them, as domain-specific BatchNorm does), before the target standardisation, the target test and the save.

The photos are the plan's sample (`engine.model.bn_stats.bn_sample`, same seed): the statistics the plan scored."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Iterator

import torch

from engine.model.bn_stats import bn_sample, reestimate, statistics_of
from engine.model.device import image_batches
from engine.model.predict import as_shipped
from engine.train.state import TrainContext


def sample(ctx: TrainContext) -> list[str]:
    """The target photos the statistics are averaged over."""
    return bn_sample(ctx.targets.photos.paths, ctx.cfg.runtime.seed)


def _batches(ctx: TrainContext, paths: list[str]) -> Iterator[torch.Tensor]:
    for _, x in image_batches(ctx.spec, paths, ctx.device, keep=False):
        ctx.report.check_cancel()
        yield x


def _forward(ctx: TrainContext) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        with as_shipped(ctx.device):  # the statistics gathered in the precision the model predicts in
            return ctx.model.features(x)

    return forward


def reestimate_on_targets(ctx: TrainContext) -> int:
    """Sets the model's BatchNorm statistics to the target sample's, as the step "re-estimate BatchNorm on the target
    photos"; returns the photos read."""
    step = ctx.report.step("re-estimate BatchNorm on the target photos")
    step(0.0)
    n = reestimate(ctx.model, _batches(ctx, sample(ctx)), _forward(ctx))
    step(1.0)
    return n


def on_targets(ctx: TrainContext) -> AbstractContextManager[int]:
    """The model with the target sample's statistics inside the block (reading target photos as the saved model
    will), its own after."""
    return statistics_of(ctx.model, _batches(ctx, sample(ctx)), _forward(ctx))
