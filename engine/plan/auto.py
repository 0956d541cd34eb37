"""Auto's policy: every decision `strategy=auto` makes, its constants and its rule, in one module.

Auto spends a time budget (probe included) in this order, each step a decision with its evidence:

1. **Which other backbones to probe** (`forecast`): the bundled backbones whose probe, scaled from the first probe's
   measured pace by FLOPs, still ends within the budget with `PROBE_RESERVE_S` kept per probe for its heads.
2. **The head** (`head_decision`, `closer_head`): the candidate heads of every probed backbone scored by 5-fold
   cross-validation (`engine.probe.choose`); with target photos, the candidate within `MAX_VAL_LOSS` of the best that
   is closest to them.
3. **How deep to fine-tune and how long** (`finetune`): the deepest of `FINETUNE_DEPTHS` groups below the head whose
   `DEEP_EPOCHS` epochs fit the time left, else the top group for as many epochs as fit (at most
   `MAX_FINETUNE_EPOCHS`), else none when fewer than `MIN_FINETUNE_EPOCHS` fit: the linear head is the model.
4. **Whether the target trials run** (`trials_worth_trying`): only when a fine-tune still fits once the target
   photos' passes are counted; the trials themselves (`engine.plan.trials`) choose the simple fix and the adaptation.
5. **The budget fit** (`fit_to_budget`): once the target photos are measured, as many epochs as still fit; auto's own
   adaptation dropped when fewer than `MIN_FINETUNE_EPOCHS` would fit with it; the linear head when fewer fit without.

Every estimate comes from one cost model (`engine.plan.cost`) at the forward pace the first probe measured; every
decision is a `engine.plan.reasons.Decision` that says its numbers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, NamedTuple

from engine.data.dataset import Dataset
from engine.data.spec import InputSpec
from engine.model.catalogue import list_entries
from engine.model.profile import BackboneProfile, architecture, profile
from engine.model.taps import FINAL
from engine.model.weights import availability
from engine.plan.budget import Pace, extract_seconds, score_seconds
from engine.plan.config import DEFAULT_BUDGET_S, TrainConfig
from engine.plan.reasons import Decision
from engine.plan.parts import Cost, Phases, Plan, TargetPart
from engine.plan.rules import FIXED_S, MAX_VAL_LOSS
from engine.probe.choose import HeadChoice

SAFETY = 0.93  # of the budget, planned; the rest absorbs the estimates' error
CHOOSE_SHARE = 0.15  # of the budget, at most, for scoring the candidate heads
PROBE_RESERVE_S = 10.0  # seconds kept per probe (the first and the next) for fitting its heads
FINETUNE_DEPTHS = (1, 2, 4)  # groups below the head auto may open, the deepest that fits `DEEP_EPOCHS` epochs, or all
DEEP_EPOCHS = 12  # epochs a deeper fine-tune must fit to be chosen over a shallower one
MIN_FINETUNE_EPOCHS, MAX_FINETUNE_EPOCHS = 3, 15  # fewer than the minimum: no fine-tuning at all
AUTO_LR = 1e-4  # auto's fine-tuning starts at the probe's optimum: a tenth of the usual head rate, as in LP-FT
CLOSEST_CANDIDATES = 5  # heads near the best whose distance to the target photos is measured


def budget_of(cfg: TrainConfig) -> float:
    return cfg.optim.budget or DEFAULT_BUDGET_S


# ------------------------------------------------------------------------------------ 1. the other backbones
def other_bundled(first: str, weights: str) -> list[str]:
    """The other backbones whose weights ship with TransferLab (auto's shoot-out), when no weights file was given."""
    if weights != "auto":
        return []
    return [e.name for e in list_entries() if e.bundled and e.name != first and availability(e.name)["available"]]


def probe_fits(elapsed_s: float, extract_s: float, n_probed: int, score_s: float, limit_s: float) -> bool:
    """Whether probing another backbone (`extract_s` of extraction, after `n_probed` probes, `elapsed_s` in) and still
    scoring its head (`score_s`) ends within `limit_s`."""
    return elapsed_s + extract_s + PROBE_RESERVE_S * (n_probed + 1) + score_s <= limit_s


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
    budget when one epoch of the top group fits it (the rule `finetune` decides by)."""
    budget, n_tv = budget_of(cfg), len(ds.train) + len(ds.val)
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
        return prof.epoch_seconds(list(groups[-1 - k : -1]), len(ds.train), len(ds.val), pace.images_per_s, 2)

    if finetune_depth(epoch, 1, SAFETY * budget - t - finish)[1] > 0:
        return Forecast(SAFETY * budget - elapsed, finish, True, tuple(probed))
    # no epoch to train: validating the starting head is the val score, then the test split; each photo read once, as
    # most chosen heads read it (the plan counts the mirror image too once a head that averages it is chosen)
    finish = score_seconds(pace, pace.backbone, first, len(ds.test) + len(ds.val), views=1) + FIXED_S
    return Forecast(t + finish - elapsed, finish, False, tuple(probed))


# -------------------------------------------------------------------------------------------------- 2. the head
def head_decision(ds: Dataset, scored: tuple[HeadChoice, ...], choice: HeadChoice, metric: str) -> Decision:
    """Auto's head: how many candidates were scored, by what, and how the best compares with the final features of
    the first backbone alone."""
    best = max(scored, key=lambda c: c.cv or 0)
    final = next((c for c in scored if c.taps == (FINAL,) and not c.flip and c.backbone == scored[0].backbone), None)
    return Decision(
        "head",
        choice.label,
        tuple(dict.fromkeys(f"{c.label} on {c.backbone}" for c in scored)),
        {
            "backbone": choice.backbone,
            "metric": metric,
            "n_scored": len({(c.backbone, c.taps, c.flip) for c in scored}),
            "n_photos": len(ds.train) + len(ds.val),
            "best_cv": best.cv,
            "final_cv": final.cv if final is not None and final is not best and final.cv is not None else None,
            "first": scored[0].backbone,
        },
    )


def closer_head(
    choice: HeadChoice, scored: tuple[HeadChoice, ...], distance: Callable[[HeadChoice], float]
) -> tuple[HeadChoice, Decision | None]:
    """Auto's head with target photos: among the candidates within `MAX_VAL_LOSS` of the best cross-validated one
    (at most `CLOSEST_CANDIDATES` of them), the one whose input a domain classifier tells apart least from the target
    photos' (`distance`, measured once per backbone and taps; the divergence term of Ben-David et al.'s bound: the
    features that fit the training photos best are often the ones that transfer worst)."""
    if choice.cv is None:
        return choice, None
    near = sorted((c for c in scored if (c.cv or 0) >= choice.cv - MAX_VAL_LOSS), key=lambda c: -(c.cv or 0))
    near = near[:CLOSEST_CANDIDATES]
    measured: dict[tuple, float] = {}
    for c in near:
        if (c.backbone, c.taps) not in measured:
            measured[(c.backbone, c.taps)] = distance(c)
    best = min(near, key=lambda c: (measured[(c.backbone, c.taps)], -(c.cv or 0)))
    if best is choice:
        return choice, None
    return best, Decision(
        "closest-head",
        best.label,
        tuple(c.label for c in near),
        {
            "backbone": best.backbone,
            "distance": measured[(best.backbone, best.taps)],
            "instead": choice.label,
            "instead_distance": measured[(choice.backbone, choice.taps)],
            "max_val_loss": MAX_VAL_LOSS,
        },
        about="target",
    )


# ------------------------------------------------------------------------------ 3. how deep, and for how long
def finetune_depth(epoch_s: Callable[[int], float], n_below_head: int, seconds_left: float) -> tuple[int, int]:
    """Auto's phase 2 within `seconds_left`: (groups below the head to train, epochs). The deepest of
    `FINETUNE_DEPTHS` (or all `n_below_head` groups) whose `DEEP_EPOCHS` epochs fit, else the top group for as many
    epochs as fit, at most `MAX_FINETUNE_EPOCHS`; (1, 0) when fewer than `MIN_FINETUNE_EPOCHS` fit. `epoch_s(k)`: the
    seconds of one epoch with the top `k` groups trainable."""
    depths = [k for k in (*FINETUNE_DEPTHS, n_below_head) if k <= n_below_head]
    k = next((d for d in reversed(depths) if DEEP_EPOCHS * epoch_s(d) <= seconds_left), 1)
    cost = epoch_s(k)
    epochs = min(MAX_FINETUNE_EPOCHS, int(seconds_left // cost)) if cost > 0 else 0
    return k, epochs if epochs >= MIN_FINETUNE_EPOCHS else 0


class Finetune(NamedTuple):
    """Auto's phase 2: the trainable groups (the head included), its epochs and augmentation, and the decisions that
    say why (where it starts, and how deep and how long)."""

    trainable: list[int]
    epochs: int
    augment: str
    decisions: tuple[Decision, ...]


# PLR0913: the groups, the profile and pace they are costed at, the time left, and the head it starts from
def finetune(  # noqa: PLR0913
    cfg: TrainConfig,
    ds: Dataset,
    groups: list[str],
    prof: BackboneProfile,
    pace: float,
    views: int,
    seconds_left: float,
    start_accuracy: float,
) -> Finetune:
    """Auto's phase 2 in the `seconds_left` after planning, validating the start and the final scoring, each depth's
    epoch costed with the cost model at `pace` (images a second) with `views` views of each val photo."""
    headi = len(groups) - 1

    def cost(k: int) -> float:
        """Seconds of one fine-tuning epoch with the top `k` groups below the head trainable."""
        return prof.epoch_seconds(groups[headi - k : headi], len(ds.train), len(ds.val), pace, views)

    k, epochs = finetune_depth(cost, headi, seconds_left)
    trainable = list(range(headi - k, headi + 1)) if epochs else [headi]
    augment = "light" if k <= 2 else "basic"
    start = Decision("start", "the linear head", (), {"start_accuracy": start_accuracy, "n_val": len(ds.val)})
    depths = tuple(f"top {d}" for d in (*FINETUNE_DEPTHS, headi) if d <= headi)
    evidence = {"epochs": epochs, "epoch_s": cost(k if epochs else 1), "left_s": seconds_left}
    evidence |= {"budget_s": budget_of(cfg), "groups": list(groups[headi - k : headi]), "augment": augment}
    evidence |= {"batchnorm": prof.arch.has_batchnorm}
    tune = Decision("finetune", f"top {k}" if epochs else "none", depths, evidence)
    return Finetune(trainable, epochs, augment, (start, tune))


# --------------------------------------------------------------------- 4. and 5. the target photos and the budget
def epochs_that_fit(cfg: TrainConfig, draft: Plan, price: Callable[[Plan], Cost]) -> int:
    """The most phase-2 epochs (up to the draft's) whose whole run, as `price` (the cost model) counts it, ends
    within the budget less the safety margin: searched on the priced estimate itself, so the time the plan then shows
    holds the budget (a per-epoch cost rounded for display would not)."""
    limit = SAFETY * budget_of(cfg)

    def fits(epochs: int) -> bool:
        ph = replace(draft.phases, finetune_epochs=epochs, warmup_epochs=min(draft.phases.warmup_epochs, epochs))
        return price(replace(draft, phases=ph)).estimate_s <= limit

    low, high = 0, draft.phases.finetune_epochs  # fits(low) is assumed; the estimate grows with the epochs
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def fit_to_budget(
    cfg: TrainConfig, draft: Plan, price: Callable[[Plan], Cost]
) -> tuple[Phases, TargetPart, tuple[Decision, ...]]:
    """Auto's epochs once the target photos are measured (their passes, an adapted epoch's target batches and the end
    check are in `price`, the cost model): as many epochs as still fit; auto's own adaptation dropped when fewer than
    `MIN_FINETUNE_EPOCHS` would fit with it (and costed again without); the linear head kept when fewer fit without.
    An adaptation asked for keeps at least one epoch. Returns the phases, the target section and the decisions."""
    ph, tg = draft.phases, draft.target
    cost = price(draft)
    if not ph.finetune_epochs or not cost.finetune_epoch_s:
        return ph, tg, ()
    fit = epochs_that_fit(cfg, draft, price)
    if fit >= ph.finetune_epochs:
        return ph, tg, ()
    said: tuple[Decision, ...] = ()
    if fit < MIN_FINETUNE_EPOCHS and tg.adapt != "none" and cfg.regularisation.adapt is None:
        evidence = {"adapt": tg.adapt, "epoch_s": cost.finetune_epoch_s, "fit": fit, "budget_s": budget_of(cfg)}
        said = (Decision("adaptation-dropped", "no adaptation", (tg.adapt,), evidence, about="target"),)
        tg = replace(tg, adapt="none", adapt_strength=0.0)
        cost = price(replace(draft, target=tg))
        fit = epochs_that_fit(cfg, replace(draft, target=tg), price)
        if fit >= ph.finetune_epochs:
            return ph, tg, said
    evidence = {"epoch_s": cost.finetune_epoch_s, "fit": fit, "budget_s": budget_of(cfg), "adapt": tg.adapt}
    if fit >= MIN_FINETUNE_EPOCHS or tg.adapt != "none":  # an adaptation asked for keeps at least one epoch
        epochs = max(1, fit)
        evidence |= {"epochs": epochs, "planned": ph.finetune_epochs}
        ph = replace(ph, finetune_epochs=epochs, warmup_epochs=min(ph.warmup_epochs, epochs))
        return ph, tg, (*said, Decision("budget-fit", "fewer epochs", ("linear head",), evidence))
    return ph.head_only, tg, (*said, Decision("budget-fit", "linear head", ("fewer epochs",), evidence))


def trials_worth_trying(cfg: TrainConfig, draft: Plan, price: Callable[[Plan], Cost]) -> bool:
    """Whether auto's trials (the simple fixes, then the adaptations) are worth their time: the draft (the target
    readings chosen so far, costed with the time spent) still fine-tunes below the head once fitted to the budget."""
    if not draft.phases.trains_below_head:
        return False
    return fit_to_budget(cfg, draft, price)[0].trains_below_head
