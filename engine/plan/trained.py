"""A trained run's model as its folder keeps it: the final weights (checked against the SHA-256 the run recorded)
or, for a stopped or failed run, its best checkpoint; with the input contract and the class names of its plan.

Serving reads it to predict and export; a run that learns from another (distillation) reads its teacher with it.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.model.catalogue import build_model
from engine.model.taps import TapModel
from engine.model.weights import sha256_file
from engine.plan.config import TrainConfig
from engine.plan.parts import Plan
from engine.runs.result import RunResult
from engine.runs.store import Run, RunStore


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


def runs_on(store: RunStore, path: str) -> list[str]:
    """The ids of the runs in `store` with a model trained on the photos at `path`, newest first (the Data page's
    estimate and the Train page's teachers list the same runs)."""
    want = Path(path).expanduser().resolve()
    return [run.id for run in store.list() if _trained_on(run) == want and has_model(run)]


def _trained_on(run: Run) -> Path | None:
    """The folder `run` was trained on, resolved (None for a config this version cannot read, or no folder)."""
    try:
        return Path(TrainConfig.from_dict(run.config).data.path).expanduser().resolve()
    except (ValueError, OSError, KeyError, TypeError):
        return None
