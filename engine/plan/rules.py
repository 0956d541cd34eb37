"""The plan: one frozen object, made once, that the Train page and `engine plan` show and the trainer executes.

It names the data, backbone and channels it belongs to, the model (taps, mirror-image averaging, where the head
starts), each phase's frozen map, per-group rates and epochs, the augmentation and BatchNorm policy, the reason in
plain words with the evidence behind it, and what the run will cost. Every rule that shapes a plan lives here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

from engine.model.bn_stats import BN_SAMPLE
from engine.model.catalogue import is_transformer

# The classic transfer-learning table: the final-feature probe's accuracy → how much of the network to retrain.
BANDS = (
    (0.85, "above 85%", "feature extraction: train only a new head", 0),
    (0.70, "70–85%", "fine-tune the top 1–2 layer groups", 2),
    (0.50, "50–70%", "fine-tune the top 3–4 groups with discriminative learning rates", 4),
    (0.00, "below 50%", "fine-tune the whole network", None),
)
DEFAULT_EPOCHS = {"head": 10, "finetune": 15, "scratch": 25}
HEAD_LR = {"probe": 1e-3, "random": 1e-2}  # phase 1: a head that starts at the probe's optimum moves gently
MAX_VAL_LOSS = 0.01  # the most validation accuracy an adaptation (a target standardisation, a refit, DANN, MMD,
# an epoch of an adapted run) may cost to be chosen
FIXED_S = 5.0  # seconds of every run for building the model, saving it and writing the results
BASE_LR = 1e-3  # phase 2: the head's rate; groups below get BASE_LR * decay ** distance, at least BASE_LR * floor
STRATEGY_TEXT = {
    "feature-extraction": "The backbone stays frozen; the head starts from the linear probe and is trained on "
    "augmented views of your photos.",
    "top-k": "The head starts from the linear probe; then the top {k} layer group(s) and the head are fine-tuned.",
    "full": "The head starts from the linear probe; then every group is fine-tuned, with smaller rates for earlier "
    "groups.",
    "lp-ft": "The head is the linear probe's solution; then the whole network is fine-tuned gently (LP-FT, Kumar et "
    "al. 2022); {norm}.",
    "scratch": "Random initialisation, every group at the same rate: the baseline transfer learning beats.",
    "custom": "Your freeze map and rates.",
}


def band(accuracy: float) -> int:
    """Index in BANDS of a probe accuracy (above 85%; 70–85% inclusive; 50–70% inclusive; below 50%)."""
    return next(i for i, b in enumerate(BANDS) if (accuracy > b[0] if i == 0 else accuracy >= b[0]))


# Rate decay per layer group below the head. A CNN has 4-7 coarse stages, each far more specific than the one below
# (ULMFiT/fastai's factor-of-ten steps); a transformer has 12 or more identical blocks, decayed gently per block as in
# timm's `param_groups_layer_decay` and BEiT/MAE fine-tuning (0.65-0.75).
LAYER_DECAY = {"stage": 0.1, "block": 0.75}


# Auto's time budget: how deep it fine-tunes and whether another backbone's probe fits. The forecast of a run's length
# (`engine.plan.budget.forecast`) and the plan (`engine.plan.make`) both decide with these, so they cannot disagree.
FINETUNE_DEPTHS = (1, 2, 4)  # groups below the head auto may open, the deepest that fits `DEEP_EPOCHS` epochs, or all
DEEP_EPOCHS = 12  # epochs a deeper fine-tune must fit to be chosen over a shallower one
MIN_FINETUNE_EPOCHS, MAX_FINETUNE_EPOCHS = 3, 15  # fewer than the minimum: no fine-tuning at all
PROBE_RESERVE_S = 10.0  # seconds kept per probe (the first and the next) for fitting its heads


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


def probe_fits(elapsed_s: float, extract_s: float, n_probed: int, score_s: float, limit_s: float) -> bool:
    """Whether probing another backbone (`extract_s` of extraction, after `n_probed` probes, `elapsed_s` in) and still
    scoring its head (`score_s`) ends within `limit_s`."""
    return elapsed_s + extract_s + PROBE_RESERVE_S * (n_probed + 1) + score_s <= limit_s


def layer_decay(transformer: bool) -> float:
    """The rate decay per group below the head for a backbone made of transformer blocks or of CNN stages."""
    return LAYER_DECAY["block" if transformer else "stage"]


def norm_note(has_batchnorm: bool) -> str:
    """How normalisation behaves while fine-tuning from the probe, in words."""
    return (
        "BatchNorm statistics kept"
        if has_batchnorm
        else "LayerNorm normalises each image itself: no running statistics to keep"
    )


def discriminative(
    n_groups: int, trainable: list[int], base: float, decay: float = 0.1, floor: float = 0.01
) -> list[float]:
    """Per group: the head `base`, the group below it `base * decay`, earlier ones `base * decay**d`, at least
    `base * floor`; 0 for frozen groups."""
    head = n_groups - 1
    return [0.0 if i not in trainable else round(base * max(floor, decay ** (head - i)), 12) for i in range(n_groups)]


@dataclass(frozen=True)
class Plan:
    """What a run executes. Phase 1 trains the head alone; phase 2 trains the groups with `frozen[i] == False` at
    `lrs[i]`. The run keeps the model that is best on the validation photos: the head it started from, or any epoch.
    """

    # what the plan belongs to
    data: str
    fingerprint: str
    backbone: str
    in_chans: int
    input_spec: dict
    # the model
    strategy: str
    taps: tuple[int, ...]
    tap_label: str
    flip_tta: bool
    head_init: str  # "probe" (the linear probe's solution) or "random"
    groups: tuple[str, ...]
    labels: tuple[str, ...]
    # the phases
    head_lr: float
    head_epochs: int
    frozen: tuple[bool, ...]
    lrs: tuple[float, ...]
    finetune_epochs: int
    warmup_epochs: int
    augment: str
    bn_frozen_stats: bool
    batch_size: int
    views: int
    # the evidence, in words and numbers
    reason: str
    probe_accuracy: float | None = None  # the final-feature probe on val
    head_accuracy: float | None = None  # the head the run starts from, on val
    head_cv: float | None = None  # its cross-validated score over train + val
    metric: str = "accuracy"
    candidates: tuple[dict, ...] = ()
    # the data and the cost
    test_source: str = ""
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    leaks: int = 0  # val or test photos that are (near) copies of training photos: the score they give is inflated
    leak_note: str = ""
    # photos from where the model will be used (engine.plan.domain)
    target: str = ""  # the folder of target photos ("": none)
    target_fingerprint: str = ""
    n_target: int = 0  # target photos adapted to (unlabelled and labelled)
    n_target_val: int = 0  # labelled target photos: they choose, instead of the label-free criterion
    n_target_test: int = 0  # labelled target photos scored once, at the end
    adapt: str = "none"  # dann or mmd in phase 2, on the head's input (engine.model.adapt)
    adapt_strength: float = 0.0
    target_norm: bool = False  # the head standardises its input on the target photos' statistics
    target_pseudo: int = 0  # target photos the starting head was refitted with (confident pseudo-labels)
    target_reverse: float = 0.0  # the starting head's reverse validation score as it reads target photos (0: none)
    target_bn: bool = False  # the saved model's BatchNorm statistics are re-estimated on the target photos (AdaBN)
    target_fix: str = ""  # the simple fix auto's trials kept for phase 2 (engine.plan.trials.FIX_TEXT; "": none)
    target_reason: str = ""  # why, in words, with the numbers
    estimate_s: float = 0.0  # the whole run, planning included (engine.plan.cost counts every step)
    plan_s: float = 0.0  # of which planning (loading, probing, choosing the head)
    start_s: float = 0.0  # validating the starting model (epoch 0)
    cache_s: float = 0.0  # running the frozen part once: augmented views, activations at the cut
    finetune_epoch_s: float = 0.0  # one phase-2 epoch, from the measured forward speed and the groups' FLOPs
    score_s: float = 0.0  # the final validation and test scoring
    images_per_s: float = 0.0  # the forward pace the costs were counted at (the probe's, decoding included)
    ram_bytes: int = 0
    disk_bytes: int = 0
    edited: bool = False

    @property
    def trainable(self) -> list[int]:
        return [i for i, f in enumerate(self.frozen) if not f]

    @property
    def checks_against_start(self) -> bool:
        """The run's end checks a trained epoch against the starting head by reverse validation
        (`engine.train.reverse_check`): the plan scored the start without labels, and no labelled target photo
        chooses instead."""
        return self.target_reverse > 0 and not self.n_target_val

    def target_reads(self, checked: bool) -> int:
        """Images the end of the run reads for the target photos, beyond val and the test split: the target
        photos for their statistics, the target test for the chosen model and the start, with `checked` val and
        the target photos again for both models, and AdaBN's sample once for the saved model (and once per model
        checked)."""
        n = (self.n_target if self.target_norm else 0) + 2 * self.n_target_test
        n += 2 * (self.n_val + self.n_target) if checked else 0
        n += (3 if checked else 1) * min(BN_SAMPLE, self.n_target) if self.target_bn else 0
        return n

    @property
    def trains_below_head(self) -> bool:
        """Phase 2 trains a group below the head: what adaptation (DANN, MMD) needs to move anything."""
        return bool(self.finetune_epochs) and any(i < len(self.groups) - 1 for i in self.trainable)

    @property
    def run_s(self) -> float:
        """The run's seconds once the plan exists (its estimate less the planning already done)."""
        return max(0.0, self.estimate_s - self.plan_s)

    @property
    def total_epochs(self) -> int:
        return self.head_epochs + self.finetune_epochs

    def to_dict(self) -> dict:
        return asdict(self)

    def recommendation(self) -> dict:
        """What this plan advises, as the Probe page shows it: what it will train, the head, the reason in words, and
        the classic rule of thumb for its final-feature probe."""
        trained = [g for g, f in zip(self.groups[:-1], self.frozen[:-1]) if not f]
        does = (
            f"fine-tune {', '.join(trained)} with the head for {self.finetune_epochs} epochs"
            if trained and self.finetune_epochs
            else "train only a new head (feature extraction)"
        )
        rule = None
        if self.probe_accuracy is not None:
            b = BANDS[band(self.probe_accuracy)]
            rule = {"probe_accuracy": self.probe_accuracy, "band": b[1], "suggests": b[2]}
        return {
            "strategy": self.strategy,
            "does": does,
            "head": self.tap_label,
            "reason": self.reason,
            "rule_of_thumb": rule,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"plan has unknown field(s) {', '.join(unknown)}; it was made by another version")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    # PLR0913: keyword edits of the plan's fields, each optional
    def edit(  # noqa: PLR0913
        self,
        frozen: tuple[bool, ...] | None = None,
        lrs: tuple[float, ...] | None = None,
        head_lr: float | None = None,
        head_epochs: int | None = None,
        finetune_epochs: int | None = None,
        decay: float | None = None,
        floor: float = 0.01,
    ) -> "Plan":
        """This plan with a person's edits; any change makes it "custom". A group unfrozen without a rate gets the
        rate the decay rule implies (the backbone family's unless `decay` is given); a frozen group's rate is 0."""
        decay = decay or layer_decay(is_transformer(self.backbone))
        frozen = tuple(self.frozen if frozen is None else frozen)
        base = next((lr for lr in reversed(self.lrs) if lr), BASE_LR)
        implied = discriminative(len(frozen), [i for i, f in enumerate(frozen) if not f], base, decay, floor)
        new = list(self.lrs if lrs is None else lrs)
        new = [
            0.0 if f else (new[i] if new[i] and not (self.frozen[i] and lrs is None) else implied[i])
            for i, f in enumerate(frozen)
        ]
        changes = dict(
            frozen=frozen,
            lrs=tuple(new),
            head_lr=self.head_lr if head_lr is None else head_lr,
            head_epochs=self.head_epochs if head_epochs is None else head_epochs,
            finetune_epochs=self.finetune_epochs if finetune_epochs is None else finetune_epochs,
        )
        if all(getattr(self, k) == v for k, v in changes.items()):
            return self
        trainable = [self.groups[i] for i, f in enumerate(frozen) if not f]
        return replace(
            self,
            **changes,
            strategy="custom",
            edited=True,
            reason=f"Your edit of the {self.strategy} plan: {', '.join(trainable) or 'nothing'} trainable "
            f"in phase 2. Before the edit: {self.reason}",
        )


def group_labels(groups: list[str]) -> list[str]:
    """Readable group labels: "stem", "stage k of n", "head"; the timm names stay in `groups`."""
    n = len(groups) - 2
    return ["stem"] + [f"stage {i} of {n}" for i in range(1, n + 1)] + ["head"] if n >= 0 else list(groups)
