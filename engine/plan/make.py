"""Making the plan, as a straight pipeline: evidence → decisions → one frozen Plan → one cost.

1. **Evidence** (`engine.plan.evidence.gather`): the probes, and for auto the heads it scored, the head it starts
   from and the time left for fine-tuning.
2. **Decisions**: the strategy's phases (`engine.plan.phases`: a fixed strategy's rule, or auto's policy,
   `engine.plan.auto`); with photos from where the model will be used, what they show (`_target_evidence`: the
   head's reading and refit, AdaBN, auto's trials) and the target section they decide (`engine.plan.domain`); for
   auto, the budget fit once everything is counted (`engine.plan.auto.fit_to_budget`).
3. **One plan**, made once of its parts, with its decisions (`engine.plan.reasons`), and **one cost**
   (`engine.plan.cost`), counted once.

A plan is made once per (config, data, target photos, kind of device): `get_plan` returns the stored one when it
exists. `engine plan`, the Train page's preview and `engine train` all go through it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Callable

import torch

from engine import paths
from engine.data.batch_augment import device_input_setting
from engine.data.dataset import Dataset, load_dataset
from engine.data.decisions import apply_decisions
from engine.errors import DataError
from engine.model.device import pick_device
from engine.model.profile import architecture, profile
from engine.model.weights import loaded_once
from engine.plan import auto
from engine.plan.budget import Pace, extract_seconds
from engine.plan.config import TrainConfig
from engine.plan.cost import costed
from engine.plan.distill import distill_part, taught
from engine.plan.reasons import Decision
from engine.plan.domain import (
    TargetEvidence,
    Targets,
    choose_target_norm,
    load_targets,
    refitted,
    target_notes,
    target_section,
)
from engine.plan.evidence import Evidence, Request, gather, probe_for
from engine.plan.parts import PLAN_VERSION, DataPart, HeadPart, Phases, Plan, TargetPart
from engine.plan.phases import capped, schedule
from engine.plan.stored import Planned, load_planned, save_planned
from engine.plan.target_head import Settings, TargetHeadChoice, as_read, choose_target_head, readings
from engine.plan.adabn import BnChoice, choose_target_bn
from engine.plan.trials import apply_fix, try_adaptation
from engine.probe.check import exact_leaks, stored_leaks
from engine.probe.choose import label_of
from engine.probe.gap import target_features
from engine.probe.linear import LinearFit, spec_for
from engine.progress import QUIET, Progress
from engine.probe.priors import train_mix


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
    stored = load_planned(folder, ds, remake=True)
    if stored is not None:
        return stored
    with loaded_once():  # each backbone is built once for the probe, the target photos and the trials
        planned = make_plan(cfg, ds, progress, device, targets)
    planned.plan = Plan.from_dict(json.loads(json.dumps(planned.plan.to_dict())))  # as stored, field by field
    save_planned(folder, planned)
    return planned


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
    ds, _ = apply_decisions(ds, d.root)  # relabel / exclude, as the person decided on the Data page or in the CSV
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
    """The plan for `cfg` on `ds` (and its target photos), made once: evidence, then decisions, then the plan and its
    cost."""
    device_input_setting()  # a bad setting is refused before minutes of probing
    where = (device or pick_device(cfg.runtime.device)).type
    targets = targets or Targets(None)
    n_target = len(targets.photos.paths) if targets.photos is not None else 0
    distill, distill_said = distill_part(cfg, ds, n_target)  # a teacher that cannot teach is refused before probing
    req = Request(cfg, ds, targets, where, progress, distill)
    ev = gather(req, estimate=lambda speed: _estimate(req, speed))
    phases, said = schedule(req, ev)
    said = (*target_notes(req.targets), *ev.decisions, *said, *distill_said, *_data_notes(ds))
    head_part = _head_part(req, ev)
    if req.targets.photos is None and not req.targets.test:
        draft = _assemble(req, ev, head_part, phases, TargetPart(), ())
        phases, cap_said = capped(cfg, draft, lambda p: _priced(req, ev, p, ev.elapsed).cost)
        plan = taught(_assemble(req, ev, head_part, phases, TargetPart(), (*said, *cap_said)), len(ds.classes))
        return Planned(_priced(req, ev, plan, ev.elapsed), ds, ev.head, list(ev.probes))
    t0 = time.perf_counter()
    draft = _assemble(req, ev, head_part, phases, TargetPart(), said)
    tev, head = _target_evidence(req, ev, draft, lambda: round(ev.elapsed, 1) + time.perf_counter() - t0)
    section, target_said = target_section(req.targets, cfg, tev)
    if head is not ev.head:  # the run starts from the head refitted with the confident target photos
        head_part = replace(head_part, accuracy=head.accuracy)
    phases = apply_fix(phases, section.fix)
    spent = round(ev.elapsed, 1) + time.perf_counter() - t0
    fitting = _assemble(req, ev, head_part, phases, section, ())
    if cfg.optim.strategy == "auto":
        phases, section, fit_said = auto.fit_to_budget(cfg, fitting, lambda p: _priced(req, ev, p, spent).cost)
        target_said += fit_said
    else:
        phases, cap_said = capped(cfg, fitting, lambda p: _priced(req, ev, p, spent).cost)
        target_said += cap_said
    plan = taught(_assemble(req, ev, head_part, phases, section, (*said, *target_said)), len(ds.classes))
    return Planned(_priced(req, ev, plan, spent), ds, head, list(ev.probes))


# PLR0913: the request, its evidence, and the parts decided from them
def _assemble(  # noqa: PLR0913
    req: Request,
    ev: Evidence,
    head: HeadPart,
    phases: Phases,
    target: TargetPart,
    decisions: tuple[Decision, ...],
) -> Plan:
    """A plan of the parts decided (its cost counted by `_priced`)."""
    return Plan(
        strategy=req.cfg.optim.strategy,
        backbone=ev.backbone,
        in_chans=req.cfg.data.in_chans,
        data=_data_part(req),
        input=ev.spec,
        head=head,
        phases=phases,
        target=target,
        distill=req.distill,
        decisions=decisions,
    )


def _priced(req: Request, ev: Evidence, plan: Plan, plan_s: float) -> Plan:
    """`plan` with its cost (`engine.plan.cost.costed`) at the forward pace the probe measured, as the plan states it
    (rounded: the pace an edit is costed at), with `plan_s` seconds of planning."""
    return costed(req.cfg, plan, round(ev.pace, 2), req.device, plan_s)


def _estimate(req: Request, speed: float) -> float:
    """A fixed strategy's whole run at the forward pace `speed` (images a second), before its probe has ended: its
    plan does not depend on the probe's result."""
    ev = Evidence(req.cfg.backbone, spec_for(req.ds, req.cfg.backbone, req.cfg.data.in_chans), speed=speed)
    phases, _ = schedule(req, ev)
    plan = _assemble(req, ev, _head_part(req, ev), phases, TargetPart(), ())
    return _priced(req, ev, plan, 0.0).cost.estimate_s


