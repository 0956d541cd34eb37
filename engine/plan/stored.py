"""Plans at rest: a plan (plan.json) and the probe fit its head starts from (head.npz), in a plan-cache folder or a
run folder. A stored plan is refused for data other than the data it was made for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import paths
from engine.data.dataset import Dataset
from engine.errors import DataError
from engine.plan.rules import Plan
from engine.probe.linear import LinearFit, ProbeResult
from engine.runs.store import Run

PLAN_VERSION = 8  # 5: the target domain (engine.plan.domain); 6: reverse validation and adaptation trials; 7: AdaBN;
# 8: the simple fixes tried


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
    there is none, or when another version of TransferLab wrote it (its fields differ)."""
    path = folder / "plan.json"
    if not path.exists():
        return None
    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None


def load_planned(folder: Path, ds: Dataset) -> Planned | None:
    """The plan stored in `folder` (a plan cache entry or a run), or None; refused when it belongs to other data."""
    if not (folder / "plan.json").exists():
        return None
    plan = Plan.from_dict(json.loads((folder / "plan.json").read_text()))
    if plan.fingerprint != ds.fingerprint():
        raise DataError(
            f"the plan in {folder} was made for other data ({plan.data}); the data changed since, so "
            f"make a new plan (start a new run)"
        )
    head = None
    if (folder / "head.npz").exists():
        with np.load(folder / "head.npz") as z:
            head = LinearFit(
                float(z["accuracy"]), np.zeros(0), np.zeros(0), z["coef"], z["intercept"], z["mean"], z["scale"]
            )
    return Planned(plan, ds, head, [], cached=True)
