"""The end of a run: the best model on val is restored, scored on val and, once, on the test split, and saved.

A head standardised on the target photos (`plan.target.norm`) keeps two statistics, as domain-specific BatchNorm
does: photos like the training ones (val, the test split) are scored with the training photos' mean and spread, the
photos it will be used on (the target test) with the target photos' own; the saved model carries the latter."""

from __future__ import annotations

import errno
import time
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.paths import usual_mode


from engine.calibration import ece, fit_temperature, reliability, unsure_threshold
from engine.errors import in_words
from engine.metrics import score
from engine.model.weights import sha256_file
from engine.plan.rules import FIXED_S
from engine.runs.events import RunEnded
from engine.runs.result import RunResult
from engine.runs.store import Run
from engine.train import reverse_check, target_bn
from engine.model.predict import predict_logits
from engine.train.reverse_check import features
from engine.train.state import TrainContext, TrainState


def scoring_seconds(ctx: TrainContext, state: TrainState) -> float:
    """The final scoring's expected seconds (val, unless the best epoch's logits stand, and test, twice when a trained
    epoch beat the starting model) at the pace the starting model's validation measured through the same images path;
    the plan's estimate without it (a resumed run, a random head)."""
    n_val = len(ctx.yva)
    if not state.start_val_s:
        return ctx.plan.cost.score_s or 0.0
    n_test = ctx.plan.data.n_test * (2 if state.best_epoch > 0 else 1)  # a trained epoch won: the start is scored too
    n_target = ctx.plan.target.reads(ctx.plan.data.n_val, checked=reverse_check.applies(ctx, state))
    val_again = 0 if state.best_logits is not None else n_val
    return (n_test + n_target + val_again) * state.start_val_s / max(1, n_val)


def final_metrics(ctx: TrainContext, state: TrainState) -> dict:
    """Restores the best checkpoint (where one was kept), scores it (val: "chosen on"; test: once, never used to
    choose) and saves it as `model.safetensors`. Each scoring is a named step with its progress."""
    best = ctx.run.load_checkpoint("best")
    if best is not None:
        ctx.model.load_state_dict(best["model"])
    else:  # no checkpoints were kept (a trainer without `Checkpoints`): the model at hand is the one scored
        state.best_epoch, state.best_logits = state.epoch, None
    ctx.model.eval()
    ctx.report.expect(scoring_seconds(ctx, state) + FIXED_S)
    checked, target_read = {}, None
    if reverse_check.applies(ctx, state):  # may put the starting head back: before anything is scored
        checked, target_read = reverse_check.check_against_start(ctx, state)
    val_paths, test = [it.path for it in ctx.ds.val], ctx.ds.test
    val_logits = state.best_logits  # the best epoch was validated through the images: the same logits as scoring
    if val_logits is None:
        scoring = ctx.report.step("score the chosen model on val")
        scoring(0.0)
        val_logits = predict_logits(ctx.model, ctx.spec, val_paths, ctx.device, scoring)
    val_logits, trust = calibrate(ctx, val_logits)
    yva = ctx.yva.numpy()
    val = score(yva, val_logits.argmax(1).numpy(), ctx.classes)
    metrics = {
        **trust,
        "best_val_acc": val["accuracy"],
        "chosen_on": "val",
        "val_interval": val["interval"],
        "per_class": val["per_class"],
        "confusion": val["confusion"],
        "val_paths": val_paths,
        "val_pred": val_logits.argmax(1).tolist(),
        "val_labels": yva.tolist(),
        "val_conf": val_logits.softmax(1).max(1).values.tolist(),
        "classes": ctx.classes,
        "val_loss": float(F.cross_entropy(val_logits, ctx.yva)),
        "test_source": ctx.ds.test_source,
    }
    if test:
        scoring = ctx.report.step("score the test split")
        scoring(0.0)
        y = np.array([it.label for it in test])
        logits = predict_logits(ctx.model, ctx.spec, [it.path for it in test], ctx.device, scoring)
        t = score(y, logits.argmax(1).numpy(), ctx.classes)
        metrics.update(
            test_accuracy=t["accuracy"],
            test_interval=t["interval"],
            test_n=t["n"],
            test_per_class=t["per_class"],
            test_confusion=t["confusion"],
            test_paths=[it.path for it in test],
            test_pred=logits.argmax(1).tolist(),
            test_labels=y.tolist(),
            test_conf=logits.softmax(1).max(1).values.tolist(),
            **test_calibration(logits, torch.from_numpy(y), trust),
        )
    else:  # too little data for a test split: the cross-validated estimate of the probe's head, when it won
        metrics.update(
            test_accuracy=None,
            test_interval=None,
            test_n=0,
            cv_estimate=ctx.plan.head.cv if state.best_epoch == 0 else None,
        )
    if checked:
        metrics["target_reverse"] = checked
    read_as_targets(ctx, target_read)
    if ctx.rank == 0:
        final = ctx.run.path / "model.safetensors"
        save_file({k: v.contiguous() for k, v in ctx.model.state_dict().items()}, str(final))
        usual_mode(final)
        metrics["model_sha256"] = sha256_file(final)  # what evaluate, export and predict check before loading it
    if test:
        metrics.update(start_test(ctx, state, metrics))
    if ctx.targets is not None and ctx.targets.test:
        metrics.update(target_test(ctx, state))
    return metrics


