"""From a linear probe to a fine-tuning strategy the trainer executes as it is, with the reason in plain words.

Rules (the classic transfer-learning table): probe accuracy above 85% → feature extraction; 70–85% → fine-tune
the top 1–2 groups; 50–70% → the top 3–4 groups with discriminative learning rates; below 50% → full fine-tuning.
Dataset size moves the boundary (more data, more groups). A per-stage probe that peaks below the last stage (the
"transferability cliff") cuts the network there and puts the head on it, or, where the network cannot be cut, moves
the freeze boundary to that stage. Inputs that are not RGB unfreeze the stem.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

CLIFF_MARGIN = 0.02  # an intermediate stage must beat the final features by this much to move the boundary


@dataclass(frozen=True)
class Recommendation:
    """A complete plan for the trainer.

    Attributes:
        strategy: "feature-extraction", "top-k", "full" or "stage-head".
        groups: Layer-group names, stem first, head last (for stage-head: of the cut network).
        freeze: Per group, True when the group stays frozen in phase 2.
        lr: Base learning rate (the head's).
        lr_mult: Per group, the multiplier of `lr` in phase 2 (0 for frozen groups).
        head_epochs: Phase 1 (head only) epochs.
        finetune_epochs: Phase 2 epochs (0 for feature extraction).
        warmup_epochs: Linear warm-up at the start of phase 2.
        best_stage: Index of the group whose features probed best, when a per-stage probe ran.
        head_stage: For "stage-head": the network is cut after this group, the head starts from the probe's
            solution on its features, and the group itself is fine-tuned with the head.
        reason: Plain-language explanation quoting the numbers.
    """

    strategy: str
    groups: tuple[str, ...]
    freeze: tuple[bool, ...]
    lr: float
    lr_mult: tuple[float, ...]
    head_epochs: int
    finetune_epochs: int
    warmup_epochs: int
    best_stage: int | None
    reason: str
    head_stage: int | None = None  # cut the network after this group and put the head there ("stage-head")
    augment: str = "basic"  # augmentation preset the plan is meant for

    @property
    def trainable(self) -> list[int]:
        return [i for i, f in enumerate(self.freeze) if not f]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lrs"] = [round(self.lr * m, 10) for m in self.lr_mult]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recommendation":
        fields = cls.__dataclass_fields__
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields})


def discriminative_mults(n_groups: int, trainable: list[int], decay: float = 0.1, floor: float = 0.01) -> list[float]:
    """Head 1, the group below it `decay`, everything earlier `floor` (head 1e-3, last block 1e-4, earlier 1e-5)."""
    head = n_groups - 1
    return [0.0 if i not in trainable else round(max(floor, decay ** (head - i)), 12) for i in range(n_groups)]


def _size_band(n_train: int) -> str:
    return "small" if n_train < 1000 else ("medium" if n_train < 10000 else "large")


def _stage_head(groups: list[str], stage: int, stage_acc: float, final_acc: float, n_train: int, in_channels: int,
                base_lr: float) -> Recommendation:
    """The cliff: cut after `stage`, head from the probe there, fine-tune that stage (and the stem for non-RGB)."""
    cut = list(groups[:stage + 1]) + ["head"]
    head = len(cut) - 1
    trainable = [stage, head] + ([0] if in_channels != 3 else [])
    size = _size_band(n_train)
    base_lr = base_lr * 0.1  # LP-FT: the head already sits at the probe's optimum
    ft_epochs = {"small": 15, "medium": 8, "large": 4}[size]
    reason = (f"The features after {groups[stage]} (group {stage + 1} of {len(groups)}) probe at {stage_acc:.1%}, "
              f"{(stage_acc - final_acc) * 100:.1f} points above the final layer ({final_acc:.1%}): the layers above "
              f"it are specialised to ImageNet and lose information your classes need. So the network is cut after "
              f"{groups[stage]}, the new head starts from the probe's solution on those features, and "
              f"{groups[stage]} is fine-tuned with it gently for {ft_epochs} epochs ({base_lr:g} for the head, "
              f"{base_lr * 0.1:g} for {groups[stage]}, after a 1-epoch warm-up, BatchNorm statistics kept, on the "
              f"photos as the probe saw them, without augmentation, which would move the features away from the "
              f"probe's); everything below stays frozen. The cut model is also smaller and faster.")
    if in_channels != 3:
        reason += f" Your images have {in_channels} channel(s), so the stem is adapted and trained too."
    return Recommendation("stage-head", tuple(cut), tuple(i not in trainable for i in range(len(cut))), base_lr,
                          tuple(discriminative_mults(len(cut), trainable)), 0, ft_epochs, 1, stage, reason, stage,
                          "none")


def recommend(probe_accuracy: float, groups: list[str], n_train: int, stage_curve: list[float] | None = None,
              in_channels: int = 3, base_lr: float = 1e-3, allow_stage_head: bool = True) -> Recommendation:
    """Chooses a strategy from the probe.

    Args:
        probe_accuracy: Validation accuracy of the linear probe on the final features.
        groups: Layer-group names, stem first, head last.
        n_train: Number of training images.
        stage_curve: Probe accuracy after each non-head group (same order as `groups[:-1]`), if measured.
        in_channels: Channels of the user's images.
        base_lr: Learning rate of the head.
        allow_stage_head: Whether the network may be cut at the best stage (else the freeze boundary moves there).
    """
    n = len(groups)
    body = n - 1
    size = _size_band(n_train)
    more = {"small": 0, "medium": 0, "large": 1}[size]
    pct = f"{probe_accuracy:.1%}"
    if probe_accuracy > 0.85:
        k, strategy = 0, "feature-extraction"
        why = (f"the linear probe on frozen features already reaches {pct} (above 85%): the pretrained features "
               f"separate your classes, so training only a new head is enough")
    elif probe_accuracy >= 0.70:
        k, strategy = 1 + (size != "small"), "top-k"
        why = (f"the linear probe reaches {pct} (70–85%): the features are close but need adapting, so fine-tune "
               f"the top {k} layer group(s) with the head")
    elif probe_accuracy >= 0.50:
        k, strategy = 3 + (size != "small"), "top-k"
        why = (f"the linear probe reaches {pct} (50–70%): your images differ from ImageNet, so fine-tune the top "
               f"{k} groups with discriminative learning rates (lower rates for earlier layers)")
    else:
        k, strategy = body, "full"
        why = (f"the linear probe reaches only {pct} (below 50%): the pretrained features transfer poorly, so "
               f"fine-tune the whole network with small rates for the early layers")
    k = min(body, k + more if strategy != "feature-extraction" else k)
    best_stage = None
    if stage_curve:
        best_stage = max(range(len(stage_curve)), key=lambda i: stage_curve[i])
        gain = stage_curve[best_stage] - probe_accuracy
        if best_stage < body - 1 and gain >= CLIFF_MARGIN and allow_stage_head:
            return _stage_head(groups, best_stage, stage_curve[best_stage], probe_accuracy, n_train, in_channels,
                               base_lr)
        if best_stage < body - 1 and gain >= CLIFF_MARGIN:
            k_cliff = body - best_stage
            if k_cliff > k:
                k, strategy = k_cliff, "top-k" if k_cliff < body else "full"
                why += f". But the features after {groups[best_stage]} (group {best_stage + 1} of {n}) probe at " \
                       f"{stage_curve[best_stage]:.1%}, {gain * 100:.1f} points above the final layer: the layers " \
                       f"above it are specialised to ImageNet. So the freeze boundary goes just below " \
                       f"{groups[best_stage]}, and {groups[best_stage]} and everything above it are fine-tuned"
    trainable = list(range(body - k, body)) + [body]
    if in_channels != 3 and 0 not in trainable:
        trainable = [0] + trainable
        why += f". Your images have {in_channels} channel(s), so the first convolution is adapted from the RGB " \
               f"filters and the stem is trained too"
    if strategy != "feature-extraction" and len(trainable) == n:
        strategy = "full"
    mults = discriminative_mults(n, trainable)
    head_epochs = {"small": 10, "medium": 5, "large": 3}[size]
    ft_epochs = 0 if strategy == "feature-extraction" else {"small": 15, "medium": 8, "large": 4}[size]
    band = {"small": "under 1,000", "medium": "1,000–10,000", "large": "over 10,000"}[size]
    size_txt = f"{n_train} training images ({band})"
    reason = f"{why[0].upper()}{why[1:]}. With {size_txt}, " + (
        "a small head trains quickly and cannot overfit much." if strategy == "feature-extraction" else
        f"the head is trained first ({head_epochs} epochs), then {len(trainable) - 1} group(s) are unfrozen for "
        f"{ft_epochs} epochs at {base_lr:g} for the head, {base_lr * 0.1:g} for the group below it and "
        f"{base_lr * 0.01:g} further down, after a 1-epoch warm-up.")
    return Recommendation(strategy, tuple(groups), tuple(i not in trainable for i in range(n)), base_lr,
                          tuple(mults), head_epochs, ft_epochs, 0 if strategy == "feature-extraction" else 1,
                          best_stage, reason)
