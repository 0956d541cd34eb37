"""Each strategy's phases: which layer groups train in phase 2, each phase's epochs and rates, the augmentation and
the BatchNorm policy, decided from the evidence (a fixed strategy by its rule, auto by its policy in the time left,
`engine.plan.auto.finetune`), then the config's explicit epochs, rates and augmentation over them.

BatchNorm statistics stay as pretrained wherever the head starts from the probe: its standardisation was fitted on
features made with them (recomputed statistics cost 1-3 points in the plain two-phase loop, bench/finetune.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, NamedTuple

from engine.model.catalogue import is_transformer
from engine.model.profile import architecture, profile
from engine.model.resources import views_that_fit
from engine.model.taps import FINAL
from engine.plan import auto
from engine.plan.config import TrainConfig
from engine.plan.reasons import Decision
from engine.plan.evidence import Evidence, Request
from engine.plan.parts import Cost, Phases, Plan
from engine.plan.rules import BANDS, BASE_LR, DEFAULT_EPOCHS, HEAD_LR, band, discriminative, group_labels, layer_decay
from engine.probe.choose import label_of


BUDGETED = ("top-k", "full")  # fixed strategies whose phase-2 epochs a time budget caps (auto fills its own budget)


def capped(cfg: TrainConfig, draft: Plan, price: Callable[[Plan], Cost]) -> tuple[Phases, tuple[Decision, ...]]:
    """A fixed strategy's phase-2 epochs cut to those that end within the time budget the person gave (the cost
    model's `price`; one at least: the strategy fine-tunes by definition); the phases as they are without a budget,
    for the other strategies, or when every epoch fits."""
    ph = draft.phases
    if cfg.optim.strategy not in BUDGETED or cfg.optim.budget is None or not ph.finetune_epochs:
        return ph, ()
    cost = price(draft)
    fit = auto.epochs_that_fit(cfg, draft, price) if cost.finetune_epoch_s else ph.finetune_epochs
    if fit >= ph.finetune_epochs:
        return ph, ()
    epochs = max(1, fit)
    evidence = {
        "epoch_s": cost.finetune_epoch_s,
        "fit": fit,
        "budget_s": cfg.optim.budget,
        "epochs": epochs,
        "planned": ph.finetune_epochs,
    }
    phases = replace(ph, finetune_epochs=epochs, warmup_epochs=min(ph.warmup_epochs, epochs))
    return phases, (Decision("budget-cap", "fewer epochs", ("every epoch planned",), evidence),)


class _Rule(NamedTuple):
    """A strategy's phase 2 before the config's explicit settings: trainable groups, epochs, warm-up, augmentation,
    whether BatchNorm statistics stay as pretrained, the head's rate, and the decisions behind them."""

    trainable: list[int]
    head_epochs: int
    finetune_epochs: int
    warmup_epochs: int
    augment: str
    bn_frozen_stats: bool
    base_lr: float
    decisions: tuple[Decision, ...]


def schedule(req: Request, ev: Evidence) -> tuple[Phases, tuple[Decision, ...]]:
    """The phases of the request's strategy on the evidence's backbone and taps, and the decisions that say why."""
    cfg = req.cfg
    groups = list(architecture(ev.backbone).groups_for(tuple(ev.taps)))
    rule = _rule(req, ev, groups)
    o, head = cfg.optim, len(groups) - 1
    head_epochs = o.head_epochs if o.head_epochs is not None else rule.head_epochs
    ft_epochs = o.finetune_epochs if o.finetune_epochs is not None else rule.finetune_epochs
    trainable = [head] if ft_epochs == 0 and o.strategy != "scratch" else rule.trainable
    warmup = o.warmup_epochs if o.warmup_epochs is not None else (rule.warmup_epochs if ft_epochs else 0)
    init = "random" if o.strategy == "scratch" else "probe"
    n_train = len(req.ds.train)
    k = views_that_fit(n_train, architecture(ev.backbone).head_dim(tuple(ev.taps)), cfg.runtime.views)
    phases = Phases(
        groups=tuple(groups),
        labels=tuple(group_labels(groups)),
        head_lr=o.head_lr or HEAD_LR[init],
        head_epochs=head_epochs,
        frozen=tuple(i not in trainable for i in range(len(groups))),
        lrs=tuple(_rates(cfg, ev.backbone, len(groups), trainable, rule.base_lr)),
        finetune_epochs=ft_epochs,
        warmup_epochs=warmup,
        augment=cfg.regularisation.augment or rule.augment,
        bn_frozen_stats=rule.bn_frozen_stats,
        batch_size=o.batch_size,
        views=k,
    )
    said = rule.decisions
    if k < cfg.runtime.views and (head_epochs or ft_epochs):
        evidence = {"views": k, "asked": cfg.runtime.views, "n_train": n_train}
        said += (Decision("views", str(k), (str(cfg.runtime.views),), evidence),)
    return phases, said + _rule_of_thumb(req, ev)


