"""Auto's time budget: what probing another backbone, scoring and fine-tuning will cost here, scaled from the speed
the first probe measured, and the whole plan's length as soon as that speed is known."""

from __future__ import annotations

from typing import Callable, NamedTuple

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.model.catalogue import list_entries
from engine.model.cost import epoch_seconds
from engine.model.profile import architecture, profile
from engine.model.weights import availability
from engine.plan.config import DEFAULT_BUDGET_S, TrainConfig
from engine.plan.rules import FIXED_S, finetune_depth, probe_fits
from engine.probe.features import feature_views
from engine.probe.linear import ProbeResult

SAFETY = 0.93  # of the budget, planned; the rest absorbs the estimates' error
CHOOSE_SHARE = 0.15  # of the budget, at most, for scoring the candidate heads


class Pace(NamedTuple):
    """A measured speed: `backbone` at `size` px made `images_per_s` forward passes a second (feature extraction) on
    a `device` of that kind."""

    backbone: str
    size: int
    images_per_s: float
    device: str = "cpu"

    @classmethod
    def of(cls, probe: ProbeResult, device: str = "cpu") -> "Pace":
        return cls(probe.backbone, probe.input_spec.input_size[-1], probe.images_per_s or 50.0, device)

    def seconds(self, name: str, spec: InputSpec, passes: float) -> float:
        """Seconds for `passes` forward passes of `name` at `spec`'s size, scaled from this pace by their FLOPs."""
        theirs = profile(name, spec.input_size[-1], self.device).total_flops
        return passes / self.images_per_s * theirs / profile(self.backbone, self.size, self.device).total_flops


def extract_seconds(pace: Pace, name: str, spec: InputSpec, n_images: int, mirror: bool = True) -> float:
    """Feature extraction time of `name` (every view) on `n_images`."""
    return pace.seconds(name, spec, feature_views(n_images, mirror) * n_images)


def score_seconds(pace: Pace, name: str, spec: InputSpec, n_images: int, views: int = 2) -> float:
    """Scoring `n_images` with `name`, both views by default (the chosen head may average an image and its mirror
    image: the pessimistic count budgets reserve)."""
    return pace.seconds(name, spec, views * n_images)


def other_bundled(first: str, weights: str) -> list[str]:
    """The other backbones whose weights ship with TransferLab (auto's shoot-out), when no weights file was given."""
    if weights != "auto":
        return []
    return [e.name for e in list_entries() if e.bundled and e.name != first and availability(e.name)["available"]]


class Forecast(NamedTuple):
    """What auto still needs after its first probe: `left_s` in all, of which `finish_s` after the head is chosen
    (validating it, scoring and saving) when `fine_tunes` is False (else the run fills the budget); `others`, the
    backbones it probes next."""

    left_s: float
    finish_s: float
    fine_tunes: bool
    others: tuple[str, ...]


# PLR0913: the forecast's measured inputs
def forecast(  # noqa: PLR0913
    cfg: TrainConfig,
    ds: Dataset,
    pace: Pace,
    elapsed: float,
    spec_for: Callable[[Dataset, str, int], InputSpec],
    others: tuple[str, ...] | None = None,
) -> Forecast:
    """Seconds the auto run still needs once its first probe ends (`elapsed` seconds in, at `pace`): the other probes
    that fit (or `others`, when already decided), choosing the head, the final scoring, and fine-tuning up to the
    budget when one epoch of the top group fits it (as `make_plan` decides)."""
    budget, n_tv = cfg.optim.budget or DEFAULT_BUDGET_S, len(ds.train) + len(ds.val)
    first = spec_for(ds, pace.backbone, cfg.data.in_chans)
    t, probed = elapsed, []
    for name in other_bundled(cfg.backbone, cfg.weights):
        spec = spec_for(ds, name, cfg.data.in_chans)
        est = extract_seconds(pace, name, spec, n_tv, cfg.runtime.probe_mirror)
        score_s = score_seconds(pace, name, spec, len(ds.test) + 2 * len(ds.val))
        fits = probe_fits(t, est, len(probed) + 1, score_s, SAFETY * budget)  # after the first probe and these
        if name in others if others is not None else fits:
            t, probed = t + est, probed + [name]
    t += CHOOSE_SHARE * budget
    finish = score_seconds(pace, pace.backbone, first, len(ds.test) + 2 * len(ds.val)) + FIXED_S
    groups = architecture(pace.backbone).groups
    prof = profile(pace.backbone, pace.size, pace.device)

    def epoch(k: int) -> float:  # the top group's epoch (both views: the pessimistic count)
        return epoch_seconds(prof, list(groups[-1 - k : -1]), len(ds.train), len(ds.val), pace.images_per_s, 2)

    if finetune_depth(epoch, 1, SAFETY * budget - t - finish)[1] > 0:  # the rule the plan decides by
        return Forecast(SAFETY * budget - elapsed, finish, True, tuple(probed))
    # no epoch to train: validating the starting head is the val score, then the test split; each photo read once, as
    # most chosen heads read it (the plan counts the mirror image too once a head that averages it is chosen)
    finish = score_seconds(pace, pace.backbone, first, len(ds.test) + len(ds.val), views=1) + FIXED_S
    return Forecast(t + finish - elapsed, finish, False, tuple(probed))
