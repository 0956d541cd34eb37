"""The model card: the input contract (class names, input size, interpolation, crop fraction, mean/std), the backbone,
weight source and hash, the honest metrics, the out-of-place rule and the config that produced the model. It names no
folder of this server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.calibration import Unsure
from engine.data.imageio import MODES
from engine.plan.parts import Plan
from engine.plan.stored import read_plan, read_plan_checked
from engine.runs.result import RunResult
from engine.runs.store import Run
from engine.serve import ood
from engine.serve.estimate import Estimate, recorded
from engine.serve.summary import test_phrase
from engine.text import literal


FORMAT = "transferlab-model-card/1"
METRICS = (
    "best_val_acc",
    "best_epoch",
    "per_class",
    "probe_accuracy",
    "test_accuracy",
    "test_interval",
    "test_n",
    "cv_estimate",
    "temperature",
    "ece_val",
    "ece_test",
    "unsure",
)


@dataclass(frozen=True)
class ModelCard:
    """What a user of the exported model needs: the run, the backbone and its weights (source and hash, no path), the
    classes in output order, the input contract and its preprocessing in words, the honest metrics (`METRICS` of the
    run's result), the out-of-place rule, the strategy and the config (without its data section: server paths)."""

    run_id: str
    backbone: str | None
    classes: list[str] | None
    input_size: list[int] | None
    interpolation: str | None
    crop_pct: float | None
    mean: list[float] | None
    std: list[float] | None
    weights: dict
    metrics: dict
    status: str | None
    strategy: str | None
    taps: list[str] | None
    flip_tta: bool | None
    out_of_place: dict
    config: dict
    in_chans: int
    preprocessing: str
    expected: list[dict] = field(default_factory=list)  # accuracy expected on folders of unlabelled photos (ATC)

    def to_dict(self) -> dict:
        """The card as `model_card.json` holds it, its format first."""
        return {"format": FORMAT, **asdict(self)}


def model_card(run: Run, plan: Plan | None = None) -> ModelCard:
    """The run's model card, from what it stored (plan, result, run info, out-of-place rule); `plan` when the caller
    has read it already."""
    if plan is None:
        plan = read_plan(run.path)
    result = RunResult.read(run)
    info = run.read_json("run_info.json") or {}
    spec = plan.input.to_dict() if plan else {}
    chans = (spec.get("input_size") or [3])[0]
    return ModelCard(
        run_id=run.id,
        backbone=plan.backbone if plan else None,
        classes=info.get("classes"),
        input_size=spec.get("input_size"),
        interpolation=spec.get("interpolation"),
        crop_pct=spec.get("crop_pct"),
        mean=spec.get("mean"),
        std=spec.get("std"),
        weights={k: v for k, v in (info.get("weights") or {}).items() if k != "path"},
        metrics={k: None if result is None else getattr(result, k) for k in METRICS},
        status=(result and result.status) or run.status().get("state"),
        strategy=plan.strategy if plan else None,
        taps=list(plan.head.taps) if plan else None,
        flip_tta=plan.head.flip if plan else None,
        out_of_place=_place_rule(run),
        config={k: v for k, v in run.config.items() if k != "data"},  # the data section holds server paths
        in_chans=chans,
        preprocessing=f"{MODES.get(chans, '(H, W, C) .npy array')} channels; "
        "resize the short side to input_size / crop_pct, centre-crop input_size, "
        "scale to [0, 1], subtract mean, divide by std; NCHW float32",
        expected=[_expected(e) for e in recorded(run)],
    )


def _expected(est: Estimate) -> dict:
    """An estimate as the card states it: the folder by its name only (a card names no folder of this server)."""
    return {
        "folder": Path(est.folder).name,
        "n": est.n,
        "accuracy": est.accuracy,
        "interval": list(est.interval),
        "by": est.by,
        "own_confidence": est.own_confidence,
        "measured": est.measured,
        "measured_n": est.measured_n,
        "caveat": est.caveat,
    }


def _place_rule(run: Run) -> dict:
    """The run's out-of-place rule as the card states it ({} before it was fitted: the first prediction or export
    fits it). TransferLab's Predict applies it; the exported files give the classes' logits only."""
    rule = ood.load(run.path / ood.FILE)
    return {**rule.to_dict(), "applied_by": "TransferLab's Predict and predict_image"} if rule else {}


def _trust_line(m: dict) -> str:
    """The model card's calibration line: the temperature the exports carry and what the unsure threshold means."""
    unsure = m.get("unsure") or {}
    if not unsure:
        return "- **Confidence:** not calibrated (a run from before calibration)."
    ece_text = f"; calibration error (ECE) {m['ece_val']:.3f} on val" if m.get("ece_val") is not None else ""
    return (
        f"- **Confidence:** probabilities are calibrated (temperature {m['temperature']:.2f}, in the exported models"
        f"{ece_text}). Unsure threshold {unsure['threshold']:.2f}: on val, {Unsure(**unsure).sentence()} (look "
        f"at its top guesses)."
    )


def model_card_markdown(run: Run) -> str:
    """The model card as readable Markdown: the input contract, classes, weights and the honest accuracy. It names no
    folder of this server."""
    plan, unreadable = read_plan_checked(run.path)
    card = model_card(run, plan)
    m, w = card.metrics, card.weights
    test = test_phrase(RunResult.from_dict({**m, "status": card.status}), plan, unreadable)
    classes = card.classes or []
    return "\n".join(
        [
            f"### Model card · run {card.run_id}",
            f"- **Accuracy:** {test}; {m['best_val_acc']:.1%} on the validation photos it was chosen on."
            if m.get("best_val_acc") is not None
            else f"- **Accuracy:** {test}.",
            f"- **Backbone:** {card.backbone} ({card.strategy}); weights: {w.get('source', '?')}, "
            f"sha256 `{(w.get('sha256') or '')[:16]}`",
            f"- **Input:** {card.in_chans} channel(s), {card.input_size[-1]}×{card.input_size[-1]} px; "
            f"{card.preprocessing}",
            f"- **Resampling:** {card.interpolation}; crop fraction {card.crop_pct}; mean {card.mean}; std {card.std}",
            _trust_line(m),
            _place_line(card.out_of_place),
            *_expected_lines(card.expected),
            f"- **Classes ({len(classes)}), in output order:** "
            + ", ".join(f"{i} {literal(c)}" for i, c in enumerate(classes)),
        ]
    )


def _expected_lines(expected: list[dict]) -> list[str]:
    """The model card's lines on the photos from where it will be used: each folder's expected accuracy."""
    lines = []
    for e in expected:
        lo, hi = e["interval"]
        line = (
            f"- **Expected on {literal(e['folder'])}** ({e['n']} photos, no labels needed): about {e['accuracy']:.0%} "
            f"({lo:.0%}–{hi:.0%}, 95%), by {e['by']}"
        )
        if e["measured"] is not None:
            line += f"; its {e['measured_n']} labelled photos score {e['measured']:.0%}"
        lines.append(line + ".")
    return lines + ([f"  {expected[0]['caveat']}"] if expected else [])


def _place_line(rule: dict) -> str:
    """The model card's out-of-place line."""
    if not rule:
        return "- **Out of place:** not fitted yet (the first prediction or export fits it from the run's photos)."
    return (
        f"- **Out of place:** a photo whose score ({rule['score']}) is above {rule['threshold']:.3f} gets no class "
        f"(fitted on {rule['fitted_on']}); applied by TransferLab's Predict, not by the exported files."
    )
