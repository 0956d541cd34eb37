"""A parameter budget (a board's: `engine.serve.targets`' microcontroller), met by cutting the pretrained backbone.

`TapModel` prunes the backbone after the deepest stage its head reads, so a model that reads early stages is a small
network that keeps its pretrained filters. Under a budget a fixed strategy's head reads the stage that the linear
probe scored best on val among those whose cut model, head included, fits; auto scores only the candidate heads that
fit (`engine.probe.choose.candidate_taps`). The test split is never read. The whole backbone is kept when it fits.

Measured on the bundled sample (test split, 161 photos; 2-core CPU, 2026-12-07), under 500,000 parameters: auto read
Lite0's blocks.0 to blocks.3 (cut there: 0.26M parameters) and reached 89.4% on test, against 85.1% for the 3.4M
feature-extraction run that was its teacher; top-k cut after blocks.2 (56K parameters) kept its starting probe head
(82.0%: no fine-tuning epoch beat it on val, taught or not); a 0.42M-parameter MobileNetV2-0.35 trained from scratch
at 128 px, taught by the same run for 25 epochs, reached 27% of val. A cut pretrained network is the small network.
"""

from __future__ import annotations

from typing import Callable

from engine.model.taps import FINAL, cut_params
from engine.plan.config import ConfigError
from engine.plan.reasons import Decision
from engine.probe.choose import candidate_taps
from engine.probe.linear import ProbeResult


def _curve(probe: ProbeResult) -> dict[int, dict]:
    """The probe's val accuracy per stage (FINAL included): tap -> its row of the stage curve."""
    rows = probe.stage_curve or [{"tap": FINAL, "name": "final features", "accuracy": probe.accuracy}]
    return {c["tap"]: c for c in rows}


def fitting(probe: ProbeResult, n_classes: int, max_params: int) -> dict[int, int]:
    """The probe's stages (FINAL included) whose cut model fits `max_params`: tap -> parameters with the head."""
    sizes = {t: cut_params(probe.backbone, (t,), n_classes) for t in _curve(probe)}
    return {t: n for t, n in sizes.items() if n <= max_params}


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
    return best, budget_decision(probe, (best,), n_classes, max_params)


def budget_decision(probe: ProbeResult, taps: tuple[int, ...], n_classes: int, max_params: int) -> Decision:
    """The decision that the head reads `taps` of the probe's backbone (cut after the deepest) under `max_params`."""
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