def _rule(req: Request, ev: Evidence, groups: list[str]) -> _Rule:
    """The strategy's own phases: auto's policy in the time left, or a fixed strategy's rule."""
    o, s = req.cfg.optim, req.cfg.optim.strategy
    n, headi = len(groups), len(groups) - 1
    batchnorm = architecture(ev.backbone).has_batchnorm
    if s == "auto":
        views = 2 if ev.flip else 1
        prof = profile(ev.backbone, ev.spec.input_size[-1], req.device)
        tune = auto.finetune(req.cfg, req.ds, groups, prof, ev.speed or 50.0, views, ev.seconds_left, ev.head.accuracy)
        warmup = 1 if tune.epochs else 0
        return _Rule(tune.trainable, 0, tune.epochs, warmup, tune.augment, True, o.lr or auto.AUTO_LR, tune.decisions)
    said = (Decision("strategy", s, (), {"top_k": o.top_k, "batchnorm": batchnorm}),)
    head_epochs, ft_epochs, warmup, base = DEFAULT_EPOCHS["head"], DEFAULT_EPOCHS["finetune"], 1, o.lr or BASE_LR
    if s == "feature-extraction":
        return _Rule([headi], head_epochs, 0, 0, "basic", True, base, said)
    if s == "top-k":
        trainable = list(range(max(0, headi - o.top_k), n))
    elif s in ("full", "lp-ft"):
        trainable, head_epochs = list(range(n)), 0 if s == "lp-ft" else head_epochs
    elif s == "scratch":
        return _Rule(list(range(n)), 0, DEFAULT_EPOCHS["scratch"], warmup, "basic", False, base, said)
    else:
        trainable = _custom_trainable(req.cfg, groups)
    return _Rule(trainable, head_epochs, ft_epochs, warmup, "basic", True, base, said)


def _rule_of_thumb(req: Request, ev: Evidence) -> tuple[Decision, ...]:
    """A fixed strategy's reason ends with what the probe the run starts from measured (on the final features, or on
    the stage a parameter budget cuts the backbone after) and what the classic table suggests for it."""
    p = ev.probe
    if req.cfg.optim.strategy == "auto" or p is None or ev.head is None:
        return ()
    b = band(ev.head.accuracy)
    evidence = {"probe_accuracy": ev.head.accuracy, "n_val": len(req.ds.val), "band": b}
    if ev.taps != (FINAL,):
        evidence["reads"] = label_of(tuple(ev.taps), ev.stage_names, ev.flip)
    return (Decision("rule-of-thumb", BANDS[b][2], tuple(x[2] for x in BANDS), evidence),)


def _custom_trainable(cfg: TrainConfig, groups: list[str]) -> list[int]:
    """The groups a custom freeze map leaves trainable."""
    if len(cfg.optim.freeze) != len(groups):
        raise ValueError(
            f"the freeze map has {len(cfg.optim.freeze)} entries; this model has {len(groups)} groups "
            f"({', '.join(groups)})"
        )
    return [i for i, frozen in enumerate(cfg.optim.freeze) if not frozen]


def _rates(cfg: TrainConfig, backbone: str, n: int, trainable: list[int], base: float) -> list[float]:
    """Phase 2's rate per group: one rate from scratch, a custom list as given, else discriminative rates decaying
    per group below the head; 0 for every frozen group."""
    o = cfg.optim
    decay = o.lr_decay or layer_decay(is_transformer(backbone))
    if o.strategy == "scratch":
        lrs = [base] * n
    elif o.strategy == "custom" and o.lrs is not None:
        if len(o.lrs) != n:
            raise ValueError(f"lrs has {len(o.lrs)} entries; this model has {n} groups")
        lrs = [float(lr) for lr in o.lrs]
    else:
        lrs = discriminative(n, trainable, base, decay, o.lr_floor)
    return [lr if i in trainable else 0.0 for i, lr in enumerate(lrs)]
