"""One run as the Compare page and `engine runs` compare it: the probe-vs-fine-tune gap measured on the test split.

Every number comes from what the run stored (its plan, metrics and event log); nothing is scored again here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.metrics import mcnemar
from engine.plan.stored import read_plan
from engine.runs.events import EpochEnded, Record, RunStarted
from engine.runs.result import RunResult
from engine.runs.store import Run


def _seconds_to_start(events: list[Record]) -> float | None:
    """Seconds from the run's first start to its starting head's validation (epoch 0): what the probe's head cost."""
    start = next((e.t for e in events if isinstance(e, RunStarted)), None)
    head = next((e.t for e in events if isinstance(e, EpochEnded) and e.epoch == 0), None)
    return head - start if start is not None and head is not None else None


@dataclass(frozen=True)
class CompareRow:
    """One run as Compare shows it: its dataset (by path: two of one name stay apart), backbone and strategy; the
    probe's val accuracy; on test, the starting head (the probe's head on the pretrained backbone, epoch 0) and the
    chosen model (its best epoch on val), each with its 95% interval; and the seconds to each."""

    run: str
    dataset: str  # the label shown: the folder's name (see `dataset_labels` where two share it)
    dataset_path: str
    backbone: str | None
    strategy: str | None
    status: str | None
    probe: float | None
    val: float | None
    test: float | None
    test_interval: tuple[float, float] | None
    test_n: int | None
    start_test: float | None
    start_test_interval: tuple[float, float] | None
    best_epoch: int | None
    epochs_trained: int
    start_seconds: float | None
    seconds: float | None

    @property
    def gain(self) -> float | None:
        """The chosen model's test accuracy minus the starting head's, when both were scored."""
        return None if self.test is None or self.start_test is None else self.test - self.start_test


def compare_row(run: Run) -> CompareRow:
    """The run's `CompareRow`, from what it stored (plan, result, events, status)."""
    plan, r = read_plan(run.path), RunResult.read(run)
    events, status = run.events(), run.status()
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    return CompareRow(
        run=run.id,
        dataset=Path(plan.data.path).name if plan else "?",
        dataset_path=plan.data.path if plan else "?",
        backbone=plan.backbone if plan else None,
        strategy=plan.strategy if plan else None,
        status=status.get("state"),
        probe=plan.head.probe_accuracy if plan else None,
        val=status.get("best_val_acc") if r is None else r.best_val_acc,
        test=None if r is None else r.test_accuracy,
        test_interval=None if r is None or r.test_interval is None else tuple(r.test_interval),
        test_n=None if r is None else r.test_n,
        start_test=None if r is None else r.start_test_accuracy,
        start_test_interval=None if r is None or r.start_test_interval is None else tuple(r.start_test_interval),
        best_epoch=None if r is None else r.best_epoch,
        epochs_trained=max([e.epoch for e in epochs] or [0]),
        start_seconds=_seconds_to_start(events),
        seconds=None if r is None else r.seconds,
    )


def dataset_labels(rows: list[CompareRow]) -> dict[str, str]:
    """A label for each dataset of `rows`, keyed by its path: its folder's name, and where two datasets share a name,
    with as many of the folders above it as it takes to tell them apart."""
    by_name: dict[str, list[str]] = {}
    for path in dict.fromkeys(r.dataset_path for r in rows):
        by_name.setdefault(Path(path).name, []).append(path)
    labels = {}
    for name, found in by_name.items():
        if len(found) == 1:
            labels[found[0]] = name
            continue
        above = {p: Path(p).parts[:-1] for p in found}
        depth = next((d for d in range(1, 64) if len({parts[-d:] for parts in above.values()}) == len(found)), None)
        for p in found:
            labels[p] = f"{name} ({'/'.join(above[p][-depth:]) if depth else p})"
    return labels


VAL_COLUMN_HELP = {
    "probe": "The probe's score when the plan was made, on its cached features (computed at a lower precision where "
    "the machine has one, for speed); the run scores its own epochs as the saved model runs, so the same head can "
    "read a point apart.",
    "chosen": "The epoch the run kept, scored on val through the photos as the saved model runs.",
}


