"""Training configuration: what a person (or the CLI) asks for. The plan (`engine.plan`) is what it resolves to."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

STRATEGIES = ("auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch", "custom")
BALANCE = ("none", "sampler", "weighted-loss", "focal")
DEFAULT_BACKBONE = "tf_efficientnet_lite0"
DEFAULT_BUDGET_S = 300.0  # auto's time budget, probe included (seconds)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. `None` values are decided by the plan (from the strategy, the probe and the
    time budget)."""

    data: str
    val: str | None = None
    test: str | None = None
    backbone: str = DEFAULT_BACKBONE
    weights: str = "auto"
    strategy: str = "auto"
    top_k: int = 2  # for top-k: trainable groups below the head
    freeze: tuple[bool, ...] | None = None  # for custom: per group, True = frozen in phase 2
    lrs: tuple[float, ...] | None = None  # for custom: phase-2 rate per group
    lr: float | None = None  # phase-2 head rate; earlier groups get lr * lr_decay ** distance, at least lr * lr_floor
    head_lr: float | None = None  # phase-1 rate (1e-3 from the probe's head, 1e-2 from a random one)
    lr_decay: float = 0.1
    lr_floor: float = 0.01
    head_epochs: int | None = None
    finetune_epochs: int | None = None
    warmup_epochs: int | None = None
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    batch_size: int = 32
    augment: str | None = None  # None: the plan's preset
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
    test_fraction: float = 0.2  # held out as the test split when the data has none (0: never)
    data_root: str | None = None  # files must lie inside it (the server's data root); default: the dataset's folder
    allow_outside_root: bool = False  # use symlinked or CSV-listed files outside it, asked for explicitly
    budget: float | None = None  # auto's time budget in seconds, probe included (default DEFAULT_BUDGET_S)
    device: str | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.balance not in BALANCE:
            raise ValueError(f"balance {self.balance!r} is not one of {', '.join(BALANCE)}")
        from engine.model.catalogue import get_entry
        get_entry(self.backbone)  # an unknown name fails here, before any data is read
        if self.batch_size < 2:
            raise ValueError(f"batch_size {self.batch_size}: BatchNorm needs at least 2 images per batch; use 2 or "
                             f"more (32 is the default)")
        if self.strategy == "custom" and self.freeze is None:
            raise ValueError("strategy 'custom' needs a freeze map (one True/False per layer group)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


def demo_config() -> TrainConfig:
    """The Quick demo: the bundled sample, auto within a short budget (TRANSFERLAB_DEMO_BUDGET seconds, default 150),
    and TRANSFERLAB_DEMO_EPOCHS fine-tuning epochs when set."""
    from engine.paths import SAMPLE
    epochs = os.environ.get("TRANSFERLAB_DEMO_EPOCHS")
    return TrainConfig(data=str(SAMPLE), strategy="auto", data_root=str(SAMPLE),
                       budget=float(os.environ.get("TRANSFERLAB_DEMO_BUDGET", "150")),
                       finetune_epochs=int(epochs) if epochs else None)
