"""Making the plan: load and check the data, probe, choose the head by evidence (auto), fit the rest into the time
budget, and store the result so that whatever shows the plan and whatever runs it read the same object.

A plan is made once per (config, data): `get_plan` returns the stored one when it exists. `engine plan`, the Train
page's preview and `engine train` all go through it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from engine import paths
from engine.data.batch_augment import device_input, device_input_setting, pixel_bytes
from engine.data.dataset import Dataset, load_dataset
from engine.data.decisions import apply_decisions
from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.model.catalogue import get_entry, is_transformer
from engine.model.cost import epoch_seconds
from engine.model.device import pick_device
from engine.model.profile import architecture, profile
from engine.model.resources import plan_bytes, views_that_fit
from engine.model.taps import FINAL
from engine.model.weights import loaded_once
from engine.plan.budget import CHOOSE_SHARE, SAFETY, Pace, extract_seconds, forecast, score_seconds
from engine.plan.config import DEFAULT_BUDGET_S, TrainConfig
from engine.plan.cost import costed
from engine.plan.domain import (
    NormChoice,
    Targets,
    apply_targets,
    choose_target_norm,
    closest_head,
    load_targets,
    refitted,
)
from engine.plan.rules import (
    BANDS,
    BASE_LR,
    DEFAULT_EPOCHS,
    FIXED_S,
    HEAD_LR,
    MIN_FINETUNE_EPOCHS,
    STRATEGY_TEXT,
    Plan,
    band,
    discriminative,
    finetune_depth,
    group_labels,
    layer_decay,
    norm_note,
    probe_fits,
)
from engine.plan.target_bn import BnChoice, choose_target_bn
from engine.plan.trials import TrialChoice, try_adaptation
from engine.plan.stored import PLAN_VERSION, Planned, load_planned, save_planned
from engine.probe.check import exact_leaks, stored_leaks
from engine.probe.choose import HeadChoice, choose_head, label_of
from engine.probe.features import FIT_BYTES_PER_VALUE, feature_views, fit_rows
from engine.probe.linear import FEATURES_SHARE, LinearFit, ProbeResult, fit_taps, probe, spec_for
from engine.progress import QUIET, Progress, Step

AUTO_LR = 1e-4  # auto's fine-tuning starts at the probe's optimum: a tenth of the usual head rate, as in LP-FT


def plan_key(cfg: TrainConfig, fingerprint: str, device_type: str, target_fp: str = "") -> str:
    """The stored plan's key: the config, the data (and the target photos) and the kind of device the plan was costed
    for (its epochs and paths follow that device's pace)."""
    raw = json.dumps(
        {**cfg.to_dict(), "device": device_type, "v": PLAN_VERSION, "data_fp": fingerprint, "target_fp": target_fp},
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def get_plan(cfg: TrainConfig, progress: Progress = QUIET, device: torch.device | None = None) -> Planned:
    """The stored plan for `cfg` and its data, or a new one (then stored). Each part is a named step of
    `progress`."""
    progress("load and check data", 0.0)
    ds = load_data(cfg)
    targets = load_targets(cfg, ds)
    progress("load and check data", 1.0)
    device = device or pick_device(cfg.runtime.device)
    target_fp = targets.photos.fingerprint() if targets.photos is not None else ""
    folder = paths.sub("plans") / plan_key(cfg, ds.fingerprint(), device.type, target_fp)
    stored = load_planned(folder, ds)
    if stored is not None:
        return stored
    with loaded_once():  # each backbone is built once for the probe, the target photos and the trials
        planned = make_plan(cfg, ds, progress, device, targets)
        if targets.photos is not None or targets.test:
            planned.plan = _for_targets(cfg, planned, targets, progress, device)
    planned.plan = Plan.from_dict(json.loads(json.dumps(planned.plan.to_dict())))  # as stored, field by field
    save_planned(folder, planned)
    return planned


def _for_targets(cfg: TrainConfig, planned: Planned, targets: Targets, progress: Progress, device) -> Plan:
    """The plan's target section (engine.plan.domain), the target readings chosen on evidence for a head that starts
    from the probe (its standardisation, the refit, the BatchNorm statistics; then auto's adaptation trials), costed
    again: the target photos' passes and the adapted epochs count."""
    t0 = time.perf_counter()
    plan = planned.plan
    evidence: NormChoice | None = None
    bn: BnChoice | None = None
    trials: TrialChoice | None = None
    probe = next((p for p in planned.probes if p.backbone == plan.backbone), None)
    reg = cfg.regularisation
    if targets.photos is not None and probe is not None and planned.head is not None:
        measuring = progress.step("measure the target photos")
        measuring(0.0)
        same = (plan.backbone, plan.taps, plan.flip_tta, plan.head_cv)
        c = next(
            (c["c"] for c in plan.candidates if (c["backbone"], tuple(c["taps"]), c["flip"], c["cv"]) == same), 1.0
        )
        evidence = choose_target_norm(
            probe, planned.head, plan.taps, targets.photos, c, cfg.weights, cfg.data.in_chans, measuring
        )
        measuring(1.0)
        norm = evidence.target_norm if reg.target_norm is None else reg.target_norm
        if refitted(evidence, norm, reg.target_pseudo):
            planned.head = evidence.head  # the run starts from the head refitted with the confident target photos
            plan = replace(plan, head_accuracy=evidence.head.accuracy)
        if architecture(plan.backbone).has_batchnorm and reg.target_bn is not False and reg.target_norm is not False:
            bn = _bn_evidence(cfg, planned, probe, targets, norm, c, progress)
        spent = plan.plan_s + time.perf_counter() - t0
        auto = cfg.optim.strategy == "auto" and reg.adapt is None
        if auto and _finetune_fits(cfg, plan, targets, (evidence, bn), spent, device.type):
            trying = progress.step("try the simple fixes and adaptation")
            trying(0.0)
            train_paths = [it.path for it in planned.ds.train]
            trials = try_adaptation(probe, planned.head, plan, targets.photos, norm, cfg, train_paths, trying)
            trying(1.0)
    plan = apply_targets(plan, targets, cfg, evidence, trials, bn)
    if reg.target_bn and bn is None and targets.photos is not None:  # asked for and not done: the plan says why
        plan = replace(plan, target_reason=f"{plan.target_reason} {_bn_not_done(plan.backbone)}")
    plan = costed(cfg, plan, plan.images_per_s, device.type, plan.plan_s + time.perf_counter() - t0)
    return _in_budget(cfg, plan, device.type) if cfg.optim.strategy == "auto" else plan


# PLR0913: the config, the plan and the target evidence so far, the seconds spent, where it runs
def _finetune_fits(  # noqa: PLR0913
    cfg: TrainConfig,
    plan: Plan,
    targets: Targets,
    evidence: tuple[NormChoice | None, BnChoice | None],
    spent: float,
    device_type: str,
) -> bool:
    """Whether the plan still fine-tunes below the head once what the target photos cost so far (`spent` seconds of
    planning, the readings `evidence` chose) is counted, as `_in_budget` fits it without trials: the trials are
    worth their time only then."""
    if not plan.trains_below_head:
        return False
    so_far = apply_targets(plan, targets, cfg, evidence[0], bn=evidence[1])
    so_far = costed(cfg, so_far, plan.images_per_s, device_type, spent)
    return _in_budget(cfg, so_far, device_type).trains_below_head


def _in_budget(cfg: TrainConfig, plan: Plan, device_type: str) -> Plan:
    """Auto's epochs were fitted to the budget before the target photos were measured, and an adapted epoch also runs
    a target batch beside every batch, and the end check reads val and the target photos twice more: as many epochs
    as still fit; auto's own adaptation dropped when fewer than `MIN_FINETUNE_EPOCHS` would fit with it, and the
    linear head kept when fewer fit without; the reason says so."""
    if not plan.finetune_epochs or not plan.finetune_epoch_s:
        return plan
    budget = cfg.optim.budget or DEFAULT_BUDGET_S
    rest = plan.estimate_s - plan.finetune_epochs * plan.finetune_epoch_s
    fit = max(0, int((SAFETY * budget - rest) // plan.finetune_epoch_s))
    if fit >= plan.finetune_epochs:
        return plan
    if fit < MIN_FINETUNE_EPOCHS and plan.adapt != "none" and cfg.regularisation.adapt is None:
        note = (
            f" With {plan.adapt.upper()} an epoch takes about {plan.finetune_epoch_s:.0f} s here (a batch of target "
            f"photos beside every batch): {fit} epoch(s) would fit the {budget:.0f} s budget, so phase 2 adds no "
            f"adaptation loss after all."
        )
        unadapted = replace(plan, adapt="none", adapt_strength=0.0, target_reason=plan.target_reason + note)
        return _in_budget(cfg, costed(cfg, unadapted, plan.images_per_s, device_type), device_type)
    what = f"with {plan.adapt.upper()} " if plan.adapt != "none" else ""
    if fit >= MIN_FINETUNE_EPOCHS or plan.adapt != "none":  # an adaptation asked for keeps at least one epoch
        epochs = max(1, fit)
        note = (
            f" Measuring the target photos took time, and an epoch {what}takes about {plan.finetune_epoch_s:.0f} s "
            f"here: phase 2 runs {epochs} of the {plan.finetune_epochs} epochs above, to end within the {budget:.0f} s "
            f"budget."
        )
        warmup = min(plan.warmup_epochs, epochs)
        fitted = replace(plan, finetune_epochs=epochs, warmup_epochs=warmup, reason=plan.reason + note)
    else:
        head = len(plan.groups) - 1
        note = (
            f" Measuring the target photos took time: {fit} epoch(s) of about {plan.finetune_epoch_s:.0f} s would "
            f"fit the {budget:.0f} s budget, so the linear head is the model after all."
        )
        fitted = replace(
            plan,
            finetune_epochs=0,
            warmup_epochs=0,
            frozen=tuple(i != head for i in range(len(plan.groups))),
            lrs=tuple(lr if i == head else 0.0 for i, lr in enumerate(plan.lrs)),
            reason=plan.reason + note,
        )
    return costed(cfg, fitted, plan.images_per_s, device_type)


def _bn_not_done(backbone: str) -> str:
    """Why BatchNorm statistics asked to be re-estimated were not."""
    if not architecture(backbone).has_batchnorm:
        why = f"{backbone} has no BatchNorm layer (LayerNorm normalises each image itself)"
    else:
        why = "the run does not start from a probe's head, which is what the statistics are scored for"
    return f"BatchNorm re-estimation was asked for, but {why}: nothing is re-estimated."


# PLR0913: the config, the plan and its probe, the target photos and how the run starts reading them, who watches
def _bn_evidence(  # noqa: PLR0913
    cfg: TrainConfig, planned: Planned, probe: ProbeResult, targets: Targets, norm: bool, c: float, progress: Progress
) -> BnChoice:
    """`choose_target_bn` for the run's starting head, as the step "re-estimate BatchNorm on the target photos"."""
    step = progress.step("re-estimate BatchNorm on the target photos")
    step(0.0)
    bn = choose_target_bn(
        probe,
        planned.head,
        planned.plan.taps,
        targets.photos,
        norm,
        c,
        cfg.weights,
        cfg.data.in_chans,
        cfg.runtime.seed,
        step,
    )
    step(1.0)
    return bn


def load_data(cfg: TrainConfig) -> Dataset:
    """The dataset of `cfg`, split as every plan and run of it splits it."""
    d = cfg.data
    ds = load_dataset(
        d.path,
        d.val,
        d.val_fraction,
        cfg.runtime.seed,
        test=d.test,
        test_fraction=d.test_fraction,
        root=d.root,
        allow_outside=d.allow_outside_root,
    )
    ds, _ = apply_decisions(ds)  # relabel / exclude, as the person decided on the Data page or in the CSV
    _check(ds)
    return ds


def _check(ds: Dataset) -> None:
    if len(ds.classes) < 2:
        raise DataError(
            f"{ds.root}: a classifier needs at least 2 classes with training images, found "
            f"{len(ds.classes)} ({', '.join(ds.classes) or 'none'}); add a folder of images per class"
        )
    if not ds.val:
        raise DataError(f"{ds.root}: no validation images; add a val/ folder or let TransferLab split the data")


def make_plan(
    cfg: TrainConfig,
    ds: Dataset,
    progress: Progress = QUIET,
    device: torch.device | None = None,
    targets: Targets | None = None,
) -> Planned:
    """Probes (unless from scratch), chooses (auto) and resolves every field of the plan for `cfg` on `ds` (auto with
    target photos prefers the head closest to them, `closest_head`)."""
    t0, _ = time.perf_counter(), device_input_setting()  # a bad setting is refused before minutes of probing
    where = (device or pick_device(cfg.runtime.device)).type
    spec = spec_for(ds, cfg.backbone, cfg.data.in_chans)
    if cfg.optim.strategy == "scratch":
        return Planned(_resolve(cfg, ds, Evidence(cfg.backbone, spec, elapsed=time.perf_counter() - t0)), ds, None, [])
    decided: dict = {}
    if cfg.optim.strategy == "auto":  # the run's length, for the time left it shows: first from the probe's pace,

        def early(speed: float, probe_end: float) -> None:  # which also decides the other probes (made once)
            rest = forecast(cfg, ds, Pace(cfg.backbone, spec.input_size[-1], speed, where), probe_end - t0, spec_for)
            decided["others"] = rest.others
            progress.expect_after(f"probe {cfg.backbone}", rest.left_s)
    else:  # a fixed strategy's plan does not depend on the probe's result: costed at its pace, the rest is known

        def early(speed: float, probe_end: float) -> None:
            rest = _resolve(cfg, ds, Evidence(cfg.backbone, spec, speed=speed))
            progress.expect_after(f"probe {cfg.backbone}", rest.estimate_s)

    probes = [_probe(cfg, ds, cfg.backbone, spec, progress, early)]
    if cfg.optim.strategy == "auto":  # then as the whole probe measured it
        fc = forecast(cfg, ds, Pace.of(probes[0], where), time.perf_counter() - t0, spec_for, decided.get("others"))
        progress.expect(fc.left_s)
    if cfg.optim.strategy != "auto":
        p = probes[0]
        evidence = Evidence(p.backbone, p.input_spec, probe=p, head=p.head, elapsed=time.perf_counter() - t0)
        return Planned(_resolve(cfg, ds, evidence), ds, p.head, probes)
    budget, n_test, pace = cfg.optim.budget or DEFAULT_BUDGET_S, len(ds.test), Pace.of(probes[0], where)
    for name in fc.others:  # as forecast; never past the budget itself
        other_spec = spec_for(ds, name, cfg.data.in_chans)
        est = extract_seconds(pace, name, other_spec, len(ds.train) + len(ds.val), cfg.runtime.probe_mirror)
        score_s = score_seconds(pace, name, other_spec, n_test + 2 * len(ds.val))
        if not probe_fits(time.perf_counter() - t0, est, len(probes), score_s, budget):
            continue
        probes.append(_probe(cfg, ds, name, other_spec, progress))
    if not fc.fine_tunes:  # from here the time left is the choice's own (from its pace), then validating and scoring
        progress.expect_after("choose the head", fc.finish_s)
    choice, scored, metric, closer = _choose(cfg, ds, probes, progress, targets)
    p = next(q for q in probes if q.backbone == choice.backbone)
    head = fit_taps(p.features, choice.taps, len(ds.classes), choice.flip, choice.c, choice.balanced)
    # what is left for fine-tuning: the budget (less a safety margin) after planning, validating the starting head,
    # saving and scoring the test split
    finish = score_seconds(Pace.of(p, where), p.backbone, p.input_spec, n_test + 2 * len(ds.val)) + FIXED_S
    left = SAFETY * budget - (time.perf_counter() - t0) - finish
    evidence = Evidence(
        p.backbone,
        p.input_spec,
        taps=choice.taps,
        flip=choice.flip,
        probe=probes[0],
        head=head,
        scored=tuple(scored),
        metric=metric,
        choice=choice,
        seconds_left=left,
        speed=p.images_per_s,
        elapsed=time.perf_counter() - t0,
    )
    plan = _resolve(cfg, ds, evidence)
    return Planned(replace(plan, target_reason=closer) if closer else plan, ds, head, probes)


def _choose(
    cfg: TrainConfig, ds: Dataset, probes: list[ProbeResult], progress: Progress, targets: Targets | None
) -> tuple[HeadChoice, list[HeadChoice], str, str]:
    """Auto's head, as the step "choose the head": (choice, the scored candidates, their metric, and with target
    photos the sentence on why a head closer to them was kept)."""
    budget = cfg.optim.budget or DEFAULT_BUDGET_S
    choosing = progress.step("choose the head")
    choosing(0.0)
    choice, scored, metric = choose_head(
        probes, len(ds.classes), _imbalance(ds), seconds=max(5.0, CHOOSE_SHARE * budget), progress=choosing
    )
    closer = ""
    if targets is not None and targets.photos is not None:
        choice, closer = closest_head(choice, scored, probes, targets.photos, cfg.weights, cfg.data.in_chans)
    choosing(1.0)
    return choice, scored, metric, closer


# PLR0913: the probe's backbone and input, and who watches it
def _probe(  # noqa: PLR0913
    cfg: TrainConfig,
    ds: Dataset,
    name: str,
    spec: InputSpec,
    progress: Progress,
    early: Callable[[float, float], None] | None = None,
) -> ProbeResult:
    """The probe of `name` as the step "probe <name>"; `early(images/s, expected end)` is told the extraction's pace
    once a sixth of it past its first batch is done, or at its end (never from the cache)."""
    n_images = len(ds.train) + len(ds.val)
    step = _PacedProbe(progress, f"probe {name}", feature_views(n_images, cfg.runtime.probe_mirror) * n_images, early)
    step(0.0)
    r = probe(
        ds,
        name,
        cfg.weights if name == cfg.backbone else "auto",
        per_stage=cfg.optim.strategy == "auto",
        in_channels=cfg.data.in_chans,
        spec=spec,
        progress=step,
        mirror=cfg.runtime.probe_mirror,
    )
    step(1.0)
    return r


class _PacedProbe(Step):
    """A probe's step that tells `early(images/s, expected end)` the extraction's pace (the first `FEATURES_SHARE` of
    the step) once it has moved a sixth past its first batch, or when it ends."""

    def __init__(self, progress: Progress, name: str, passes: int, early: Callable[[float, float], None] | None):
        super().__init__(progress, name)
        self.passes, self.early, self.t0 = passes, early, time.perf_counter()
        self.first: tuple[float, float] | None = None  # (time, extraction fraction) of the first batch

    def __call__(self, fraction: float) -> None:
        f = fraction / FEATURES_SHARE  # the extraction's own fraction
        if self.early is not None and 0 < f <= 1:
            now = time.perf_counter()
            t1, f1 = self.first = self.first or (now, f)
            if f - f1 >= 1 / 6 or f >= 1 > f1:
                end = now + (1 - f) * (now - t1) / (f - f1)  # the features' end at this pace
                self.early(self.passes / (end - self.t0), now + (end - now) / FEATURES_SHARE)  # with its start
                self.early = None  # told once
        super().__call__(fraction)


def _imbalance(ds: Dataset) -> float:
    counts = Counter(it.label for it in ds.train)
    return max(counts.values()) / max(1, min(counts.values()))


@dataclass(frozen=True)
class Evidence:
    """What a plan is resolved from: the backbone and input contract it runs, the head the probe or auto's choice
    gives it, the candidates that were scored, and (auto) the seconds left for fine-tuning and the pace measured."""

    backbone: str
    spec: InputSpec
    taps: tuple[int, ...] = (FINAL,)
    flip: bool = False  # mirror-image averaging
    probe: ProbeResult | None = None  # the first backbone's probe (None from scratch, or before the probe has run)
    head: LinearFit | None = None  # the linear head the run starts from
    scored: tuple[HeadChoice, ...] = ()  # auto's candidates, as cross-validation scored them
    metric: str = ""  # what scored them
    choice: HeadChoice | None = None  # auto's chosen head
    seconds_left: float = 0.0  # auto: the budget left for fine-tuning
    speed: float = 0.0  # images/s of a forward pass, as the probe measured it (0: the probe's own)
    elapsed: float = 0.0  # seconds of planning so far

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


@dataclass(frozen=True)
class Phases:
    """A strategy's training: which groups train in phase 2, each phase's epochs, how, and why."""

    trainable: list[int]
    head_epochs: int
    finetune_epochs: int
    warmup_epochs: int
    augment: str
    bn_frozen_stats: bool
    base_lr: float
    reason: str


def _resolve(cfg: TrainConfig, ds: Dataset, ev: Evidence) -> Plan:
    """Every field of the plan for the strategy, from the evidence (the probe, and for auto its choice and the time
    left), costed step by step."""
    groups = list(architecture(ev.backbone).groups_for(tuple(ev.taps)))
    phases = _phases(cfg, ds, ev, groups)
    names = {c["tap"]: c["name"] for c in (ev.probe.stage_curve if ev.probe else [])} or {FINAL: "final features"}
    k = views_that_fit(len(ds.train), architecture(ev.backbone).head_dim(tuple(ev.taps)), cfg.runtime.views)
    reason = phases.reason + _views_note(cfg, ds, k, phases) + _probe_note(cfg, ds, ev)
    reason += "".join(f" {note}" for note in ds.notes)
    init = "random" if cfg.optim.strategy == "scratch" else "probe"
    ram, disk = _footprint(cfg, ds, ev, k, phases)
    chosen = ev.chosen
    plan = Plan(
        data=cfg.data.path,
        fingerprint=ds.fingerprint(),
        backbone=ev.backbone,
        in_chans=cfg.data.in_chans,
        input_spec=ev.spec.to_dict(),
        strategy=cfg.optim.strategy,
        taps=tuple(ev.taps),
        tap_label=label_of(tuple(ev.taps), names, ev.flip),
        flip_tta=ev.flip,
        head_init=init,
        groups=tuple(groups),
        labels=tuple(group_labels(groups)),
        head_lr=cfg.optim.head_lr or HEAD_LR[init],
        head_epochs=phases.head_epochs,
        frozen=tuple(i not in phases.trainable for i in range(len(groups))),
        lrs=tuple(_rates(cfg, ev, len(groups), phases)),
        finetune_epochs=phases.finetune_epochs,
        warmup_epochs=phases.warmup_epochs,
        augment=phases.augment,
        bn_frozen_stats=phases.bn_frozen_stats,
        batch_size=cfg.optim.batch_size,
        views=k,
        reason=reason,
        probe_accuracy=ev.probe.accuracy if ev.probe else None,
        head_accuracy=ev.head.accuracy if ev.head else None,
        head_cv=chosen.cv if chosen else None,
        metric=ev.metric or "accuracy",
        candidates=tuple(c.to_dict() for c in ev.scored),
        test_source=ds.test_source,
        n_train=len(ds.train),
        n_val=len(ds.val),
        n_test=len(ds.test),
        **_leaks(ds),
        ram_bytes=ram,
        disk_bytes=disk,
    )
    return costed(cfg, plan, ev.pace, pick_device(cfg.runtime.device).type, ev.elapsed)


def _phases(cfg: TrainConfig, ds: Dataset, ev: Evidence, groups: list[str]) -> Phases:
    """The strategy's phases, then the config's explicit epochs and augmentation over them. BatchNorm statistics stay
    as pretrained wherever the head starts from the probe: its standardisation was fitted on features made with them
    (recomputed statistics cost 1-3 points in the plain two-phase loop, bench/finetune.py)."""
    o, s = cfg.optim, cfg.optim.strategy
    n, headi = len(groups), len(groups) - 1
    base = o.lr or BASE_LR
    head_epochs, ft_epochs, warmup = DEFAULT_EPOCHS["head"], DEFAULT_EPOCHS["finetune"], 1
    augment, bn_frozen = "basic", s != "scratch"
    reason = STRATEGY_TEXT.get(s, "").format(k=o.top_k, norm=norm_note(architecture(ev.backbone).has_batchnorm))
    if s == "auto":
        trainable, ft_epochs, augment, reason = _auto_finetune(cfg, ds, groups, ev)
        head_epochs, bn_frozen, warmup, base = 0, True, 1 if ft_epochs else 0, o.lr or AUTO_LR
    elif s == "feature-extraction":
        trainable, ft_epochs, warmup = [headi], 0, 0
    elif s == "top-k":
        trainable = list(range(max(0, headi - o.top_k), n))
    elif s in ("full", "lp-ft"):
        trainable, head_epochs = list(range(n)), 0 if s == "lp-ft" else head_epochs
    elif s == "scratch":
        trainable, head_epochs, ft_epochs = list(range(n)), 0, DEFAULT_EPOCHS["scratch"]
    else:
        trainable = _custom_trainable(cfg, groups)
    head_epochs = o.head_epochs if o.head_epochs is not None else head_epochs
    ft_epochs = o.finetune_epochs if o.finetune_epochs is not None else ft_epochs
    if ft_epochs == 0 and s != "scratch":
        trainable = [headi]
    warmup = o.warmup_epochs if o.warmup_epochs is not None else (warmup if ft_epochs else 0)
    augment = cfg.regularisation.augment or augment
    return Phases(trainable, head_epochs, ft_epochs, warmup, augment, bn_frozen, base, reason)


def _leaks(ds: Dataset) -> dict:
    """The plan's leak fields: the near-duplicates across splits the last check of these photos found (Data page,
    `engine check`), else the byte-identical copies the health report sees."""
    found = stored_leaks(ds)
    if found is not None:
        n = len({p["b"] if p["split_b"] != "train" else p["a"] for p in found})
        how = "near-duplicates of training photos (the last check of these photos)"
    else:
        n, how = exact_leaks(ds), "byte-identical copies of training photos (run Check my photos for near-duplicates)"
    return {"leaks": n, "leak_note": f"{n} val or test photo(s) are {how}" if n else ""}


def _custom_trainable(cfg: TrainConfig, groups: list[str]) -> list[int]:
    """The groups a custom freeze map leaves trainable."""
    if len(cfg.optim.freeze) != len(groups):
        raise ValueError(
            f"the freeze map has {len(cfg.optim.freeze)} entries; this model has {len(groups)} groups "
            f"({', '.join(groups)})"
        )
    return [i for i, frozen in enumerate(cfg.optim.freeze) if not frozen]


def _rates(cfg: TrainConfig, ev: Evidence, n: int, phases: Phases) -> list[float]:
    """Phase 2's rate per group: one rate from scratch, a custom list as given, else discriminative rates decaying
    per group below the head; 0 for every frozen group."""
    o = cfg.optim
    decay = o.lr_decay or layer_decay(is_transformer(ev.backbone))
    if o.strategy == "scratch":
        lrs = [phases.base_lr] * n
    elif o.strategy == "custom" and o.lrs is not None:
        if len(o.lrs) != n:
            raise ValueError(f"lrs has {len(o.lrs)} entries; this model has {n} groups")
        lrs = [float(lr) for lr in o.lrs]
    else:
        lrs = discriminative(n, phases.trainable, phases.base_lr, decay, o.lr_floor)
    return [lr if i in phases.trainable else 0.0 for i, lr in enumerate(lrs)]


def _views_note(cfg: TrainConfig, ds: Dataset, k: int, phases: Phases) -> str:
    """What the reason says when fewer augmented views are cached than asked for."""
    if k >= cfg.runtime.views or not (phases.head_epochs or phases.finetune_epochs):
        return ""
    return (
        f" {k} augmented view(s) of the {len(ds.train):,} training photos are cached, not "
        f"{cfg.runtime.views}: more would not fit in the memory budget (TRANSFERLAB_MEMORY)."
    )


def _probe_note(cfg: TrainConfig, ds: Dataset, ev: Evidence) -> str:
    """A fixed strategy's reason ends with what the probe measured and what the classic table suggests for it."""
    p = ev.probe
    if cfg.optim.strategy == "auto" or p is None or ev.head is None:
        return ""
    b = BANDS[band(p.accuracy)]
    return (
        f" The linear probe on the final features gets {p.accuracy:.1%} of the {len(ds.val)} validation "
        f"photos ({b[1]}: the classic table suggests {b[2]}); the run starts from it and keeps it unless an epoch "
        f"beats it."
    )


def _footprint(cfg: TrainConfig, ds: Dataset, ev: Evidence, k: int, phases: Phases) -> tuple[int, int]:
    """(memory, disk) bytes the run needs: features, cached views, the model, the head's fit, decoded photos."""
    views = 2 if ev.flip else 1
    dim = architecture(ev.backbone).head_dim(tuple(ev.taps))
    fit = min(fit_rows(dim, views), len(ds.train)) * dim * views * FIT_BYTES_PER_VALUE
    ram, disk = plan_bytes(
        ev.backbone,
        len(ds.train) + len(ds.val) + len(ds.test),
        len(ds.train),
        k,
        dim,
        int(get_entry(ev.backbone).params_m * 1e6),
        int(np.prod(ev.spec.input_size)),
        fit,
    )
    if phases.finetune_epochs and device_input(pick_device(cfg.runtime.device), phases.augment):
        disk += pixel_bytes(len(ds.train), ev.spec)  # the training photos decoded once for the GPU input path
    return ram, disk


def _auto_finetune(cfg: TrainConfig, ds: Dataset, groups: list[str], ev: Evidence) -> tuple[list[int], int, str, str]:
    """Auto's phase 2 within the time left: the deepest of (top group, top 2, top 4, all) that fits 12 epochs, else the
    top group for as many epochs as fit (at least 3), else none. Returns (trainable, epochs, augment, reason)."""
    headi = len(groups) - 1
    speed = ev.speed or 50.0
    size = ev.spec.input_size[-1]
    views = 2 if ev.flip else 1
    where = pick_device(cfg.runtime.device).type

    prof = profile(ev.backbone, size, where)

    def cost(k: int) -> float:
        """Seconds of one fine-tuning epoch with the top `k` groups below the head trainable."""
        return epoch_seconds(prof, groups[headi - k : headi], len(ds.train), len(ds.val), speed, views)

    k, epochs = finetune_depth(cost, headi, ev.seconds_left)
    trainable = list(range(headi - k, headi + 1)) if epochs else [headi]
    augment = "light" if k <= 2 else "basic"
    start = f"The run starts from that linear head ({ev.head.accuracy:.1%} on the {len(ds.val)} validation photos). "
    if epochs:
        body = ", ".join(groups[headi - k : headi])
        tune = (
            f"Then {body} {'is' if k == 1 else 'are'} fine-tuned with it for {epochs} epochs (about "
            f"{epochs * cost(k):.0f} s here; {augment} augmentation; "
            f"{norm_note(architecture(ev.backbone).has_batchnorm)}), and the run keeps "
            f"whichever is better on the validation photos: the linear head or a fine-tuned epoch."
        )
    else:
        tune = (
            f"Fine-tuning does not fit the time left ({max(0.0, ev.seconds_left):.0f} s of a "
            f"{cfg.optim.budget or DEFAULT_BUDGET_S:.0f} s budget, about {cost(1):.0f} s per epoch here), so the "
            f"linear head is the model."
        )
    return trainable, epochs, augment, _auto_evidence(ds, ev) + start + tune


def _auto_evidence(ds: Dataset, ev: Evidence) -> str:
    """Auto's reason, first part: how many heads were scored, by what, and how the best compares with the final
    features alone."""
    scored = ev.scored
    best = max(scored, key=lambda c: c.cv or 0)
    if best.cv is None:
        return f"Too few photos to cross-validate: the head is {ev.choice.label}. "
    final = next((c for c in scored if c.taps == (FINAL,) and not c.flip and c.backbone == scored[0].backbone), None)
    n_scored = len({(c.backbone, c.taps, c.flip) for c in scored})
    against = ""
    if final and final.cv is not None and final is not best:
        against = f", against {final.cv:.1%} for {scored[0].backbone}'s final features alone"
    return (
        f"{n_scored} candidate heads were scored by {ev.metric} in 5-fold cross-validation on the "
        f"{ds_size(ds)} labelled photos outside the test split. The best is {ev.choice.label} on {ev.backbone} "
        f"({best.cv:.1%}{against}). "
    )


def ds_size(ds: Dataset) -> str:
    return f"{len(ds.train) + len(ds.val):,}"


def plan_with_probe(cfg: TrainConfig, progress: Progress = QUIET) -> Planned:
    """The plan and the probe of `cfg.backbone` behind it (read from the feature cache when the plan was stored)."""
    planned = get_plan(cfg, progress)
    if not planned.probes and cfg.optim.strategy != "scratch":
        spec = spec_for(planned.ds, cfg.backbone, cfg.data.in_chans)
        planned.probes = [_probe(cfg, planned.ds, cfg.backbone, spec, progress)]
    return planned
