"""A second opinion that has seen the new photos: how a model's answers on unlabelled photos are judged when its own
confidence cannot be trusted there.

ATC (`engine.probe.atc`) counts the new photos the model answers more confidently than a threshold fitted on val.
Where the photos are shifted so that the model stays sure of wrong answers (blurred or grey leaves, a phone in a
field) it reads 30-50 points high (bench/estimate.py). The reference is a linear head on the same features that reads
the new photos adapted to them, as the target standardisation does (`engine.plan.domain`): fitted on the training
photos standardised on their own statistics, it reads the new photos standardised on theirs, and is refitted once with
the new photos it labels with at least `PSEUDO_CONFIDENCE` (self-training; Chen, Liang, Lu, Jha & Singh, NeurIPS
2021, estimate accuracy by agreement with such a self-trained reference). The model's answer on each photo is then
scored by the probability the reference gives it (its support), and ATC is applied to that support instead of the
model's own confidence: a threshold fitted on val, where the reference reads the photos as the model does, and the
share of the new photos above it.

Where nothing shifted the reference is the model's own head again and the estimate is ATC's. Where the photos
shifted, an answer the reference, adapted to them, does not give is counted wrong however sure the model is. It
fails where the adapted reference is confidently wrong along with the model, and like ATC it cannot see photos of a
class nobody was taught.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.probe.atc import atc, atc_interval, atc_threshold
from engine.probe.head_adapt import logits_of, refit_head
from engine.probe.linear import LinearFit, fit_linear

PSEUDO_CONFIDENCE = 0.9  # new photos the head labels with at least this probability join its training photos
C = 1.0  # the logistic regression's inverse regularisation, as the probe's default


def _probabilities(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _own_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), x.std(0) + 1e-6


@dataclass(frozen=True)
class Reference:
    """A head on the training photos' features that reads new photos on their own statistics.

    Attributes:
        head: Fitted on the training photos standardised on theirs (`head.mean`, `head.scale`), then refitted.
        mean: The new photos' feature means.
        scale: Their spread.
        n_pseudo: New photos it was refitted with.
    """

    head: LinearFit
    mean: np.ndarray
    scale: np.ndarray
    n_pseudo: int

    def support(self, x: np.ndarray, answers: np.ndarray, new: bool) -> np.ndarray:
        """The probability the reference gives each answer, on features `x` of new photos (`new`) or of photos like
        the training ones (val)."""
        mean, scale = (self.mean, self.scale) if new else (self.head.mean, self.head.scale)
        p = _probabilities(logits_of(self.head, (x - mean) / scale))
        return p[np.arange(len(answers)), answers]


def self_trained(head: LinearFit, zs: np.ndarray, ys: np.ndarray, zt: np.ndarray, c: float) -> tuple[LinearFit, int]:
    """`head` refitted on the standardised training features `zs` (labels `ys`) and the standardised new features `zt`
    it labels with at least `PSEUDO_CONFIDENCE` (self-training, one round), with the number of those."""
    p = _probabilities(logits_of(head, zt))
    sure = p.max(1) >= PSEUDO_CONFIDENCE
    refit = refit_head(head, np.concatenate([zs, zt[sure]]), np.concatenate([ys, p.argmax(1)[sure]]), c)
    return refit, int(sure.sum())


def adapted_reference(xs: np.ndarray, ys: np.ndarray, xt: np.ndarray, n_classes: int) -> Reference:
    """The reference for new photos of features `xt`, from training features `xs` with labels `ys`."""
    head = fit_linear(xs, ys, xs[:0], ys[:0], n_classes, C)
    mean, scale = _own_statistics(xt)
    refit, n_pseudo = self_trained(head, (xs - head.mean) / head.scale, ys, (xt - mean) / scale, C)
    return Reference(refit, mean, scale, n_pseudo)


@dataclass(frozen=True)
class Supported:
    """The accuracy expected on new photos by ATC on the reference's support for the model's answers."""

    accuracy: float
    interval: tuple[float, float]
    threshold: float  # of the reference's support, fitted on val
    n_pseudo: int


def supports(
    ref: Reference, x_val: np.ndarray, val_answers: np.ndarray, x_new: np.ndarray, new_answers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's support for a model's answers on val and on the new photos: the confidences ATC reads."""
    return ref.support(x_val, val_answers, new=False), ref.support(x_new, new_answers, new=True)


# PLR0913: val's features, answers and truth, and the new photos' features and answers
def supported_accuracy(  # noqa: PLR0913
    ref: Reference,
    x_val: np.ndarray,
    val_answers: np.ndarray,
    val_right: np.ndarray,
    x_new: np.ndarray,
    new_answers: np.ndarray,
) -> Supported:
    """The share of the new photos whose answer the reference supports beyond the threshold at which, on val, the
    share supported equals the model's val accuracy; with its 95% interval (`atc_interval`)."""
    on_val, on_new = supports(ref, x_val, val_answers, x_new, new_answers)
    return Supported(
        atc(on_val, val_right, on_new),
        atc_interval(on_val, val_right, on_new),
        atc_threshold(on_val, val_right),
        ref.n_pseudo,
    )
