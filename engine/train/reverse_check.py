"""The end of a run with unlabelled target photos: does the fine-tuned model carry its labels back as well as the head
it started from?

Val cannot tell (the training photos are right either way), and fine-tuning on the training photos often moves the
features away from the target photos: on the field copy of the plant photos, auto's MMD fine-tune kept an epoch at
0.963 on val that got 0.605 of the target test, where the starting head read on the target's statistics got 0.713.
So when a trained epoch was chosen and no target photo is labelled, the chosen model and the starting head are both
scored by reverse validation (`engine.probe.reverse`) through the model as it predicts, reading the target photos as
the run will (with the BatchNorm statistics re-estimated on them when the plan does so, `engine.train.target_bn`);
the starting head is kept instead when it scored higher by more than that score's standard error on
val. (The plan's own score of the start, `plan.target.reverse`, comes from the probe's cached features, read without
mirror averaging: 0.637 there against 0.743 through the model on the field pair, so it only gates the check.)
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from engine.model.device import image_batches
from engine.model.predict import as_shipped
from engine.probe.linear import LinearFit
from engine.probe.reverse import reverse_accuracy
from engine.progress import Step
from engine.train import target_bn
from engine.train.state import TrainContext, TrainState


def applies(ctx: TrainContext, state: TrainState) -> bool:
    """A trained epoch was chosen, the plan scored its starting head by reverse validation, and no labelled target
    photo chose instead."""
    photos = ctx.targets.photos if ctx.targets is not None else None
    return photos is not None and state.best_epoch > 0 and ctx.plan.target.checks_against_start


def features(ctx: TrainContext, paths: list[str], step: Step) -> torch.Tensor:
    """The head's input for `paths` through the model as it predicts (mirror averaging included, float32), on the
    CPU."""
    out = []
    with torch.no_grad(), as_shipped(ctx.device):
        for done, x in image_batches(ctx.spec, paths, ctx.device):
            step.check_cancel()
            out.append(ctx.model.features(x).float().cpu())
            step(done / len(paths))
    return torch.cat(out)


def model_reverse(ctx: TrainContext) -> tuple[float, torch.Tensor]:
    """The model at hand's reverse validation score, and its target photos' features (the target standardisation
    reads them again)."""
    step = ctx.report.step("check the chosen model against the starting head on the target photos")
    step(0.0)
    head = ctx.model.head
    val = [it.path for it in ctx.ds.val]
    n = len(val) + len(ctx.targets.photos.paths)
    fv = features(ctx, val, step.sub(0, len(val) / n))
    with target_bn.on_targets(ctx) if ctx.plan.target.bn else nullcontext():  # as the saved model will read them
        ft = features(ctx, ctx.targets.photos.paths, step.sub(len(val) / n, 1.0))
    mean, scale = head.mean.cpu(), head.scale.cpu()
    zv = ((fv - mean) / scale).numpy()
    zt = ((ft - ft.mean(0)) / (ft.std(0) + 1e-6) if ctx.plan.target.norm else (ft - mean) / scale).numpy()
    w, b = head.fc.weight.detach().cpu().numpy(), head.fc.bias.detach().cpu().numpy()
    fit = LinearFit(0.0, np.empty(0), np.empty(0), w, b, mean.numpy(), scale.numpy())
    step(1.0)
    return reverse_accuracy(fit, zt, zv, ctx.yva.numpy()), ft


def check_against_start(ctx: TrainContext, state: TrainState) -> tuple[dict, torch.Tensor]:
    """Scores the chosen model and the starting head by reverse validation, both through the model as it predicts,
    and puts the starting head back when it carries its labels back better beyond chance. Returns the record (both
    scores, the margin, what was kept, the sentence) and the target photos' features of the model kept."""
    epoch = state.best_epoch
    chosen, ft = model_reverse(ctx)
    checkpoint = ctx.run.load_checkpoint("start")
    if checkpoint is None:  # a run started before this checkpoint existed: nothing to compare with
        return {}, ft
    chosen_state = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    ctx.model.load_state_dict(checkpoint["model"])
    start, ft_start = model_reverse(ctx)
    margin = float(np.sqrt(start * (1 - start) / max(1, len(ctx.yva))))
    kept = "start" if chosen < start - margin else "chosen"
    if kept == "start":
        state.best_epoch = 0
        state.best_logits = None
        ft = ft_start
    else:
        ctx.model.load_state_dict(chosen_state)
    verdict = (
        "the starting head is kept: the fine-tune fits the training photos better and carries to the target photos "
        "worse."
        if kept == "start"
        else "the fine-tuned model is kept."
    )
    sentence = (
        f"Reverse validation on the target photos: epoch {epoch} (chosen on val) {chosen:.1%}, the starting head "
        f"{start:.1%} (standard error {margin:.1%}); {verdict}"
    )
    return {"chosen": chosen, "start": start, "margin": margin, "kept": kept, "epoch": epoch, "sentence": sentence}, ft
