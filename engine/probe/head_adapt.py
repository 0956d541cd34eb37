"""A linear head adapted to unlabelled photos from somewhere else, on their cached features: no layer below the head
moves, so each method costs seconds, not an epoch.

Every method takes the head (`LinearFit`) and features already read as the run will read them: `xs` the training
photos' and `zv` the val photos' standardised on the training photos' statistics, `zt` the target photos' on the
statistics the plan reads them with. Each returns a new head on the same standardised inputs (`std_coef`,
`std_intercept`; the scaler kept), so the run starts from it as from any probe head.

* `coral_head` (CORAL; Sun, Feng & Saenko, AAAI 2016): the training features whitened with their own covariance and
  coloured with the target photos' (and moved to their mean), the head refitted on them.
* `t3a_head` (T3A; Iwasawa & Matsuo, NeurIPS 2021): each class's prototype is the mean of unit-length supports: the
  head's own weight vector and the target photos it labels that class with lowest entropy (at most `T3A_SUPPORTS`);
  a photo's class is the prototype it points along. Done once over the folder, not photo by photo, so it is a linear
  head (the photo's own length only scales its logits, which the temperature fitted on val absorbs).
* `shot_head` (SHOT's information maximisation with centroid pseudo-labels; Liang, Hu & Feng, ICML 2020): the head is
  kept and the features move: a residual map of rank `SHOT_RANK` is trained to make the target predictions confident
  (low entropy per photo) and diverse (a high entropy of their mean), plus `SHOT_BETA` times the cross-entropy to the
  labels of the nearest class centroid. Map and head are linear, so they fold into one head. SHOT is source-free;
  a run has its training photos, so the planner also holds the map to their labels (their cross-entropy, weighted
  `SHOT_ANCHOR`): the map then moves the target photos without moving val (bench/domain.py's head-shot row, and
  bench/RESULTS.md for the plans).
* `em_head` (label shift; Saerens, Latinne & Decaestecker 2002): the class mix of the target photos by EM
  (`engine.probe.priors`) and the head's biases moved by the log of its ratio to the training mix.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from engine.calibration import fit_temperature
from engine.probe.linear import LinearFit
from engine.probe.priors import em_mix

CORAL_EPS = 1.0  # added to each covariance's diagonal before its square root (CORAL's own regulariser)
T3A_SUPPORTS = 100  # target photos kept per class as supports, the surest first (T3A's largest filter size)
SHOT_RANK = 64  # the rank of the residual map that stands for the layers below the head
SHOT_STEPS = 200  # Adam steps over all the target photos at once
SHOT_LR = 1e-3
SHOT_BETA = 0.3  # the weight of the centroid pseudo-labels' cross-entropy (SHOT's)
SHOT_RELABEL = 50  # steps between two rounds of centroid pseudo-labels
SHOT_ANCHOR = 1.0  # the weight of the training photos' cross-entropy when the map is held to their labels
MIN_MIX = 1e-4  # a class's share below this counts as this (the log of the ratio stays finite)


def logits_of(head: LinearFit, z: np.ndarray) -> np.ndarray:
    """The head's logits for standardised features `z`."""
    return z @ head.std_coef.T + head.std_intercept


def with_weights(head: LinearFit, coef: np.ndarray, intercept: np.ndarray) -> LinearFit:
    """`head` with other weights on the same standardised inputs."""
    return replace(head, std_coef=coef.astype(np.float32), std_intercept=intercept.astype(np.float32))


def refit_head(head: LinearFit, z: np.ndarray, y: np.ndarray, c: float) -> LinearFit:
    """`head`'s classes refitted by logistic regression on standardised features `z` with labels `y` (a class with no
    photo never wins; two classes as softmax logits)."""
    clf = LogisticRegression(C=c, max_iter=2000).fit(z, y)
    w, b = clf.coef_, clf.intercept_
    if w.shape[0] == 1:  # two classes: sklearn keeps one row, which is the second class against the first
        w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
    coef = np.zeros_like(head.std_coef)
    intercept = np.full_like(head.std_intercept, -1e4)
    coef[clf.classes_] = w
    intercept[clf.classes_] = b
    return with_weights(head, coef, intercept)


def _power(cov: np.ndarray, power: float) -> np.ndarray:
    """A symmetric positive definite matrix raised to `power` (eigendecomposition)."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.maximum(values, 1e-12) ** power) @ vectors.T


def recoloured(xs: np.ndarray, zt: np.ndarray) -> np.ndarray:
    """`xs` with the mean and covariance of `zt` (each covariance plus `CORAL_EPS` on its diagonal)."""
    eye = CORAL_EPS * np.eye(xs.shape[1])
    cs, ct = np.cov(xs, rowvar=False) + eye, np.cov(zt, rowvar=False) + eye
    return (xs - xs.mean(0)) @ _power(cs, -0.5) @ _power(ct, 0.5) + zt.mean(0)


def coral_head(head: LinearFit, xs: np.ndarray, ys: np.ndarray, zt: np.ndarray, c: float) -> LinearFit:
    """CORAL: the head refitted on the training features recoloured as the target photos'."""
    return refit_head(head, recoloured(xs, zt), ys, c)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _entropy(logits: np.ndarray) -> np.ndarray:
    p = torch.from_numpy(np.asarray(logits, dtype=np.float64)).softmax(1)
    return (-(p * p.clamp_min(1e-12).log()).sum(1)).numpy()


