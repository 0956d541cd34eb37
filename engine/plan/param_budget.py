"""A parameter budget (a board's: `engine.serve.targets`' microcontroller), met by cutting the pretrained backbone.

`TapModel` prunes the backbone after the deepest stage its head reads, so a model that reads early stages is a small
network that keeps its pretrained filters. Under a budget a fixed strategy's head reads the stage that the linear
probe scored best on val among those whose cut model, head included, fits; auto scores by cross-validation only the
candidate heads that fit (`engine.probe.choose.candidate_taps`). The test split is never read. The whole backbone is
kept when it fits.

What it gave (bench/results-deploy-microcontroller-cpu.txt, 2-core CPU): under 500,000 parameters, auto's student of
auto's run read a Lite2 cut of 0.46M parameters on the shared plants, 90.3% on test against its teacher's 92.9%, and a
Lite1 cut of 0.37M on EuroSAT, 89.8% against 94.3%; their int8 files lost 5.1 and 7.8 points. No fine-tuning epoch
beat the cut's starting head on plant val, so distillation changed nothing there (bench/results-distill-microcontroller-
cpu.txt: 91.5% taught and untaught).
"""

from __future__ import annotations

from typing import Callable

from engine.model.profile import architecture
from engine.model.taps import FINAL, cut_params
from engine.plan.config import ConfigError
from engine.plan.reasons import Decision
from engine.probe.choose import candidate_taps
from engine.probe.linear import ProbeResult


def _curve(probe: ProbeResult) -> dict[int, dict]:
    """The probe's val accuracy per stage (FINAL included): tap -> its row of the stage curve."""
    rows = probe.stage_curve or [{"tap": FINAL, "name": "final features", "accuracy": probe.accuracy}]
    return {c["tap"]: c for c in rows}


def _fitting(backbone: str, taps: list[int], n_classes: int, max_params: int) -> dict[int, int]:
    """The `taps` of `backbone` whose cut model, with a head of `n_classes`, fits `max_params`: tap -> parameters."""
    sizes = {t: cut_params(backbone, (t,), n_classes) for t in taps}
    return {t: n for t, n in sizes.items() if n <= max_params}


def fitting(probe: ProbeResult, n_classes: int, max_params: int) -> dict[int, int]:
    """The probe's stages (FINAL included) whose cut model fits `max_params`: tap -> parameters with the head."""
    return _fitting(probe.backbone, list(_curve(probe)), n_classes, max_params)


def deepest_cut(backbone: str, n_classes: int, max_params: int) -> tuple[str, int] | None:
    """The deepest stage of `backbone` a cut could end with under `max_params` (its name and the parameters with the
    head), before any probe; None when not even the first stage fits. What the export's student advice names."""
    names = architecture(backbone).tap_names()
    fits = _fitting(backbone, list(range(len(names))), n_classes, max_params)
    if not fits:
        return None
    deepest = max(fits)
    return names[deepest], fits[deepest]


def cut_for(probe: ProbeResult, n_classes: int, max_params: int) -> tuple[int, Decision]:
    """The stage the head reads under `max_params` (the best on val among those that fit), and the decision.

    Raises:
        ConfigError: Not even the shallowest cut fits; the message gives its size.
    """
    curve = _curve(probe)
    fits = fitting(probe, n_classes, max_params)
    if not fits:
        least = min(cut_params(probe.backbone, (t,), n_classes) for t in curve)
        raise ConfigError(
            f"max_params {max_params:,}: even {probe.backbone} cut after its first stage has {least:,} parameters "
            f"with {n_classes} classes; give a larger budget"
        )
    best = max(fits, key=lambda t: (curve[t]["accuracy"], t))
    return best, budget_decision(probe, (best,), n_classes, max_params, "val")


def budget_decision(
    probe: ProbeResult, taps: tuple[int, ...], n_classes: int, max_params: int, chosen_by: str
) -> Decision:
    """The decision that the head reads `taps` of the probe's backbone (cut after the deepest) under `max_params`,
    chosen by `chosen_by`: "val" (a fixed strategy's stage) or "cross-validation" (auto's head)."""
    curve = _curve(probe)
    fits = fitting(probe, n_classes, max_params)
    deepest = FINAL if FINAL in taps else max(taps)
    evidence = {
        "backbone": probe.backbone,
        "max_params": max_params,
        "whole_params": cut_params(probe.backbone, (FINAL,), n_classes),
        "whole_val": curve[FINAL]["accuracy"],
        "params": cut_params(probe.backbone, tuple(taps), n_classes),
        "val": curve[deepest]["accuracy"],
        "fitting": {curve[t]["name"]: [n, curve[t]["accuracy"]] for t, n in fits.items()},
        "chosen_by": chosen_by,
    }
    others = tuple(curve[t]["name"] for t in fits if t != deepest)
    return Decision("param-budget", curve[deepest]["name"], others, evidence)


def keeps(
    probes: list[ProbeResult], n_classes: int, max_params: int | None
) -> Callable[[str, tuple[int, ...]], bool] | None:
    """Whether a head of a backbone on some taps keeps the model within `max_params` (None without a budget).

    Raises:
        ConfigError: No stage of any of the `probes` fits.
    """
    if max_params is None:
        return None

    def keep(backbone: str, taps: tuple[int, ...]) -> bool:
        return cut_params(backbone, tuple(taps), n_classes) <= max_params

    if not any(candidate_taps(p, keep) for p in probes):
        names = ", ".join(p.backbone for p in probes)
        raise ConfigError(
            f"max_params {max_params:,}: no stage of {names} fits with {n_classes} classes; give a larger budget"
        )
    return keep
