"""The forward pace a probe measured, and what other forward passes cost at it: another backbone's probe or the
final scoring, scaled by their FLOPs (`engine.model.profile`)."""

from __future__ import annotations

from typing import NamedTuple

from engine.data.spec import InputSpec
from engine.model.profile import profile
from engine.probe.features import feature_views
from engine.probe.linear import ProbeResult


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
