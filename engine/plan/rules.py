"""The rules every strategy's plan follows: the classic probe-accuracy table, the default epochs and rates, the
per-group rate decay, and the strategies' sentences. Auto's own decisions and their constants are in
`engine.plan.auto`; the plan itself is `engine.plan.parts.Plan`.
"""

from __future__ import annotations

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


def group_labels(groups: list[str]) -> list[str]:
    """Readable group labels: "stem", "stage k of n", "head"; the timm names stay in `groups`."""
    n = len(groups) - 2
    return ["stem"] + [f"stage {i} of {n}" for i in range(1, n + 1)] + ["head"] if n >= 0 else list(groups)
