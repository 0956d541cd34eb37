"""Training configuration: what a person (or the CLI) asks for. The plan (`engine.plan`) is what it resolves to.

A `TrainConfig` has four sections: `data` (which images, how they are split), `optim` (strategy, rates, epochs),
`regularisation` and `runtime`. The CLI and the pages name every field flat (`--lr`, `strategy=`), so
`TrainConfig.create(**flat)` builds one from flat names and `flat()` gives them back. Stored configs carry a version;
`from_dict` refuses keys it does not know and migrates version 1 (flat) configs of older runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.errors import TransferLabError

STRATEGIES = ("auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch", "custom")
BALANCE = ("none", "sampler", "weighted-loss", "focal")
TARGET_NORM = {"auto": None, "on": True, "off": False}  # regularisation.target_norm by name (auto: on evidence)
HEAD_METHODS = ("coral", "t3a", "shot", "em")  # regularisation.target_head's methods (engine.probe.head_adapt)
TARGET_HEAD = {"auto": None, "none": "none", **{m: m for m in HEAD_METHODS}}  # regularisation.target_head by name
ADAPT_CHOICES = {"auto": None, "none": "none", "dann": "dann", "mmd": "mmd"}  # regularisation.adapt by name (auto:
# auto's trials choose, engine.plan.trials; other strategies adapt none)
DEFAULT_BACKBONE = "tf_efficientnet_lite0"
DISTILL_WEIGHT = 0.7  # of a distilled run's loss, the teacher's share (Hinton et al. 2015 weigh it high)
DISTILL_TEMPERATURE = 4.0  # softens both models' answers so the teacher's second choices carry weight
DEFAULT_BUDGET_S = 300.0  # auto's time budget, probe included (seconds)
CONFIG_VERSION = 2
V1_UNUSED = ("mean", "std", "eval_mode", "bn_eval_unfrozen")  # flat fields nothing set; dropped on migration


class ConfigError(TransferLabError, ValueError):
    """A stored or given configuration that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class DataConfig:
    """Which images, and how they are split."""

    path: str
    val: str | None = None
    test: str | None = None
    in_chans: int = 3  # 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGBA) or more (.npy (H, W, C) files)
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # held out as the test split when the data has none (0: never)
    root: str | None = None  # files must lie inside it (the server's data root); default: the dataset's folder
    allow_outside_root: bool = False  # use symlinked or CSV-listed files outside it, asked for explicitly
    target: str | None = None  # photos from where the model will be used (engine.data.target): adapt to them
    target_test: str | None = None  # labelled photos from there (one subfolder per class), scored once at the end


MAX_PARAMS = 10**12  # the largest parameter budget taken (the CLI's and the Train page's bound)


@dataclass(frozen=True)
class OptimConfig:
    """Strategy, learning rates and schedule. `None` values are decided by the plan."""

    strategy: str = "auto"
    top_k: int = 2  # for top-k: trainable groups below the head
    freeze: tuple[bool, ...] | None = None  # for custom: per group, True = frozen in phase 2
    lrs: tuple[float, ...] | None = None  # for custom: phase-2 rate per group
    lr: float | None = None  # phase-2 head rate; earlier groups get lr * lr_decay ** distance, at least lr * lr_floor
    head_lr: float | None = None  # phase-1 rate (1e-3 from the probe's head, 1e-2 from a random one)
    lr_decay: float | None = None  # per group below the head; None: the backbone family's (rules.layer_decay)
    lr_floor: float = 0.01
    head_epochs: int | None = None
    finetune_epochs: int | None = None
    warmup_epochs: int | None = None
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    batch_size: int = 32
    grad_clip: float = 1.0
    budget: float | None = None  # auto's time budget in seconds, probe included (default DEFAULT_BUDGET_S); top-k
    # and full: none unless given, then their phase-2 epochs end within it
    max_params: int | None = None  # the model's parameter budget (a board's): the backbone is cut to fit it (at most
    # MAX_PARAMS)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.batch_size < 2:
            raise ConfigError(
                f"batch_size {self.batch_size}: BatchNorm needs at least 2 images per batch; use 2 or "
                f"more (32 is the default)"
            )
        if self.strategy == "custom" and self.freeze is None:
            raise ConfigError("strategy 'custom' needs a freeze map (one True/False per layer group)")
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise ConfigError(
                f"budget {self.budget}: a time budget is a number of seconds above 0 (auto's default: 300)"
            )
        if self.max_params is not None and not 1 <= self.max_params <= MAX_PARAMS:
            raise ConfigError(
                f"max_params {self.max_params}: a parameter budget is a whole number above 0 and at most {MAX_PARAMS:,}"
            )
        negative = [k for k in ("head_epochs", "finetune_epochs", "warmup_epochs") if (getattr(self, k) or 0) < 0]
        if negative:
            raise ConfigError(f"{negative[0]} {getattr(self, negative[0])}: epochs are 0 or more")

    def promised_seconds(self) -> float | None:
        """The whole run's time, as auto promises it (its budget, probe included); None for other strategies."""
        return (self.budget or DEFAULT_BUDGET_S) if self.strategy == "auto" else None


