"""The lesson's experiment: the same backbone and photos from random initialisation, as a frozen feature extractor
with a linear probe, fine-tuned in its top layer groups, and as auto chooses; each a run of its own, compared on the
test split.

`lesson_configs` makes the four configurations (the dashboard submits them to the runner, the CLI runs them in turn,
the linear probe first: the quickest, its result is on screen while the others train); `lesson_estimate` says how
long they take by the cost model every plan is costed with (the promise on the button, and the time left of the runs
still queued); `lesson_progress` is the experiment's one status line: the run under way, its step, and the time left
of all four; `lesson_rows` reads each run's own stored results (test accuracy, interval, seconds, epochs) from its
snapshot, and `lesson_sentence` says what they show in one sentence. Nothing here trains or scores a second time.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from engine.plan.config import DEFAULT_BACKBONE, TrainConfig
from engine.plan.make import load_data, run_estimate
from engine.progress import QUIET, Progress
from engine.runs.store import TERMINAL, Run
from engine.runs.result import RunResult
from engine.plan.stored import read_plan
from engine.serve.view import RunView

ARMS = ("scratch", "probe", "finetune", "auto")
ARM_TEXT = {
    "scratch": "from scratch (random initialisation)",
    "probe": "a frozen pretrained network with a new last layer (linear probe)",
    "finetune": "fine-tuning its top layer groups",
    "auto": "auto's pick",
}
LESSON_TEXT = (
    "The same network on the same photos four ways: from random initialisation, frozen with a new last layer (linear "
    "probe), fine-tuned in its top layers, and auto's pick; live, then compared on test photos nothing was chosen on."
)


def lesson_configs(
    data: str, backbone: str = DEFAULT_BACKBONE, budget: float | None = None, data_root: str | None = None
) -> dict[str, TrainConfig]:
    """The four runs of the experiment on `data`, sized for a 2-core laptop CPU (`bench/ui.py --lesson` times them on
    the bundled sample: 339 s with 2 scratch epochs, 3 fine-tuning epochs and 60 s for auto, hence these defaults).

    `TRANSFERLAB_LESSON_SCRATCH_EPOCHS` (default 1) and `TRANSFERLAB_LESSON_FT_EPOCHS` (default 2) set the epochs of
    the scratch and fine-tuning runs; `budget` (default `TRANSFERLAB_LESSON_BUDGET`, else 30 s) is auto's."""
    common = dict(
        data=data,
        backbone=backbone,
        views=1,
        probe_mirror=False,  # one view each: half the probe's time
        **({"data_root": data_root} if data_root else {}),
    )
    scratch_epochs = int(os.environ.get("TRANSFERLAB_LESSON_SCRATCH_EPOCHS", "1"))
    ft_epochs = int(os.environ.get("TRANSFERLAB_LESSON_FT_EPOCHS", "2"))
    return {  # the probe first: the quickest run, on screen while the others train
        "probe": TrainConfig.create(**common, strategy="feature-extraction", head_epochs=0),
        "scratch": TrainConfig.create(**common, strategy="scratch", weights="none", finetune_epochs=scratch_epochs),
        "finetune": TrainConfig.create(**common, strategy="top-k", top_k=2, head_epochs=0, finetune_epochs=ft_epochs),
        "auto": TrainConfig.create(
            **common, strategy="auto", budget=budget or float(os.environ.get("TRANSFERLAB_LESSON_BUDGET", "30"))
        ),
    }


@dataclass(frozen=True)
class LessonEstimate:
    """Seconds each arm's run is expected to take on this machine (`run_estimate`; auto: its budget)."""

    seconds: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def minutes(self) -> float:
        return self.total / 60


def lesson_estimate(
    data: str, backbone: str = DEFAULT_BACKBONE, data_root: str | None = None, progress: Progress = QUIET
) -> LessonEstimate:
    """How long the lesson's four runs on `data` take here, by the cost model every plan is costed with; the
    fine-tuning run reads the features the probe run, before it, extracted the same way."""
    progress("estimate the experiment", 0.0)
    configs = lesson_configs(data, backbone, data_root=data_root)
    ds = load_data(next(iter(configs.values())))
    estimate = LessonEstimate(
        {arm: run_estimate(cfg, ds, features_cached=arm == "finetune") for arm, cfg in configs.items()}
    )
    progress("estimate the experiment", 1.0)
    return estimate


