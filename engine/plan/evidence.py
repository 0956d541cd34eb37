"""The evidence a plan is decided from: the probes (every stage's features of the configured backbone, and for auto of
the other bundled backbones that fit its budget), the heads auto scored by cross-validation, the head the run starts
from, the forward pace they measured and the time planning has taken.

`gather` is the first stage of the planner's pipeline (`engine.plan.make`): it reads photos and runs networks; what it
returns is decided on without reading anything again.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.model.taps import FINAL
from engine.timeleft import Meter
from engine.plan import auto
from engine.plan.parts import DistillPart
from engine.plan.budget import Pace, extract_seconds, score_seconds
from engine.plan.config import TrainConfig
from engine.plan.reasons import Decision
from engine.plan.domain import Targets, head_distance
from engine.plan.param_budget import budget_decision, cut_for, keeps
from engine.plan.rules import FIXED_S
from engine.probe.choose import HeadChoice, choose_head
from engine.probe.features import feature_views
from engine.probe.linear import FEATURES_SHARE, LinearFit, ProbeResult, fit_taps, probe, spec_for
from engine.progress import QUIET, Progress, Step


@dataclass(frozen=True)
class Request:
    """What a plan is made for: the config, its data and target photos, the kind of device it is costed for, and who
    watches the planning."""

    cfg: TrainConfig
    ds: Dataset
    targets: Targets = Targets(None)
    device: str = "cpu"
    progress: Progress = QUIET
    distill: DistillPart = DistillPart()  # the teacher of a distilled run (engine.plan.distill)


@dataclass(frozen=True)
class Evidence:
    """What a plan is decided from: the backbone and input contract it runs, the head the probe or auto's choice
    gives it, the candidates that were scored, and (auto) the seconds left for fine-tuning; the forward pace measured
    and the seconds planning took."""

    backbone: str
    spec: InputSpec
    taps: tuple[int, ...] = (FINAL,)
    flip: bool = False  # mirror-image averaging
    probe: ProbeResult | None = None  # the configured backbone's probe (None from scratch, or before it has run)
    probes: tuple[ProbeResult, ...] = ()  # every backbone probed, the configured one first
    head: LinearFit | None = None  # the linear head the run starts from
    scored: tuple[HeadChoice, ...] = ()  # auto's candidates, as cross-validation scored them
    metric: str = ""  # what scored them
    choice: HeadChoice | None = None  # auto's chosen head
    seconds_left: float = 0.0  # auto: the budget left for fine-tuning
    speed: float = 0.0  # images/s of a forward pass, as the probe measured it (0: the profile's, no decoding)
    elapsed: float = 0.0  # seconds of planning so far
    decisions: tuple[Decision, ...] = ()  # auto's head, and with target photos why a head closer to them was kept

    @property
    def pace(self) -> float:
        return self.speed or (self.probe.images_per_s if self.probe else 0.0)

    @property
    def chosen(self) -> HeadChoice | None:
        """The scored candidate that is auto's choice."""
        c = self.choice
        if c is None:
            return None
        same = (c.taps, c.c, c.backbone, c.flip)
        return next((s for s in self.scored if (s.taps, s.c, s.backbone, s.flip) == same), None)

    @property
    def head_probe(self) -> ProbeResult | None:
        """The probe of the backbone the run trains (its features are the head's)."""
        return next((p for p in self.probes if p.backbone == self.backbone), None)

    @property
    def stage_names(self) -> dict[int, str]:
        p = self.head_probe or self.probe
        return {c["tap"]: c["name"] for c in (p.stage_curve if p else [])} or {FINAL: "final features"}


