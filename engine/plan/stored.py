"""Plans at rest: a plan (plan.json) and the probe fit its head starts from (head.npz), in a plan-cache folder or a
run folder. A stored plan is refused for data other than the data it was made for, and one of another version or
edited by hand (`PlanError`) is made again in the plan cache and refused in one line for a run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import paths
from engine.data.dataset import Dataset
from engine.errors import DataError
from engine.plan.parts import Plan, PlanError
from engine.probe.linear import LinearFit, ProbeResult
from engine.runs.store import Run


@dataclass
class Planned:
    """A plan with what executing it needs: the dataset and the probe fit its head starts from."""

    plan: Plan
    ds: Dataset
    head: LinearFit | None
    probes: list[ProbeResult]
    cached: bool = False


def save_planned(folder: Path, planned: Planned) -> None:
    """Writes the plan (plan.json) and the probe fit its head starts from (head.npz) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if planned.head is not None:
        h = planned.head
        paths.atomic_write(
            folder / "head.npz",
            lambda f: np.savez(
                f, coef=h.std_coef, intercept=h.std_intercept, mean=h.mean, scale=h.scale, accuracy=h.accuracy
            ),
        )
    paths.atomic_write(folder / "plan.json", json.dumps(planned.plan.to_dict(), indent=2).encode())


def save_run_plan(run: Run, planned: Planned) -> None:
    """Stores the plan `run` executes in its folder, with the length of its event log then (`plan_events` in its
    status): a fresh attempt rewinds the log to there, so the events of its planning stay and those of an interrupted
    attempt go."""
    save_planned(run.path, planned)
    run.set_status(plan_events=run.events_offset())


def read_plan(folder: Path) -> Plan | None:
    """The plan stored in `folder`, for the readers that show a run (pages, CLI, model card, comparison): None when
    there is none, or when it cannot be read as this version's plan (`PlanError`)."""
    return read_plan_checked(folder)[0]


def read_plan_checked(folder: Path) -> tuple[Plan | None, bool]:
    """`read_plan`, and whether `folder` holds a plan.json this version cannot read (another version's, or edited by
    hand): a reader then says so instead of treating the run as one whose plan was never made."""
    try:
        return _read(folder), False
    except PlanError:
        return None, True


def _read(folder: Path) -> Plan | None:
    path = folder / "plan.json"
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlanError(f"{path} cannot be read ({e}); make the plan again (start a new run)") from None
    if not isinstance(d, dict):
        raise PlanError(f"{path} holds no plan; make the plan again (start a new run)")
    try:
        return Plan.from_dict(d)
    except PlanError as e:
        raise PlanError(f"{path}: {e}") from None


def load_planned(folder: Path, ds: Dataset, remake: bool = False) -> Planned | None:
    """The plan stored in `folder` (a plan cache entry or a run), or None.

    Args:
        remake: A plan cache entry: one that cannot be read as this version's plan is None (it is made again).

    Raises:
        DataError: The plan belongs to other data.
        PlanError: A run's plan of another version, or edited by hand (the message says which field).
    """
    try:
        plan = _read(folder)
    except PlanError:
        if remake:
            return None
        raise
    if plan is None:
        return None
    if plan.data.fingerprint != ds.fingerprint():
        raise DataError(
            f"the plan in {folder} was made for other data ({plan.data.path}); the data changed since, so "
            f"make a new plan (start a new run)"
        )
    head = None
    if (folder / "head.npz").exists():
        with np.load(folder / "head.npz") as z:
            head = LinearFit(
                float(z["accuracy"]), np.zeros(0), np.zeros(0), z["coef"], z["intercept"], z["mean"], z["scale"]
            )
    return Planned(plan, ds, head, [], cached=True)
