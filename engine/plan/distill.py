"""Distillation, decided: the trained run a run learns from beside its labels (its teacher), checked before any
photo is read, and the decision that says what the student learns from and what the teacher costs.

The teacher answers once, before the first epoch, for every training photo as it is (its own input contract, its
mirror-image averaging): the offline form of Hinton et al. (2015), which costs one pass of the teacher instead of one
per batch. A student that needs a model under a deployment budget (`engine.serve.targets`) is a run like any other,
live on the Train page, stopped and resumed like one; its answers are kept in its folder (`teacher.safetensors`).
"""

from __future__ import annotations

from dataclasses import replace

from engine.data.dataset import Dataset
from engine.errors import DataError
from engine.model.taps import cut_params
from engine.plan.config import TrainConfig
from engine.plan.parts import DistillPart, Plan
from engine.plan.reasons import Decision
from engine.plan.stored import read_plan
from engine.plan.trained import has_model, runs_on
from engine.runs.result import RunResult
from engine.runs.store import LIVE, Run, RunStore


def teacher_run(name: str) -> Run:
    """The run called `name` (an id in the run store, or a run folder), with a model to teach with.

    Raises:
        DataError: No such run, it is still training, or it has no model yet.
    """
    try:
        run = RunStore().open(name)
    except KeyError:
        raise DataError(
            f"distill_from {name}: no such run; give the id of a trained run (`python -m engine runs` lists them)"
        ) from None
    state = run.status().get("state")
    if state in LIVE:
        raise DataError(f"distill_from {name}: the run is still training; let it finish (or stop it) first")
    if not has_model(run):
        raise DataError(f"distill_from {name}: the run has no model yet (status {state}); let it finish, or resume it")
    return run


def distill_part(cfg: TrainConfig, ds: Dataset, n_target: int = 0) -> tuple[DistillPart, tuple[Decision, ...]]:
    """The teacher the config names (none: an empty part, nothing said), with the decision that says so; the teacher
    also answers for the `n_target` target photos given (the unlabelled photos the student learns on).

    Raises:
        DataError: The teacher is missing, untrained, or knows other classes than the data's.
    """
    reg = cfg.regularisation
    if not reg.distill_from:
        return DistillPart(), ()
    run = teacher_run(reg.distill_from)
    classes = (run.read_json("run_info.json") or {}).get("classes") or []
    if list(classes) != list(ds.classes):
        raise DataError(
            f"distill_from {reg.distill_from}: the teacher knows the classes {', '.join(classes) or 'none'}, the data "
            f"has {', '.join(ds.classes)}; a teacher answers for the same classes in the same order: train it on "
            f"this data"
        )
    plan = Plan.from_dict(run.read_json("plan.json"))
    result = RunResult.read(run)
    part = DistillPart(
        teacher=reg.distill_from,
        backbone=plan.backbone,
        input_size=plan.input.input_size[-1],
        params=model_params(plan, len(classes)),
        val_accuracy=result.best_val_acc if result is not None else None,
        n_target=n_target,
        weight=reg.distill_weight,
        temperature=reg.distill_temperature,
    )
    evidence = {
        "teacher": part.teacher,
        "teacher_backbone": part.backbone,
        "teacher_params": part.params,
        "teacher_val": part.val_accuracy,
        "student_backbone": cfg.backbone,  # the config's until the plan is made (`taught` writes the plan's)
        "student_params": 0,
        "weight": part.weight,
        "temperature": part.temperature,
        "n_train": len(ds.train),
        "n_target": n_target,
    }
    return part, (Decision("distill", "teacher and labels", ("labels only",), evidence),)


def model_params(plan: Plan, n_classes: int) -> int:
    """Parameters of the model `plan` trains: its backbone read at the head's taps (pruned after the deepest, as a
    parameter budget cuts it) with a head of `n_classes`; not the catalogue's count with ImageNet's head."""
    return cut_params(plan.backbone, tuple(plan.head.taps), n_classes)


def taught(plan: Plan, n_classes: int) -> Plan:
    """`plan` with its distill decision stating the student the plan trains (its backbone, chosen by auto after the
    teacher was checked, and its parameters), and with the teacher's target photos dropped when its final phases do
    not fine-tune: the teacher's answers on them are learnt beside phase 2's batches only (its part and its decision
    say so alike)."""
    d = plan.distill
    if not d.on:
        return plan
    stated = {"student_backbone": plan.backbone, "student_params": model_params(plan, n_classes)}
    if d.n_target and not plan.phases.finetune_epochs:
        stated["n_target"] = 0
        d = replace(d, n_target=0)
    said = tuple(replace(x, evidence={**x.evidence, **stated}) if x.kind == "distill" else x for x in plan.decisions)
    return replace(plan, distill=d, decisions=said)


def teachers_for(data: str, store: RunStore | None = None) -> dict[str, str]:
    """The runs of `store` (the default one when None) that can teach a run on `data` (`runs_on`: trained on the same
    folder, with a model), newest first: the run's folder (what `distill_from` takes) -> what the Train page lists
    (its id, backbone and val accuracy)."""
    store = store or RunStore()
    out = {}
    for run_id in runs_on(store, data):
        run = store.open(run_id)
        result, plan = RunResult.read(run), read_plan(run.path)
        val = f", val {result.best_val_acc:.1%}" if result is not None else ""
        out[str(run.path)] = f"{run.id} ({plan.backbone if plan else '?'}{val})"
    return out