def gap_sentence(rows: list[CompareRow]) -> str:
    """What the chart shows in words: the largest gain of a run's chosen model over its starting head, on test."""
    both = [r for r in rows if r.gain is not None]
    if not both:
        return (
            "No run here has a test split scored for both its starting head and its chosen model yet (runs "
            "started before this version, or too few photos for a test split)."
        )
    if not any(r.epochs_trained for r in both):
        return (
            "No run here trained an epoch (each plan kept the linear probe's head on the frozen network), so both "
            "bars are one model: the linear probe is the model here."
        )
    top = max(both, key=lambda r: r.gain)
    if top.best_epoch == 0 or top.gain <= 0:
        return (
            "No trained epoch beat the probe's head on val in these runs, so each kept its head: the linear probe "
            "is the model here."
        )
    return (
        f"Run {top.run} ({top.strategy}) went from {top.start_test:.0%} with the probe's head to "
        f"{top.test:.0%} after fine-tuning (epoch {top.best_epoch}), on {top.test_n} test photos nothing "
        "was chosen on; the bars' whiskers are 95% intervals, so a gain inside them may be chance."
    )


SIGNIFICANCE = 0.05  # "better" only when McNemar's test says so at 95%


@dataclass(frozen=True)
class PairedTest:
    """Two runs' chosen models on the same test photos: the photos each got right that the other got wrong, and
    McNemar's exact test of whether the difference is more than chance."""

    a: str  # run ids
    b: str
    n: int  # test photos both scored
    only_a: int  # right by a, wrong by b
    only_b: int
    p_value: float

    @property
    def difference(self) -> float:
        """a's test accuracy minus b's, on these photos."""
        return (self.only_a - self.only_b) / self.n if self.n else 0.0

    @property
    def better(self) -> str | None:
        """The run that is better at 95%, or None when the difference may be chance."""
        if self.p_value >= SIGNIFICANCE or self.only_a == self.only_b:
            return None
        return self.a if self.only_a > self.only_b else self.b

    @property
    def verdict(self) -> str:
        """In a few words: which is better, or that the difference may be chance."""
        return "may be chance" if self.better is None else f"{self.better} is better"

    @property
    def sentence(self) -> str:
        """The verdict in words, with its counts."""
        counts = (
            f"on the same {self.n} test photos, {self.a} got {self.only_a} right that {self.b} got wrong and "
            f"{self.b} {self.only_b} that {self.a} got wrong (McNemar's exact test, p = {self.p_value:.3f})"
        )
        if self.better is None:
            return f"{self.a} and {self.b} differ by {abs(self.difference):.1%}, which may be chance: {counts}."
        worse = self.b if self.better == self.a else self.a
        return f"{self.better} is better than {worse} by {abs(self.difference):.1%}, beyond chance at 95%: {counts}."


def paired_test(a: RunResult | None, b: RunResult | None) -> PairedTest | None:
    """McNemar's test of two runs' chosen models (their results, each read once by the caller) on their test photos;
    None unless both scored the very same test photos with the same labels (two datasets, or a test split carved
    differently, cannot be paired)."""
    if a is None or b is None or not a.test_pred or not b.test_pred:
        return None
    right_a = {p: (y, int(y == q)) for p, y, q in zip(a.test_paths, a.test_labels, a.test_pred)}
    right_b = {p: (y, int(y == q)) for p, y, q in zip(b.test_paths, b.test_labels, b.test_pred)}
    if right_a.keys() != right_b.keys() or any(right_a[p][0] != right_b[p][0] for p in right_a):
        return None
    only_a = sum(right_a[p][1] > right_b[p][1] for p in right_a)
    only_b = sum(right_b[p][1] > right_a[p][1] for p in right_a)
    return PairedTest(a.run_id, b.run_id, len(right_a), only_a, only_b, mcnemar(only_a, only_b))
