"""Training configuration (a frozen dataclass) and the plan it resolves to: per group frozen or not, and its rate."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from engine.recommend import Recommendation, discriminative_mults

STRATEGIES = ("auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch", "custom")
BALANCE = ("none", "sampler", "weighted-loss", "focal")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. `None` epochs and rates come from the strategy (or the probe, for auto)."""

    data: str
    val: str | None = None
    backbone: str = "tf_efficientnet_lite0"
    weights: str = "auto"
    strategy: str = "auto"
    top_k: int = 2  # for top-k: trainable groups below the head
    freeze: tuple[bool, ...] | None = None  # for custom: per group, True = frozen in phase 2
    lrs: tuple[float, ...] | None = None  # explicit phase-2 rate per group (overrides lr/lr_decay)
    lr: float | None = None  # phase-2 head rate (default 1e-3, or the recommendation's); earlier groups get
    # lr * lr_decay ** distance, at least lr * lr_floor
    head_lr: float = 1e-2  # phase-1 rate: a new linear head on frozen features is convex and takes a larger rate
    lr_decay: float = 0.1
    lr_floor: float = 0.01
    head_epochs: int | None = None
    finetune_epochs: int | None = None
    warmup_epochs: int | None = None
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    batch_size: int = 32
    augment: str | None = None  # None: the recommendation's preset for auto, else "basic"
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.2
    balance: str = "none"
    in_chans: int = 3  # image channels: 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGBA) or more (.npy (H, W, C) files);
    # the pretrained first convolution is adapted from its RGB filters
    views: int = 4  # augmented views cached for the head phase and for cached-activation fine-tuning
    cache_activations: bool = True
    train_bn: bool = False
    bn_momentum: float | None = 0.1  # BatchNorm momentum of trainable groups (None keeps the backbone's own)
    grad_clip: float = 1.0
    seed: int = 0
    val_fraction: float = 0.2
    device: str | None = None
    mean: tuple[float, ...] | None = None  # overrides of the backbone's normalisation (preflight warns)
    std: tuple[float, ...] | None = None
    eval_mode: bool = True  # evaluate with model.eval() (preflight warns when False)
    bn_eval_unfrozen: bool = False  # keep BatchNorm of trainable groups in eval mode (preflight warns)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.balance not in BALANCE:
            raise ValueError(f"balance {self.balance!r} is not one of {', '.join(BALANCE)}")
        if self.strategy == "custom" and self.freeze is None:
            raise ValueError("strategy 'custom' needs a freeze map (one True/False per layer group)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Plan:
    """What the loop executes: phase 1 trains the head; phase 2 trains the groups with `frozen[i] == False`."""

    strategy: str
    groups: tuple[str, ...]
    frozen: tuple[bool, ...]
    lrs: tuple[float, ...]
    head_lr: float
    head_epochs: int
    finetune_epochs: int
    warmup_epochs: int
    head_from_probe: bool
    reason: str
    head_stage: int | None = None
    augment: str = "basic"
    bn_frozen_stats: bool = False  # BatchNorm statistics stay fixed in trainable groups too

    def to_dict(self) -> dict:
        return asdict(self)


def make_plan(cfg: TrainConfig, groups: list[str], rec: Recommendation | None = None) -> Plan:
    """Resolves a config (and, for auto, the probe's recommendation) into a plan."""
    n, head = len(groups), len(groups) - 1
    strategy, reason = cfg.strategy, ""
    head_epochs, ft_epochs, warmup = 10, 15, 1
    if strategy == "auto":
        if rec is None:
            raise ValueError("strategy 'auto' needs the probe's recommendation")
        frozen, mults = list(rec.freeze), list(rec.lr_mult)
        head_epochs, ft_epochs, warmup, reason = rec.head_epochs, rec.finetune_epochs, rec.warmup_epochs, rec.reason
        groups = list(rec.groups)
        n, head = len(groups), len(groups) - 1
        strategy = f"auto ({rec.strategy})"
        trainable = [i for i in range(n) if not frozen[i]]
    else:
        if strategy == "feature-extraction":
            trainable, ft_epochs, warmup = [head], 0, 0
        elif strategy == "top-k":
            trainable = list(range(max(0, head - cfg.top_k), n))
        elif strategy in ("full", "lp-ft", "scratch"):
            trainable = list(range(n))
        else:
            if len(cfg.freeze) != n:
                raise ValueError(f"the freeze map has {len(cfg.freeze)} entries; this backbone has {n} groups")
            trainable = [i for i in range(n) if not cfg.freeze[i]]
        if strategy in ("lp-ft", "scratch"):
            head_epochs = 0
        if strategy == "scratch":
            ft_epochs, mults = 25, [1.0] * n
        else:
            mults = discriminative_mults(n, trainable, cfg.lr_decay, cfg.lr_floor)
        reason = {"feature-extraction": "Only the new head is trained on frozen features.",
                  "top-k": f"The top {cfg.top_k} group(s) and the head are fine-tuned after the head is trained.",
                  "full": "Every group is fine-tuned, with smaller rates for earlier groups.",
                  "lp-ft": "The head starts from the linear probe's solution, then the whole network is fine-tuned "
                           "(LP-FT, Kumar et al. 2022).",
                  "scratch": "Random initialisation, every group at the same rate: the baseline transfer beats.",
                  "custom": "Your freeze map and rates."}[strategy]
    frozen = [i not in trainable for i in range(n)]
    base = cfg.lr if cfg.lr is not None else (rec.lr if rec is not None and cfg.strategy == "auto" else 1e-3)
    lrs = [base * m for m in mults]
    stage = rec.head_stage if rec is not None and cfg.strategy == "auto" else None
    if cfg.lrs is not None:
        if len(cfg.lrs) != n:
            raise ValueError(f"lrs has {len(cfg.lrs)} entries; this backbone has {n} groups")
        lrs = [0.0 if frozen[i] else float(cfg.lrs[i]) for i in range(n)]
    return Plan(strategy, tuple(groups), tuple(frozen), tuple(round(x, 12) for x in lrs), cfg.head_lr,
                cfg.head_epochs if cfg.head_epochs is not None else head_epochs,
                cfg.finetune_epochs if cfg.finetune_epochs is not None else ft_epochs,
                cfg.warmup_epochs if cfg.warmup_epochs is not None else warmup,
                cfg.strategy == "lp-ft" or stage is not None, reason, stage,
                cfg.augment or (rec.augment if rec is not None and cfg.strategy == "auto" else "basic"),
                # A head from the probe was fit on features made with ImageNet statistics; recomputing them on
                # plant-leaves-15 dropped the probe on blocks.5 from 93.7% to 80.0% when this rule was set, so
                # they stay fixed.
                cfg.bn_eval_unfrozen or cfg.strategy == "lp-ft" or stage is not None)