@dataclass(frozen=True)
class LessonProgress:
    """The experiment in one status line: the arm under way (None once all ended), what it is doing in words, and
    the time left of all four (None while nothing is known of it)."""

    arm: str | None
    step: str
    left_s: float | None


def lesson_progress(views: dict[str, RunView], estimate: LessonEstimate | None, now: float) -> LessonProgress:
    """The run under way (the first running one, else the first queued one), its named step or epoch, and the time
    left: its own (`RunView.time_left`, or its estimate until it has one) plus the estimates of the runs queued."""
    pending = {arm: view for arm, view in views.items() if view.state not in TERMINAL}
    if not pending:
        return LessonProgress(None, "every run has ended", 0.0)
    running = [arm for arm, view in pending.items() if view.state == "running"]
    current = running[0] if running else next(iter(pending))
    bars = pending[current].bars()
    step = bars[-1].text if bars else "starting"
    each = [_run_left(arm, view, estimate, now) for arm, view in pending.items()]
    return LessonProgress(current, step, None if None in each else sum(each))


def _run_left(arm: str, view: RunView, estimate: LessonEstimate | None, now: float) -> float | None:
    """One run's time left: its own while it runs and knows it, else its estimate (None without one)."""
    own = view.time_left(now) if view.state == "running" else None
    if own is not None:
        return own
    return estimate.seconds.get(arm) if estimate is not None else None


def snapshot(run: Run) -> dict:
    """What `lesson_rows` reads of a run, in the shape of `Runner.snapshot` (which the dashboard already holds)."""
    return {
        "id": run.id,
        "status": run.status(),
        "metrics": run.read_json("metrics.json"),
        "events": run.events(),
        "plan": read_plan(run.path),
    }


@dataclass(frozen=True)
class LessonRow:
    """One arm of the lesson from its run's snapshot: test accuracy and its 95% interval, seconds, epochs trained,
    and the run's state (an arm still running has no test figure yet)."""

    arm: str
    label: str
    run_id: str
    state: str
    test_accuracy: float | None
    test_interval: tuple[float, float] | None
    test_n: int | None
    seconds: float | None
    epochs_trained: int

    def to_dict(self) -> dict:
        return asdict(self)


def lesson_rows(snapshots: dict[str, dict]) -> list[LessonRow]:
    """Per arm, in the lesson's order, the `LessonRow` of its run's snapshot (stored metrics, events, status)."""
    rows = []
    for arm in ARMS:
        snap = snapshots.get(arm)
        if snap is None:
            continue
        view = RunView.of(snap)
        r = view.result or RunResult()
        rows.append(
            LessonRow(
                arm=arm,
                label=ARM_TEXT[arm],
                run_id=view.id,
                state=view.state,
                test_accuracy=r.test_accuracy,
                test_interval=None if r.test_interval is None else tuple(r.test_interval),
                test_n=r.test_n,
                seconds=r.seconds if view.result else None,
                epochs_trained=view.epochs_trained,
            )
        )
    return rows


def lesson_sentence(rows: list[LessonRow]) -> str:
    """The experiment in one sentence a non-engineer can read, from the rows that have a test figure."""
    done = [r for r in rows if r.test_accuracy is not None]
    if not done and all(r.state in TERMINAL for r in rows):
        return (
            "The runs ended without a test split (too few photos per class to hold some out), so there is no "
            "honest comparison on new photos; compare their validation curves above instead."
        )
    if not done:
        return "The experiment is still running; each result appears here as its run ends."
    parts = "; ".join(f"{ARM_TEXT[r.arm]}: {r.test_accuracy:.0%} in {r.seconds:.0f} s" for r in done)
    return f"{parts[0].upper()}{parts[1:]} (on {done[0].test_n} test photos nothing was chosen on)."