def calibrate(ctx: TrainContext, val_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The chosen model's temperature fitted on its val logits and set in its head (so every later prediction and
    every export is calibrated); returns the calibrated val logits and the record: the temperature, val's ECE before
    and after, its reliability diagram and the unsure threshold chosen on it."""
    t = fit_temperature(val_logits, ctx.yva)
    ctx.model.head.temperature.fill_(t)
    calibrated = val_logits / t
    probs = calibrated.softmax(1)
    unsure = unsure_threshold(probs, ctx.yva)
    return calibrated, {
        "temperature": t,
        "ece_val_before": ece(val_logits.softmax(1), ctx.yva),
        "ece_val": ece(probs, ctx.yva),
        "reliability_val": reliability(probs, ctx.yva),
        "unsure": unsure.to_dict(),
    }


def test_calibration(logits: torch.Tensor, y: torch.Tensor, trust: dict) -> dict:
    """The test split's ECE before (the logits times the temperature) and after calibration, its reliability diagram,
    and what the unsure threshold chosen on val does on it."""
    probs = logits.softmax(1)
    conf, pred = probs.max(1)
    answered = conf >= trust["unsure"]["threshold"]
    return {
        "ece_test_before": ece((logits * trust["temperature"]).softmax(1), y),
        "ece_test": ece(probs, y),
        "reliability_test": reliability(probs, y),
        "unsure_test": {
            "coverage": float(answered.float().mean()),
            "accuracy": float((pred[answered] == y[answered]).float().mean()) if answered.any() else 0.0,
        },
    }


def read_as_targets(ctx: TrainContext, read: torch.Tensor | None = None) -> None:
    """Val and the test split were read as training photos; what is saved (and the target test) reads target photos:
    with the backbone's BatchNorm statistics re-estimated on them, then the head's input standardised on them, as the
    plan chose. `read`: the target photos' features through the model so made, when they were read already."""
    if ctx.plan.target.bn:
        target_bn.reestimate_on_targets(ctx)
    if ctx.plan.target.norm:
        standardise_on_targets(ctx, read)


def standardise_on_targets(ctx: TrainContext, read: torch.Tensor | None = None) -> None:
    """The head reads its input standardised on the target photos: their features' mean and spread (through the model
    as it predicts, mirror averaging included; `read` when the model's were read already) replace the training
    photos' in the head's buffers."""
    step = ctx.report.step("standardise the head on the target photos")
    step(0.0)
    f = read if read is not None else features(ctx, ctx.targets.photos.paths, step)
    ctx.model.head.mean.copy_(f.mean(0))
    ctx.model.head.scale.copy_(f.std(0) + 1e-6)
    step(1.0)


def target_test(ctx: TrainContext, state: TrainState) -> dict:
    """The labelled target photos, scored once: the chosen model, and the starting head (no adaptation, the
    training photos' statistics) when a trained epoch or the target standardisation changed the model."""
    items = ctx.targets.test
    y, paths = np.array([it.label for it in items]), [it.path for it in items]
    scoring = ctx.report.step("score the target test photos")
    scoring(0.0)
    chosen = score(y, predict_logits(ctx.model, ctx.spec, paths, ctx.device, scoring).argmax(1).numpy(), ctx.classes)
    out = {
        "target_test_accuracy": chosen["accuracy"],
        "target_test_interval": chosen["interval"],
        "target_test_n": chosen["n"],
    }
    start = ctx.run.load_checkpoint("start")
    if (state.best_epoch == 0 and not ctx.plan.target.norm) or start is None:
        if state.best_epoch == 0 and not ctx.plan.target.norm:  # the chosen model is the starting head
            out.update(start_target_test_accuracy=chosen["accuracy"], start_target_test_interval=chosen["interval"])
        return out
    chosen_state = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    ctx.model.load_state_dict(start["model"])
    logits = predict_logits(ctx.model, ctx.spec, paths, ctx.device)
    ctx.model.load_state_dict(chosen_state)
    base = score(y, logits.argmax(1).numpy(), ctx.classes)
    out.update(start_target_test_accuracy=base["accuracy"], start_target_test_interval=base["interval"])
    return out