def run_estimate(cfg: TrainConfig, ds: Dataset, device: str = "cpu", features_cached: bool = False) -> float:
    """A run's whole length before anything of it is measured, by the cost model every plan is costed with: the
    architecture's forward pace measured on this machine (`engine.model.pace`), the probe's extraction (none from
    scratch, nor when `features_cached`: a run before it reads the same photos the same way), then the plan at that
    pace (`_estimate`). Auto's is its budget: it plans to fill it at most."""
    if cfg.optim.strategy == "auto":
        return auto.budget_of(cfg)
    req = Request(cfg, ds, Targets(None), device, QUIET)
    spec = spec_for(ds, cfg.backbone, cfg.data.in_chans)
    speed = profile(cfg.backbone, spec.input_size[-1], device).forward_pace
    probe_s = 0.0
    if cfg.optim.strategy != "scratch" and not features_cached:
        pace = Pace(cfg.backbone, spec.input_size[-1], speed, device)
        probe_s = extract_seconds(pace, cfg.backbone, spec, len(ds.train) + len(ds.val), cfg.runtime.probe_mirror)
    return round(probe_s + _estimate(req, speed), 1)


def _data_part(req: Request) -> DataPart:
    """The photos the plan belongs to, and the leaks across their splits: the near-duplicates the last check of these
    photos found (Data page, `engine check`), else the byte-identical copies the health report sees."""
    ds = req.ds
    found = stored_leaks(ds)
    if found is not None:
        n = len({p["b"] if p["split_b"] != "train" else p["a"] for p in found})
        how = "near-duplicates of training photos (the last check of these photos)"
    else:
        n, how = exact_leaks(ds), "byte-identical copies of training photos (run Check my photos for near-duplicates)"
    return DataPart(
        path=req.cfg.data.path,
        fingerprint=ds.fingerprint(),
        test_source=ds.test_source,
        n_train=len(ds.train),
        n_val=len(ds.val),
        n_test=len(ds.test),
        leaks=n,
        leak_note=f"{n} val or test photo(s) are {how}" if n else "",
    )


def _head_part(req: Request, ev: Evidence) -> HeadPart:
    """The head the run starts from and the evidence behind it."""
    chosen = ev.chosen
    return HeadPart(
        init="random" if req.cfg.optim.strategy == "scratch" else "probe",
        taps=tuple(ev.taps),
        label=label_of(tuple(ev.taps), ev.stage_names, ev.flip),
        flip=ev.flip,
        probe_accuracy=ev.probe.accuracy if ev.probe else None,
        accuracy=ev.head.accuracy if ev.head else None,
        cv=chosen.cv if chosen else None,
        metric=ev.metric or "accuracy",
        candidates=ev.scored,
    )