def t3a_head(head: LinearFit, zt: np.ndarray, zv: np.ndarray, yv: np.ndarray) -> LinearFit:
    """T3A's prototypes as a head, its logits scaled by the temperature that fits val (`zv`, `yv`)."""
    logits = logits_of(head, zt)
    pred, entropy, unit = logits.argmax(1), _entropy(logits), _unit(zt)
    protos = _unit(head.std_coef.astype(np.float64)).copy()
    for k in range(len(protos)):
        mine = np.flatnonzero(pred == k)
        surest = mine[np.argsort(entropy[mine], kind="stable")[:T3A_SUPPORTS]]
        protos[k] = (protos[k] + unit[surest].sum(0)) / (1 + len(surest))
    t = fit_temperature(torch.from_numpy(zv @ protos.T), torch.from_numpy(yv))
    return with_weights(head, protos / t, np.zeros(len(protos)))


def im_loss(logits: torch.Tensor) -> torch.Tensor:
    """SHOT's information maximisation loss: the mean entropy of the predictions (low when each is confident) minus
    the entropy of their mean (high when the classes are used evenly)."""
    p = logits.softmax(1)
    confident = -(p * F.log_softmax(logits, 1)).sum(1).mean()
    mean = p.mean(0)
    diverse = -(mean * mean.clamp_min(1e-12).log()).sum()
    return confident - diverse


def centroid_labels(z: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """SHOT's pseudo-labels: class centroids weighted by the predictions, each photo labelled by the nearest centroid
    (cosine), then once more with centroids of those labels."""
    unit = F.normalize(z, dim=1)
    weights = logits.softmax(1)
    for _ in range(2):
        centroids = F.normalize(weights.T @ unit, dim=1)
        labels = (unit @ centroids.T).argmax(1)
        weights = F.one_hot(labels, logits.shape[1]).to(z.dtype)
    return labels


def shot_head(
    head: LinearFit, zt: np.ndarray, seed: int = 0, anchor: tuple[np.ndarray, np.ndarray] | None = None
) -> LinearFit:
    """SHOT's information maximisation on a residual map of the target features, folded into the head. With `anchor`
    (the standardised training features and their labels) the map also keeps the training photos' cross-entropy
    low: SHOT is source-free, this run is not, and the map then moves the target photos without moving val."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.from_numpy(np.asarray(zt, dtype=np.float32))
    w, b = torch.from_numpy(head.std_coef).float(), torch.from_numpy(head.std_intercept).float()
    down = (torch.randn(z.shape[1], SHOT_RANK, generator=gen) / z.shape[1] ** 0.5).requires_grad_()
    up = torch.zeros(SHOT_RANK, z.shape[1], requires_grad=True)  # starts at the identity map
    opt = torch.optim.Adam([down, up], lr=SHOT_LR)
    if anchor is not None:
        xs = torch.from_numpy(np.asarray(anchor[0], dtype=np.float32))
        ys = torch.from_numpy(np.asarray(anchor[1]))
    labels = None
    for step in range(SHOT_STEPS):
        mapped = z + z @ down @ up
        logits = mapped @ w.T + b
        if step % SHOT_RELABEL == 0:
            labels = centroid_labels(mapped.detach(), logits.detach())
        loss = im_loss(logits) + SHOT_BETA * F.cross_entropy(logits, labels)
        if anchor is not None:
            loss = loss + SHOT_ANCHOR * F.cross_entropy((xs + xs @ down @ up) @ w.T + b, ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        coef = w + w @ up.T @ down.T  # (z + z A B) W^T = z (W + W B^T A^T)^T
    return with_weights(head, coef.numpy(), head.std_intercept)


def em_head(head: LinearFit, zt: np.ndarray, zv: np.ndarray, yv: np.ndarray, train_mix: np.ndarray) -> LinearFit:
    """The head's biases moved by the log ratio of the target photos' class mix (EM on the probabilities calibrated on
    val) to the mix it learnt under; the temperature turns that calibrated shift back into the head's own logits."""
    t = fit_temperature(torch.from_numpy(logits_of(head, zv)), torch.from_numpy(yv))
    probs = torch.from_numpy(logits_of(head, zt) / t).softmax(1).numpy()
    train_mix = np.asarray(train_mix, dtype=np.float64) / np.sum(train_mix)
    mix = em_mix(probs, train_mix)
    shift = t * (np.log(np.maximum(mix, MIN_MIX)) - np.log(np.maximum(train_mix, MIN_MIX)))
    return with_weights(head, head.std_coef, head.std_intercept + shift)
