"""Auto's trials (engine.plan.trials): the simple fixes (ten times smaller rates below the head, a three times longer
warm-up, stronger augmentation) and the adaptations (DANN, MMD), each scored two ways: by reverse validation, which
auto reads, and on the labelled target test, which nothing reads to choose. Shows whether the label-free criterion
ranks the candidates as the target test does. The fixes stand for a phase 2 of 8 epochs warming up for 1 (auto's).

Each pair: `source/train` and `source/val` (labelled), `target/unlabelled` (adapted to), `target/test` (scored here
only). The head is the probe's on Lite0's final features; target photos on their own statistics (as auto reads them
on these pairs). Seed 0.

Run by hand:  .venv/bin/python bench/adapt_trials.py [PAIR ...]   (default: the shared PACS pair)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-trials-"))

import numpy as np
import torch

from engine.data.dataset import load_dataset
from engine.data.target import load_target
from engine.model.taps import FINAL
from engine.plan.rules import MAX_VAL_LOSS
from engine.plan.trials import STRONG_AUGMENT, TRIAL_STEPS, candidates, run_trial, simple_fixes
from engine.probe.augmented import augmented_features
from engine.probe.gap import target_features
from engine.probe.linear import LinearFit, fit_linear, probe
from engine.probe.reference import adapted_reference, supported_accuracy
from engine.probe.reverse import reverse_accuracy

BACKBONE = "tf_efficientnet_lite0"
PAIR = ROOT.parent / "shared" / "datasets" / "pacs-photo-art"


def pair_rows(pair: Path) -> tuple[list[str], list[tuple]]:
    """The pair's table rows, and each trial's (label, source val, estimate, low, high, target test)."""
    ds = load_dataset(pair / "source", test_fraction=0)
    f = probe(ds, BACKBONE, per_stage=False).features
    taps = (FINAL,)
    xs, ys, xv, yv = f.x("train", taps), f.y("train"), f.x("val", taps), f.y("val")
    xu = target_features(load_target(pair / "target" / "unlabelled", ds), BACKBONE).x("target", taps)
    tested = load_target(pair / "target" / "test", ds)
    xt, yt = target_features(tested, BACKBONE).x("target", taps), np.array([it.label for it in tested.labelled])
    head = fit_linear(xs, ys, xv, yv, len(ds.classes))
    zs, zv = ((x - head.mean) / head.scale for x in (xs, xv))
    mean, scale = xu.mean(0), xu.std(0) + 1e-6
    zu, zt = ((x - mean) / scale for x in (xu, xt))
    zs, zv, zu, zt = (z.astype(np.float32) for z in (zs, zv, zu, zt))
    strong = augmented_features([it.path for it in ds.train], BACKBONE, taps, STRONG_AUGMENT)
    fixes = simple_fixes(1, 8, strong=((strong - head.mean) / head.scale).astype(np.float32))
    tried = [("none", 0.0, f) for f in fixes] + [(m, s, fixes[0]) for m, s in candidates()[1:]]
    ref = adapted_reference(zs, ys, zu, len(ds.classes))
    out, scored = [], []
    for method, strength, fix in tried:
        model = run_trial(method, strength, head, (zs, ys), zu, fix=fix)
        with torch.no_grad():
            fv, fu, ft = (model.features(torch.from_numpy(z)).numpy() for z in (zv, zu, zt))
        w, b = model.fc.weight.detach().numpy(), model.fc.bias.detach().numpy()
        val = float(((fv @ w.T + b).argmax(1) == yv).mean())
        target = float(((ft @ w.T + b).argmax(1) == yt).mean())
        reverse = reverse_accuracy(LinearFit(val, np.empty(0), np.empty(0), w, b, head.mean, head.scale), fu, fv, yv)
        answers_v = (fv @ w.T + b).argmax(1)
        found = supported_accuracy(ref, zv, answers_v, answers_v == yv, zu, (fu @ w.T + b).argmax(1))
        low, high = found.interval
        label = (fix.name or "none") if method == "none" else f"{method} {strength:g}"
        scored.append((label, val, found.accuracy, low, high, target))
        out.append(
            f"{pair.name:16} {label:9} {val:10.3f} {reverse:8.3f} {found.accuracy:6.3f} ({low:.3f}-{high:.3f}) "
            f"{target:12.3f}"
        )
    return out + [by_estimate(pair.name, scored)], scored


def by_estimate(name: str, scored: list[tuple]) -> str:
    """The trial the estimate would choose: the highest estimate within MAX_VAL_LOSS of none's val, kept only when its
    estimate is above none's interval (none otherwise); with its target test."""
    none = scored[0]
    fair = [s for s in scored if s[1] >= none[1] - MAX_VAL_LOSS]
    best = max(fair, key=lambda s: s[2])
    chosen = best if best[2] > none[4] else none
    return f"{name:16} by estimate: {chosen[0]} (target test {chosen[5]:.3f}; none {none[5]:.3f})"


def summary(scored: list[tuple]) -> str:
    """How far the estimate was from the target test over every trial, and how often its interval held it."""
    errors = np.array([abs(s[2] - s[5]) * 100 for s in scored])
    covered = np.mean([s[3] <= s[5] <= s[4] for s in scored])
    return (
        f"estimate vs target test over {len(scored)} trials: mean absolute error {errors.mean():.1f} points "
        f"(median {np.median(errors):.1f}, largest {errors.max():.1f}); interval covers the truth in {covered:.0%}"
    )


def main() -> None:
    pairs = [Path(p) for p in sys.argv[1:]] or [PAIR]
    print(f"{BACKBONE} final features, {TRIAL_STEPS} steps per trial, seed 0; {os.cpu_count()} CPU cores")
    print(f"{'pair':16} {'trial':9} {'source val':>10} {'reverse':>8} {'estimate (95%)':>21} {'target test':>12}")
    every = []
    for pair in pairs:
        lines, scored = pair_rows(pair)
        every += scored
        for line in lines:
            print(line, flush=True)
    print(summary(every))


if __name__ == "__main__":
    main()
