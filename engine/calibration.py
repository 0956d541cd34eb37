"""How far to trust an answer: temperature scaling fitted on val, the expected calibration error, and an "unsure"
threshold chosen from val's coverage-against-accuracy curve.

* Temperature scaling (Guo et al. 2017): one number T divides the logits; fitted by minimising the negative log
  likelihood of the val photos. It changes no prediction, only how sure each one says it is. The model carries T (its
  head's `temperature` buffer), so TorchScript and ONNX exports give the calibrated probabilities too.
* ECE: torchmetrics' multiclass calibration error (15 equal-width confidence bins, L1).
* The unsure threshold: the lowest confidence at which the photos answered on val are right at least
  `TARGET_ERROR_SHARE` times less often than all of them (half the errors, by default), so a prediction below it says
  "unsure" with its top guesses instead of one answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

BINS = 15
TARGET_ERROR_SHARE = 0.5  # the answered photos make at most this share of val's error rate


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The temperature that minimises the val photos' negative log likelihood (searched on log T, L-BFGS)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits, y = logits.detach().float(), y.long()

    def nll() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(nll)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def ece(probs: torch.Tensor, y: torch.Tensor) -> float:
    """The expected calibration error of class probabilities `probs` against labels `y`."""
    return float(multiclass_calibration_error(probs.float(), y.long(), num_classes=probs.shape[1], n_bins=BINS))


def reliability(probs: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """Per confidence bin that holds photos: its mean confidence, its accuracy and its count (the reliability
    diagram)."""
    conf, pred = probs.max(1)
    right = (pred == y).float()
    edges = torch.linspace(0, 1, BINS + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            out.append(
                {
                    "confidence": float(conf[inside].mean()),
                    "accuracy": float(right[inside].mean()),
                    "n": int(inside.sum()),
                }
            )
    return out


@dataclass(frozen=True)
class Unsure:
    """Below `threshold` a prediction is "unsure"; on val, `coverage` of the photos are answered and `accuracy` of
    those are right."""

    threshold: float
    coverage: float
    accuracy: float

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        """What the threshold means on val, in words (the Predict page and the model card say it this way)."""
        return (
            f"answering {self.coverage:.0%} of photos (those at least {self.threshold:.0%} sure), {self.accuracy:.0%} "
            f"of those are right; below that it says unsure"
        )


def unsure_threshold(probs: torch.Tensor, y: torch.Tensor) -> Unsure:
    """The lowest confidence whose answered val photos make at most `TARGET_ERROR_SHARE` of val's error rate (every
    photo answered when val has no error)."""
    conf, pred = probs.max(1)
    right = (pred == y).numpy()
    conf = conf.numpy()
    order = np.argsort(-conf)
    answered_right = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    error = 1.0 - right.mean()
    goal = 1.0 - TARGET_ERROR_SHARE * error
    if error == 0:
        return Unsure(0.0, 1.0, 1.0)
    ok = np.flatnonzero(answered_right >= goal)
    k = int(ok.max()) + 1 if len(ok) else 1  # the largest prefix (most photos answered) that meets the goal
    return Unsure(float(conf[order][k - 1]), k / len(order), float(answered_right[k - 1]))