def gather(req: Request, estimate: Callable[[float], float] | None = None) -> Evidence:
    """The evidence for the request: nothing from scratch; the configured backbone's probe for a fixed strategy; for
    auto, the other probes that fit, the heads scored and chosen (the one closest to the target photos, when there
    are some), and the time left for fine-tuning. As soon as the first probe's pace is measured, the request's
    progress hears how long the rest will take: auto's forecast, or a fixed strategy's `estimate(images/s)`."""
    cfg, ds = req.cfg, req.ds
    t0 = time.perf_counter()
    spec = spec_for(ds, cfg.backbone, cfg.data.in_chans)
    if cfg.optim.strategy == "scratch":
        return Evidence(cfg.backbone, spec, elapsed=time.perf_counter() - t0)
    early = _Early(req, spec, t0, estimate)
    first = _probe(req, cfg.backbone, spec, early)
    if cfg.optim.strategy != "auto":
        return _fixed(req, first, t0)
    fc = auto.forecast(cfg, ds, Pace.of(first, req.device), _since(t0), spec_for, early.others)
    req.progress.expect(fc.left_s)  # the run's length as the whole first probe measured it
    probes = _other_probes(req, first, fc, t0)
    if not fc.fine_tunes:  # from here the time left is the choice's own (from its pace), then validating and scoring
        req.progress.expect_after("choose the head", fc.finish_s)
    choice, scored, metric, decisions = _choose(req, probes)
    p = next(q for q in probes if q.backbone == choice.backbone)
    head = fit_taps(p.features, choice.taps, len(ds.classes), choice.flip, choice.c, choice.balanced)
    # what is left for fine-tuning: the budget (less a safety margin) after planning, validating the starting head,
    # saving and scoring the test split
    n_scored = len(ds.test) + 2 * len(ds.val)
    finish = score_seconds(Pace.of(p, req.device), p.backbone, p.input_spec, n_scored) + FIXED_S
    return Evidence(
        p.backbone,
        p.input_spec,
        taps=choice.taps,
        flip=choice.flip,
        probe=first,
        probes=tuple(probes),
        head=head,
        scored=tuple(scored),
        metric=metric,
        choice=choice,
        seconds_left=auto.SAFETY * auto.budget_of(cfg) - _since(t0) - finish,
        speed=p.images_per_s,
        elapsed=_since(t0),
        decisions=decisions,
    )


def _fixed(req: Request, first: ProbeResult, t0: float) -> Evidence:
    """A fixed strategy's evidence: the probe's head on the final features, or under a parameter budget on the stage
    the cut backbone ends with (`engine.plan.param_budget`)."""
    max_params = req.cfg.optim.max_params
    if max_params is None:
        return Evidence(
            first.backbone, first.input_spec, probe=first, probes=(first,), head=first.head, elapsed=_since(t0)
        )
    n_classes = len(req.ds.classes)
    tap, decision = cut_for(first, n_classes, max_params)
    head = first.head if tap == FINAL else fit_taps(first.features, (tap,), n_classes)
    return Evidence(
        first.backbone,
        first.input_spec,
        taps=(tap,),
        probe=first,
        probes=(first,),
        head=head,
        elapsed=_since(t0),
        decisions=(decision,),
    )


class _Early:
    """Told the first probe's pace once it is measured (`_PacedProbe`): the run's length from it, for the time left
    shown while the probe goes on (auto's forecast, which also decides the other probes, made once; a fixed
    strategy's plan does not depend on the probe's result, so its estimate at that pace is the run's)."""

    def __init__(self, req: Request, spec: InputSpec, t0: float, estimate: Callable[[float], float] | None):
        self.req, self.spec, self.t0, self.estimate = req, spec, t0, estimate
        self.others: tuple[str, ...] | None = None  # auto's other probes, once forecast

    def __call__(self, speed: float, probe_end: float) -> None:
        cfg, progress = self.req.cfg, self.req.progress
        step = f"probe {cfg.backbone}"
        if cfg.optim.strategy == "auto":
            pace = Pace(cfg.backbone, self.spec.input_size[-1], speed, self.req.device)
            rest = auto.forecast(cfg, self.req.ds, pace, probe_end - self.t0, spec_for)
            self.others = rest.others
            progress.expect_after(step, rest.left_s)
        elif self.estimate is not None:
            progress.expect_after(step, self.estimate(speed))


def _since(t0: float) -> float:
    return time.perf_counter() - t0


def _other_probes(req: Request, first: ProbeResult, fc: auto.Forecast, t0: float) -> list[ProbeResult]:
    """The first probe and the others auto's forecast chose, each probed only while it still fits the budget."""
    cfg, ds = req.cfg, req.ds
    probes, pace = [first], Pace.of(first, req.device)
    for name in fc.others:
        spec = spec_for(ds, name, cfg.data.in_chans)
        est = extract_seconds(pace, name, spec, len(ds.train) + len(ds.val), cfg.runtime.probe_mirror)
        score_s = score_seconds(pace, name, spec, len(ds.test) + 2 * len(ds.val))
        if auto.probe_fits(_since(t0), est, len(probes), score_s, auto.budget_of(cfg)):
            probes.append(_probe(req, name, spec))
    return probes


