"""Several backbones probed on the same data, each on its own cached features, ranked, with a verdict in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.data.dataset import Dataset
from engine.errors import TransferLabError
from engine.model.catalogue import get_entry
from engine.probe.linear import probe, spec_for
from engine.progress import QUIET, Progress, Step


@dataclass(frozen=True)
class ShootoutRow:
    """One backbone's probe: its val accuracy, seconds, parameters and weights, or the reason it could not run."""

    backbone: str
    accuracy: float | None
    seconds: float | None
    params_m: float
    weights: str | None  # where its weights came from
    problem: str = ""


@dataclass(frozen=True)
class Shootout:
    """The backbones ranked best first, and the verdict in words."""

    rows: tuple[ShootoutRow, ...]
    verdict: str

    def to_dict(self) -> dict:
        """As `shootout --json` prints it."""
        return {"rows": [asdict(r) for r in self.rows], "verdict": self.verdict}


def shootout(ds: Dataset, backbones: list[str], progress: Progress = QUIET, in_chans: int = 3) -> Shootout:
    """Probes each backbone (final features, each with its input contract for these photos, as a plan probes it) and
    ranks them. Each probe is the step "probe <name>", its share of `progress`.

    A backbone that fails (no weights, say) gets a row with its reason instead of stopping the others.

    Returns:
        The rows ranked by accuracy (the failed ones last) and the verdict.
    """
    rows = []
    for i, name in enumerate(backbones):
        step = Step(progress, f"probe {name}", i / len(backbones), (i + 1) / len(backbones))
        try:
            r = probe(ds, name, per_stage=False, in_channels=in_chans, spec=spec_for(ds, name, in_chans), progress=step)
            rows.append(ShootoutRow(name, r.accuracy, r.seconds, r.params_m, r.weights.source))
        except TransferLabError as e:
            rows.append(ShootoutRow(name, None, None, get_entry(name).params_m, None, str(e)))
    rows.sort(key=lambda r: (r.accuracy is None, -(r.accuracy or 0.0)))
    return Shootout(tuple(rows), verdict(rows, len(ds.val)))


def verdict(rows: list[ShootoutRow], n_val: int) -> str:
    """One paragraph: which backbone to pick and how sure that is (the val split's noise in points)."""
    ok = [r for r in rows if r.accuracy is not None]
    if not ok:
        return "No backbone could be probed: " + "; ".join(r.problem for r in rows)
    best = ok[0]
    noise = 100 * (best.accuracy * (1 - best.accuracy) / max(1, n_val)) ** 0.5
    text = f"{best.backbone} is best: {best.accuracy:.1%} of the {n_val} validation photos with a linear probe"
    if len(ok) > 1:
        second = ok[1]
        gap = 100 * (best.accuracy - second.accuracy)
        close = gap < 2 * noise
        text += f", {gap:.1f} points above {second.backbone} ({second.accuracy:.1%}). " + (
            f"That gap is within the noise of {n_val} photos (about ±{noise:.1f} points), so the smaller or "
            f"faster of the two is as good a choice."
            if close
            else f"That is more than the noise of {n_val} photos (about ±{noise:.1f} points)."
        )
    else:
        text += "."
    missing = [r for r in rows if r.accuracy is None]
    if missing:  # each with its own reason: missing weights are the usual one, not the only one
        text += " Not probed: " + "; ".join(f"{r.backbone}: {r.problem.rstrip('.')}" for r in missing) + "."
    return text
