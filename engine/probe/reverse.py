"""Reverse validation: how well a head's labels for unlabelled photos carry back to labelled ones (a criterion for
photos from somewhere else that needs no target label)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from engine.probe.linear import LinearFit


def reverse_accuracy(head: LinearFit, zt: np.ndarray, zv: np.ndarray, yv: np.ndarray, c: float = 1.0) -> float:
    """Reverse validation (Zhong et al. 2010; Ganin et al. 2016, section 5.1.2): a head trained on the target photos'
    features `zt` as `head` labels them, scored on the labelled validation photos' `zv`; both as `head` reads them.
    A reading of the target photos under which `head`'s labels are more consistent with the true classes transfers
    back better. Needs no target label; 0 when `head` gives the target photos fewer than two classes."""
    labels = (zt @ head.std_coef.T + head.std_intercept).argmax(1)
    if len(np.unique(labels)) < 2 or not len(yv):
        return 0.0
    back = LogisticRegression(C=c, max_iter=2000).fit(zt, labels)
    return float((back.predict(zv) == yv).mean())