def _choose(req: Request, probes: list[ProbeResult]) -> tuple[HeadChoice, list[HeadChoice], str, tuple[Decision, ...]]:
    """Auto's head, as the step "choose the head": (choice, the scored candidates, their metric, and the decisions:
    the head, and with target photos why a head closer to them was kept)."""
    cfg, ds, photos = req.cfg, req.ds, req.targets.photos
    choosing = req.progress.step("choose the head")
    choosing(0.0)
    choice, scored, metric = choose_head(
        probes,
        len(ds.classes),
        _imbalance(ds),
        seconds=max(5.0, auto.CHOOSE_SHARE * auto.budget_of(cfg)),
        progress=choosing,
        keep=keeps(probes, len(ds.classes), cfg.optim.max_params),
    )
    head = auto.head_decision(ds, tuple(scored), choice, metric)
    closer = None
    if photos is not None:
        by_name = {p.backbone: p for p in probes}

        def distance(c: HeadChoice) -> float:
            weights = cfg.weights if c.backbone == probes[0].backbone else "auto"
            return head_distance(by_name[c.backbone], c.taps, photos, weights, cfg.data.in_chans)

        choice, closer = auto.closer_head(choice, tuple(scored), distance)
    choosing(1.0)
    said = (head,) + ((closer,) if closer is not None else ())
    if cfg.optim.max_params is not None:
        chosen = next(p for p in probes if p.backbone == choice.backbone)
        cut = budget_decision(chosen, choice.taps, len(ds.classes), cfg.optim.max_params, "cross-validation")
        said = (cut, *said)
    return choice, scored, metric, said


def _probe(
    req: Request, name: str, spec: InputSpec, early: Callable[[float, float], None] | None = None
) -> ProbeResult:
    """The probe of `name` as the step "probe <name>"; `early(images/s, expected end)` is told the extraction's pace
    once a sixth of it past its first batch is done, or at its end (never from the cache)."""
    cfg, ds = req.cfg, req.ds
    n_images = len(ds.train) + len(ds.val)
    passes = feature_views(n_images, cfg.runtime.probe_mirror) * n_images
    step = _PacedProbe(req.progress, f"probe {name}", passes, early)
    step(0.0)
    r = probe(
        ds,
        name,
        cfg.weights if name == cfg.backbone else "auto",
        per_stage=cfg.optim.strategy == "auto" or cfg.optim.max_params is not None,
        in_channels=cfg.data.in_chans,
        spec=spec,
        progress=step,
        mirror=cfg.runtime.probe_mirror,
    )
    step(1.0)
    return r


def probe_for(req: Request) -> ProbeResult:
    """The configured backbone's probe (from the feature cache when its features are there)."""
    return _probe(req, req.cfg.backbone, spec_for(req.ds, req.cfg.backbone, req.cfg.data.in_chans))


class _PacedProbe(Step):
    """A probe's step that tells `early(images/s, expected end)` the extraction's pace (the first `FEATURES_SHARE` of
    the step, measured by an `engine.timeleft.Meter`) once it has moved a sixth past its first batch, or when it
    ends."""

    def __init__(self, progress: Progress, name: str, passes: int, early: Callable[[float, float], None] | None):
        super().__init__(progress, name)
        self.passes, self.early, self.meter = passes, early, Meter()

    def __call__(self, fraction: float) -> None:
        f = fraction / FEATURES_SHARE  # the extraction's own fraction
        if self.early is not None and 0 < f <= 1:
            self.meter.report(min(f, 1.0))
            first = self.meter.seen[0][1]
            if f - first >= 1 / 6 or f >= 1 > first:
                now = self.meter.clock()
                end = now + self.meter.left(now, since_first=True)  # the features' end at this pace
                self.early(self.passes / (end - self.meter.started), now + (end - now) / FEATURES_SHARE)
                self.early = None  # told once
        super().__call__(fraction)


def _imbalance(ds: Dataset) -> float:
    counts = Counter(it.label for it in ds.train)
    return max(counts.values()) / max(1, min(counts.values()))