def _data_notes(ds: Dataset) -> tuple[Decision, ...]:
    return tuple(Decision("data-note", note) for note in ds.notes)


def _target_evidence(
    req: Request, ev: Evidence, draft: Plan, spent: Callable[[], float]
) -> tuple[TargetEvidence, LinearFit | None]:
    """What the target photos show for a head that starts from the probe: whether it reads them on their own
    statistics and is refitted with the ones it labels surely, whether BatchNorm statistics re-estimated on them
    help, and (auto, no adaptation asked for, a fine-tune that still fits after these readings: `spent()` seconds
    of planning so far) the simple fixes and the adaptations tried on the cached features. Returns the evidence and
    the head the run starts from."""
    cfg, photos, reg = req.cfg, req.targets.photos, req.cfg.regularisation
    probe, head = ev.head_probe, ev.head
    asked_bn = bool(reg.target_bn) and photos is not None
    if photos is None or probe is None or head is None:
        return TargetEvidence(bn_missing=_bn_missing(ev.backbone) if asked_bn else ""), head
    measuring = req.progress.step("measure the target photos")
    measuring(0.0)
    c = ev.choice.c if ev.choice is not None else 1.0  # the starting head's regularisation
    norm_ev = choose_target_norm(probe, head, ev.taps, photos, c, cfg.weights, cfg.data.in_chans, measuring)
    measuring(1.0)
    norm = norm_ev.target_norm if reg.target_norm is None else reg.target_norm
    head = norm_ev.head if refitted(norm_ev, norm, reg.target_pseudo) else head
    head_ev = _head_evidence(req, ev, head, norm, c) if reg.target_head != "none" else None
    head = head_ev.head if head_ev is not None and head_ev.head is not None else head
    bn = None
    if architecture(ev.backbone).has_batchnorm and reg.target_bn is not False and reg.target_norm is not False:
        bn = _bn_evidence(req, ev, head, norm, c)
    tev = TargetEvidence(norm_ev, bn, _bn_missing(ev.backbone) if asked_bn and bn is None else "", head=head_ev)
    if cfg.optim.strategy != "auto" or reg.adapt is not None:
        return tev, head
    so_far = replace(draft, target=target_section(req.targets, cfg, tev)[0])
    if not auto.trials_worth_trying(cfg, so_far, lambda p: _priced(req, ev, p, spent()).cost):
        return tev, head
    trying = req.progress.step("try the simple fixes and adaptation")
    trying(0.0)
    trials = try_adaptation(probe, head, draft, photos, norm, cfg, [it.path for it in req.ds.train], trying)
    trying(1.0)
    return replace(tev, trials=trials), head


def _head_evidence(req: Request, ev: Evidence, head: LinearFit, norm: bool, c: float) -> TargetHeadChoice:
    """`choose_target_head` for the run's starting head, as the step "adapt the head to the target photos"."""
    cfg = req.cfg
    step = req.progress.step("adapt the head to the target photos")
    step(0.0)
    probe, photos = ev.head_probe, req.targets.photos
    xt = target_features(photos, probe.backbone, cfg.weights, cfg.data.in_chans, step).x("target", ev.taps)
    r = readings(probe, head, ev.taps, as_read(xt, head, norm), photos)
    mix = train_mix(cfg.regularisation.balance, r.ys.tolist(), head.std_coef.shape[0])
    chosen = choose_target_head(head, r, Settings(c, mix, cfg.regularisation.target_head, cfg.runtime.seed))
    step(1.0)
    return chosen


def _bn_missing(backbone: str) -> str:
    """Why BatchNorm statistics asked to be re-estimated could not be."""
    if not architecture(backbone).has_batchnorm:
        return f"{backbone} has no BatchNorm layer (LayerNorm normalises each image itself)"
    return "the run does not start from a probe's head, which is what the statistics are scored for"


def _bn_evidence(req: Request, ev: Evidence, head: LinearFit, norm: bool, c: float) -> BnChoice:
    """`choose_target_bn` for the run's starting head, as the step "re-estimate BatchNorm on the target photos"."""
    cfg = req.cfg
    step = req.progress.step("re-estimate BatchNorm on the target photos")
    step(0.0)
    probe, photos = ev.head_probe, req.targets.photos
    bn = choose_target_bn(probe, head, ev.taps, photos, norm, c, cfg.weights, cfg.data.in_chans, cfg.runtime.seed, step)
    step(1.0)
    return bn


def plan_with_probe(cfg: TrainConfig, progress: Progress = QUIET) -> Planned:
    """The plan and the probe of `cfg.backbone` behind it (read from the feature cache when the plan was stored)."""
    planned = get_plan(cfg, progress)
    if not planned.probes and cfg.optim.strategy != "scratch":
        planned.probes = [probe_for(Request(cfg, planned.ds, progress=progress))]
    return planned