def start_test(ctx: TrainContext, state: TrainState, metrics: dict) -> dict:
    """The starting model (the probe's head on the pretrained backbone, epoch 0) scored on the test split, so the
    probe-vs-fine-tune gap is measured on photos nothing chose on. When no trained epoch beat it, it is the run's
    model and its test score is the one just computed; otherwise its checkpoint is scored, then the best model is
    put back."""
    keys = ("accuracy", "interval")
    if state.best_epoch == 0:
        return {f"start_test_{k}": metrics[f"test_{k}"] for k in keys}
    start = ctx.run.load_checkpoint("start")
    if start is None:  # a run started before this checkpoint existed
        return {}
    best = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    ctx.model.load_state_dict(start["model"])
    scoring = ctx.report.step("score the starting head on test")
    scoring(0.0)
    test = ctx.ds.test
    logits = predict_logits(ctx.model, ctx.spec, [it.path for it in test], ctx.device, scoring)
    ctx.model.load_state_dict(best)
    t = score(np.array([it.label for it in test]), logits.argmax(1).numpy(), ctx.classes)
    return {f"start_test_{k}": t[k] for k in keys}


# PLR0913: how the run ended and everything known about it then
def end_result(  # noqa: PLR0913
    run: Run,
    ctx: TrainContext | None,
    state: TrainState,
    t_start: float,
    status: str,
    error: str = "",
    scores: dict | None = None,
) -> RunResult:
    """The run's result: its scores (`final_metrics`), or what is known at a cancel or a failure (`ctx` is None when
    the run failed before it was built)."""
    plan = None if ctx is None else ctx.plan
    scores = scores or {}
    return RunResult(
        **{"best_val_acc": max(state.best_acc, 0.0), **scores},
        status=status,
        seconds=time.time() - t_start,
        error=error,
        best_epoch=state.best_epoch,
        run_id=run.id,
        run_dir=str(run.path),
        probe_accuracy=None if plan is None else plan.head.probe_accuracy,
        head_accuracy=None if plan is None else plan.head.accuracy,
        start_val_accuracy=start_val(run),
    )


def start_val(run: Run) -> float | None:
    """The val accuracy of the run's epoch 0 (the head it started from) as its event log recorded it, scored as every
    epoch is (the plan's figure came from its cached features, which may be computed at a lower precision)."""
    starts = [e.val_acc for e in run.events("epoch") if e.epoch == 0]
    return starts[-1] if starts else None


def record_end(run: Run, result: RunResult, trace: str = "") -> RunResult:
    """How the run ended, in its folder: the result, the last event, the traceback of a failure and the status. Each
    write is tried on its own, so a full disk that refuses the result still lets the (small) status say "failed" and
    why. Returns the result as recorded (failed, when a finished run's results could not be written)."""
    run.release_reserve()  # the room set aside at the start: the records below fit even on a full disk
    writes = [
        lambda: run.write_json("metrics.json", result.to_dict()),
        lambda: run.append(
            RunEnded(
                status=result.status,
                best_val_acc=result.best_val_acc,
                best_epoch=result.best_epoch,
                seconds=result.seconds,
                error=result.error,
                test_accuracy=result.test_accuracy,
            )
        ),
    ]
    if trace:
        writes.append(lambda: (run.path / "error.txt").write_text(trace))
    problems = []
    for write in writes:
        try:
            write()
        except OSError as e:
            problems.append(e.strerror or str(e))
    if problems and result.status == "finished":
        result = replace(result, status="failed", error=f"the results could not be written: {problems[0]}")
    try:
        run.set_status(
            state=result.status,
            ended=time.time(),
            best_val_acc=result.best_val_acc,
            test_accuracy=result.test_accuracy,
            error=result.error,
        )
    except OSError:
        pass  # a folder that cannot be written at all: its status reads "interrupted" once this process ends
    return result


def failure_line(e: Exception, run: Run) -> str:
    """Why a run failed, in one line a person can act on: a full disk or a folder that cannot be written says so, with
    the last good checkpoint and how to go on."""
    if not isinstance(e, OSError) or e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
        return in_words(e)
    where = Path(e.filename).name if e.filename else "the run's files"
    last = run.path / "last.pt"
    epoch = "none yet"
    if last.exists():
        try:
            epoch = f"epoch {run.load_checkpoint('last')['epoch']}"
        except (OSError, RuntimeError, KeyError, EOFError):
            epoch = "unreadable"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        need = max(1, round(2 * (last.stat().st_size if last.exists() else 50e6) / 1e6))
        return (
            f"disk full while writing {where} in {run.path}; the last good checkpoint is {epoch}; free about {need} MB "
            f"and resume (python -m engine resume --run {run.id})"
        )
    return (
        f"{run.path} cannot be written ({e.strerror} while writing {where}); the last good checkpoint is {epoch}; make "
        f"the folder writable and resume (python -m engine resume --run {run.id})"
    )