@dataclass(frozen=True)
class RegularisationConfig:
    """Augmentation, label smoothing, dropout, class balance and the BatchNorm policy."""

    augment: str | None = None  # None: the plan's preset
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.2
    balance: str = "none"
    train_bn: bool = False
    bn_momentum: float | None = 0.1  # BatchNorm momentum of trainable groups (None keeps the backbone's own)
    adapt: str | None = None  # none, dann or mmd (needs data.target); None: auto chooses with a target, else none
    adapt_strength: float | None = None  # the adaptation loss's weight once ramped up (None: the plan's)
    target_norm: bool | None = None  # the head standardises its input on the target photos (None: chosen on evidence)
    target_pseudo: bool | None = None  # the head is refitted with the target photos it labels surely (None: evidence)
    target_bn: bool | None = None  # BatchNorm statistics re-estimated on the target photos, AdaBN (None: evidence)
    target_head: str | None = None  # none, coral, t3a, shot or em: the head adapted to the target photos (None: auto)
    distill_from: str | None = None  # a trained run whose answers on the training photos this run also learns from
    distill_weight: float = DISTILL_WEIGHT  # the share of the loss that is the teacher's (the rest: the labels')
    distill_temperature: float = DISTILL_TEMPERATURE  # both models' logits are divided by it before they are compared

    def __post_init__(self):
        self._check_distillation()
        if self.balance not in BALANCE:
            raise ConfigError(f"balance {self.balance!r} is not one of {', '.join(BALANCE)}")
        from engine.model.adapt import ADAPT_METHODS

        if self.adapt is not None and self.adapt not in ADAPT_METHODS:
            raise ConfigError(f"adapt {self.adapt!r} is not one of {', '.join(ADAPT_METHODS)}")
        if self.target_head is not None and self.target_head not in ("none", *HEAD_METHODS):
            raise ConfigError(f"target_head {self.target_head!r} is not one of none, {', '.join(HEAD_METHODS)}")
        if self.target_bn and self.target_norm is False:
            raise ConfigError(
                "target_bn: the re-estimated BatchNorm statistics are read with the head standardised on the target "
                "photos; leave target_norm on or auto"
            )

    def _check_distillation(self) -> None:
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ConfigError(f"distill_weight {self.distill_weight}: a share from 0 (labels only) to 1 (teacher only)")
        if not (math.isfinite(self.distill_temperature) and self.distill_temperature > 0):
            raise ConfigError(f"distill_temperature {self.distill_temperature}: a number above 0 (1 to 4 is usual)")
        if self.distill_from and (self.mixup or self.cutmix):
            raise ConfigError(
                "distill_from: the teacher answers for each training photo as it is, not for photos mixed by MixUp "
                "or CutMix; set mixup and cutmix to 0"
            )


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how reproducibly it runs, and what is cached."""

    device: str | None = None
    seed: int = 0
    views: int = 4  # augmented views cached for the head phase and for cached-activation fine-tuning
    probe_mirror: bool = True  # the probe also reads each photo's mirror image (up to MIRROR_MAX_IMAGES photos)
    cache_activations: bool = True

    def __post_init__(self):
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed {self.seed}: give an integer from 0 to {2**32 - 1:,}")
        if self.views < 1:
            raise ConfigError(f"views {self.views}: cache at least 1 view of each training photo")


SECTIONS = {"data": DataConfig, "optim": OptimConfig, "regularisation": RegularisationConfig, "runtime": RuntimeConfig}
_FLAT_NAMES = {("data", "path"): "data", ("data", "root"): "data_root"}  # where the flat name differs
FLAT: dict[str, tuple[str, str]] = {
    _FLAT_NAMES.get((s, f.name), f.name): (s, f.name) for s, cls in SECTIONS.items() for f in fields(cls)
}  # flat name -> (section, name)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run."""

    data: DataConfig
    backbone: str = DEFAULT_BACKBONE
    weights: str = "auto"  # "auto": the bundled or cached file; a path; "none": seeded random initialisation
    optim: OptimConfig = field(default_factory=OptimConfig)
    regularisation: RegularisationConfig = field(default_factory=RegularisationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self):
        from engine.model.catalogue import get_entry

        get_entry(self.backbone)  # an unknown name fails here, before any data is read
        if self.regularisation.adapt not in (None, "none") and not self.data.target:
            raise ConfigError(
                f"adapt {self.regularisation.adapt!r} needs photos to adapt to: give a target folder (--target DIR) "
                f"of photos from where the model will be used"
            )

    @classmethod
    def create(cls, **flat: Any) -> "TrainConfig":
        """A config from flat field names, as the CLI and the pages give them (`data=`, `strategy=`, `lr=` …).

        Raises:
            ConfigError: A name that is no field, or a value a field refuses.
        """
        top = {k: flat.pop(k) for k in ("backbone", "weights") if k in flat}
        unknown = sorted(k for k in flat if k not in FLAT)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(FLAT))}")
        parts: dict[str, dict] = {s: {} for s in SECTIONS}
        for k, v in flat.items():
            section, name = FLAT[k]
            parts[section][name] = tuple(v) if isinstance(v, list) else v
        return cls(**top, **{s: SECTIONS[s](**kw) for s, kw in parts.items()})

    def flat(self) -> dict[str, Any]:
        """Every field under its flat name (the inverse of `create`)."""
        out: dict[str, Any] = {"backbone": self.backbone, "weights": self.weights}
        for k, (section, name) in FLAT.items():
            out[k] = getattr(getattr(self, section), name)
        return out

    def with_(self, **changes: Any) -> "TrainConfig":
        """A copy with some flat fields changed."""
        return TrainConfig.create(**{**self.flat(), **changes})

    def to_dict(self) -> dict:
        return {"version": CONFIG_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A stored config: version 2 (sections) as written by `to_dict`, or version 1 (flat), migrated.

        Raises:
            ConfigError: An unknown key or section, or a config written by a newer TransferLab.
        """
        d = dict(d)
        version = d.pop("version", 1)
        if version == 1:
            return cls.create(**{k: v for k, v in d.items() if k not in V1_UNUSED})
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"config version {version} was written by a newer TransferLab (this one reads up to "
                f"{CONFIG_VERSION}); upgrade TransferLab to use this run"
            )
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; sections are {', '.join(SECTIONS)}")
        parts = {}
        for s, section in SECTIONS.items():
            given = d.pop(s, {} if s != "data" else None)
            if given is None:
                raise ConfigError("config has no data section; it needs at least data.path")
            bad = sorted(set(given) - {f.name for f in fields(section)})
            if bad:
                raise ConfigError(f"unknown key(s) in config section {s}: {', '.join(bad)}")
            parts[s] = section(**{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
        return cls(**d, **parts)


def demo_config() -> TrainConfig:
    """The Quick demo: the bundled sample, auto within a short budget (TRANSFERLAB_DEMO_BUDGET seconds, default 150),
    and TRANSFERLAB_DEMO_EPOCHS fine-tuning epochs when set."""
    from engine.paths import SAMPLE

    epochs = os.environ.get("TRANSFERLAB_DEMO_EPOCHS")
    return TrainConfig.create(
        data=str(SAMPLE),
        strategy="auto",
        data_root=str(SAMPLE),
        budget=float(os.environ.get("TRANSFERLAB_DEMO_BUDGET", "150")),
        finetune_epochs=int(epochs) if epochs else None,
    )
