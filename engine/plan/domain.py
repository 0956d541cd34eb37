"""A plan for photos from somewhere else: the target photos it adapts to, the labelled target test it is scored on,
and whether the head reads its input standardised on the target photos' own statistics.

That last one is the simple fix that carries most of the gain (bench/domain.py: +8 points on the shared
photo→painting pair, +21 and +25 on shifted copies of the plant photos, at the probe): the head standardises its
input features before its linear layer (`ProbeHead`); with the target photos' mean and spread instead of the training
photos', features that shifted as a whole move back to where the head expects them. Photos like the training ones
keep the training photos' statistics (as domain-specific BatchNorm keeps one set per domain), so val is unchanged and
the saved model carries the target photos'. It costs one pass over the target photos and changes no weight. It is
chosen on evidence:

* with labelled target photos (class subfolders of the target folder): the one that gets more of them right;
* without: reverse validation (`engine.probe.reverse`): the target photos labelled by the head under each reading train
  a new head, which is scored on the labelled validation photos; the reading whose labels carry back better wins.
  On the three pairs above it ranks the two readings as their target tests do; the target entropy (lower when the
  head is surer) ranks them the other way on all three, and is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from engine.data.dataset import Dataset, Item
from engine.data.target import TargetSet, load_target
from engine.errors import DataError
from engine.plan.config import TrainConfig
from engine.plan.parts import TargetPart
from engine.plan.reasons import Decision
from engine.plan.rules import MAX_VAL_LOSS
from engine.probe.gap import stage_gap, target_features
from engine.probe.head_adapt import logits_of
from engine.probe.linear import LinearFit, ProbeResult
from engine.probe.reference import PSEUDO_CONFIDENCE  # target photos labelled this surely join the head's training
from engine.probe.reference import adapted_reference, self_trained, supported_accuracy
from engine.probe.reverse import reverse_accuracy
from engine.progress import QUIET_STEP, Step

from engine.plan.adabn import BnChoice
from engine.plan.target_head import TargetHeadChoice
from engine.plan.trials import TrialChoice

DEFAULT_STRENGTH = 1.0  # DANN's and MMD's weight once ramped up (the papers' and bench/domain.py's)


@dataclass(frozen=True)
class Targets:
    """The target photos a plan adapts to and the labelled target photos it is scored on."""

    photos: TargetSet | None
    test: list[Item] = field(default_factory=list)


def load_targets(cfg: TrainConfig, ds: Dataset) -> Targets:
    """The config's target folder and labelled target test folder, checked against the training data and each other.

    Raises:
        DataError: A folder that is missing, empty or unusable (`load_target`), a target test with no labelled photo,
            or a photo that is both adapted to and tested on.
    """
    d = cfg.data
    if not d.target and not d.target_test:
        return Targets(None)
    photos = load_target(d.target, ds, d.root, d.allow_outside_root, cfg.runtime.seed) if d.target else None
    test: list[Item] = []
    if d.target_test:
        tested = load_target(d.target_test, ds, d.root, d.allow_outside_root, cfg.runtime.seed)
        if not tested.labelled:
            raise DataError(
                f"{d.target_test}: no labelled photos; the target test needs one subfolder per class, named as your "
                f"training classes"
            )
        test = [Item(it.path, it.label, "target_test") for it in tested.labelled]
        if photos is not None:
            both = set(tested.digests.values()) & {photos.digests[p] for p in photos.paths}
            if both:
                raise DataError(
                    f"{d.target_test}: {len(both)} of its photos are also in the target folder {d.target}; the target "
                    f"test must hold photos nothing adapted to (move them out of one folder)"
                )
    return Targets(photos, test)


@dataclass(frozen=True)
class NormChoice:
    """Whether the head standardises its input on the target photos and whether it is refitted with the target photos
    it labels confidently (pseudo-labels), as the evidence says, with the numbers behind it."""

    target_norm: bool
    evidence: dict
    head: LinearFit | None = None  # the head refitted with the confident target photos
    n_pseudo: int = 0  # target photos it was refitted with
    pseudo: bool = False  # the evidence keeps the refitted head
    n_labelled: int = 0  # labelled target photos it was decided on (0: reverse validation)

    def decision(self, asked: bool | None) -> Decision:
        """The decision, with what the config asked for (None: the evidence decides)."""
        evidence = {**self.evidence, "asked": asked, "use": self.target_norm, "refit": self.pseudo}
        evidence |= {"n_labelled": self.n_labelled, "n_pseudo": self.n_pseudo, "confidence": PSEUDO_CONFIDENCE}
        norm = self.target_norm if asked is None else asked
        return Decision(
            "target-norm",
            "target statistics" if norm else "training statistics",
            ("target statistics", "training statistics", "refitted"),
            evidence,
            about="target",
        )


def _standardised(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (x - mean) / scale


def _accuracy(head: LinearFit, x: np.ndarray, y: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> float:
    logits = _standardised(x, mean, scale) @ head.std_coef.T + head.std_intercept
    return float((logits.argmax(1) == y).mean()) if len(y) else 0.0


def pseudo_labelled(head: LinearFit, xs: np.ndarray, ys: np.ndarray, zt: np.ndarray, c: float) -> tuple[LinearFit, int]:
    """`head` refitted on its training features `xs` (raw) and the standardised target features `zt` it labels with at
    least `PSEUDO_CONFIDENCE` (self-training, one round); the standardisation stays the training photos'."""
    return self_trained(head, _standardised(xs, head.mean, head.scale), ys, zt, c)


# PLR0913: the head and the features it is judged on, and who watches
def choose_target_norm(  # noqa: PLR0913
    probe: ProbeResult,
    head: LinearFit,
    taps: tuple[int, ...],
    photos: TargetSet,
    c: float = 1.0,
    weights: str = "auto",
    in_chans: int = 3,
    progress: Step = QUIET_STEP,
) -> NormChoice:
    """Whether `head` (fitted on `probe`'s features at `taps`) should read target photos standardised on their own
    statistics. Photos like the training ones keep the training photos' (val is unchanged either way), so the choice
    is the target photos': by their labelled ones when there are some, else by reverse validation."""
    ft = target_features(photos, probe.backbone, weights, in_chans, progress)
    xt = ft.x("target", taps)
    mean_t, scale_t = xt.mean(0), xt.std(0) + 1e-6
    xv, yv = probe.features.x("val", taps), probe.features.y("val")
    zt = {"source": _standardised(xt, head.mean, head.scale), "target": _standardised(xt, mean_t, scale_t)}
    refit, n_pseudo = pseudo_labelled(head, probe.features.x("train", taps), probe.features.y("train"), zt["target"], c)
    refit = replace(refit, accuracy=_accuracy(refit, xv, yv, head.mean, head.scale))  # as epoch 0 validates it
    val = {"source": _accuracy(head, xv, yv, head.mean, head.scale), "pseudo": refit.accuracy}
    n_labelled = len(photos.labelled)
    if n_labelled:
        rows = np.arange(len(photos.unlabelled), len(photos.paths))
        xl, yl = xt[rows], np.array([it.label for it in photos.labelled])
        on = {
            "source": _accuracy(head, xl, yl, head.mean, head.scale),
            "target": _accuracy(head, xl, yl, mean_t, scale_t),
            "pseudo": _accuracy(refit, xl, yl, mean_t, scale_t),
        }
        use = on["target"] > on["source"]
        keep = use and on["pseudo"] > on["target"]
        return NormChoice(use, {"target_val": on, "val": val}, refit, n_pseudo, keep, n_labelled)
    zv = _standardised(xv, head.mean, head.scale)
    trained = _standardised(probe.features.x("train", taps), head.mean, head.scale)
    dom = {k: stage_gap(trained, z)[0] for k, z in zt.items()}
    rev = {k: reverse_accuracy(head, z, zv, yv, c) for k, z in zt.items()}
    rev["pseudo"] = reverse_accuracy(refit, zt["target"], zv, yv, c)  # the refitted head, as the run would start
    use = rev["target"] > rev["source"]
    keep = use and val["pseudo"] >= val["source"] - MAX_VAL_LOSS
    feats = Features(probe.features.x("train", taps), probe.features.y("train"), xv, yv, xt)
    expected = _expected({"source": head, "target": head, "pseudo": refit}, feats, zv, zt)
    evidence = {"domain_acc": dom, "reverse": rev, "val": val, "expected": expected, "expected_by": "reference"}
    return NormChoice(use, evidence, refit, n_pseudo, keep)


class Features(NamedTuple):
    """The raw features the readings are scored on: training photos with their classes, val with theirs, target."""

    xs: np.ndarray
    ys: np.ndarray
    xv: np.ndarray
    yv: np.ndarray
    xt: np.ndarray


def _expected(heads: dict[str, LinearFit], f: Features, zv: np.ndarray, zt: dict[str, np.ndarray]) -> dict[str, dict]:
    """The accuracy expected on the target photos for each reading (as trained, on their own statistics, refitted),
    with its interval, by the reference `engine estimate` also uses: ATC on the support a reference adapted to the
    target photos gives each answer (`engine.probe.reference`). Stated beside reverse validation, which still chooses:
    the reference reads the target photos as the refitted reading does, so it cannot be the judge between them."""
    ref = adapted_reference(f.xs, f.ys, f.xt, heads["source"].std_coef.shape[0])
    out = {}
    for k, h in heads.items():
        answers_v = logits_of(h, zv).argmax(1)
        answers = logits_of(h, zt["source" if k == "source" else "target"]).argmax(1)
        found = supported_accuracy(ref, f.xv, answers_v, answers_v == f.yv, f.xt, answers)
        out[k] = {"estimate": found.accuracy, "low": found.interval[0], "high": found.interval[1]}
    return out


def refitted(evidence: NormChoice | None, norm: bool, asked: bool | None) -> bool:
    """Whether the run starts from the head refitted with the confident target photos: asked for, or kept by the
    evidence, and only with the head standardised on the target photos (the refit read them that way)."""
    if evidence is None or evidence.head is None or not norm or asked is False:
        return False
    return asked is True or evidence.pseudo


@dataclass(frozen=True)
class TargetEvidence:
    """What the target photos showed before anything trains: the reading chosen for the head (its standardisation and
    refit), AdaBN's evidence or why it could not be gathered, and auto's trials (the simple fixes and the
    adaptations)."""

    norm: NormChoice | None = None
    bn: BnChoice | None = None
    bn_missing: str = ""  # why AdaBN, asked for, could not be scored ("": it could, or it was not asked for)
    trials: TrialChoice | None = None
    head: TargetHeadChoice | None = None  # the head-level adaptation (engine.plan.target_head)


def target_notes(targets: Targets) -> tuple[Decision, ...]:
    """What loading the target photos found (skipped files, subfolders that are not classes), each said once."""
    notes = targets.photos.notes if targets.photos is not None else []
    return tuple(Decision("target-note", note, about="target") for note in notes)


def target_section(targets: Targets, cfg: TrainConfig, ev: TargetEvidence) -> tuple[TargetPart, tuple[Decision, ...]]:
    """The plan's target section and its decisions: the folders' counts and fingerprint, the adaptation asked for or
    chosen by auto's trials (DANN or MMD, and its strength), the target standardisation and refit, the BatchNorm
    statistics, and the simple fix kept (which the caller applies to the phases)."""
    photos = targets.photos
    reg = cfg.regularisation
    adapt = reg.adapt or "none"
    strength = reg.adapt_strength if reg.adapt_strength is not None else DEFAULT_STRENGTH
    trials = ev.trials if reg.adapt is None else None
    if trials is not None:
        adapt, strength = trials.method, trials.strength
    said: list[Decision] = []
    norm = ev.norm.target_norm if ev.norm is not None else False
    if ev.norm is not None:
        said.append(ev.norm.decision(reg.target_norm if photos is not None else None))
    elif reg.target_norm is not None and photos is not None:  # asked for, with no evidence to show
        said.append(Decision("target-norm", "asked", (), {"asked": reg.target_norm, "n_labelled": 0}, about="target"))
    if reg.target_norm is not None and photos is not None:
        norm = reg.target_norm
    pseudo = ev.norm.n_pseudo if refitted(ev.norm, norm, reg.target_pseudo) else 0  # as the run's head starts
    start = start_reverse(ev.norm, norm, reg.target_pseudo)  # the end check's gate: the start scored without labels
    if ev.head is not None:
        said.append(ev.head.decision())
        start = ev.head.reverse if ev.head.method and start else start
    use_bn = False
    if ev.bn is not None:
        use_bn = ev.bn.use if reg.target_bn is None else reg.target_bn
        said.append(ev.bn.decision(reg.target_bn))
        norm = norm or use_bn  # the re-estimated features are read on their own statistics
        start = ev.bn.score if use_bn and start else start
    if trials is not None:
        said += trials.decisions
    if adapt != "none":
        evidence = {"text": ADAPT_TEXT[adapt], "strength": strength, "n_target": len(photos.paths)}
        said.append(Decision("adapt", adapt, tuple(ADAPT_TEXT), evidence, about="target"))
    if ev.bn_missing:
        said.append(Decision("adabn", "not possible", (), {"why": ev.bn_missing}, about="target"))
    section = TargetPart(
        folder=photos.root if photos is not None else "",
        fingerprint=photos.fingerprint() if photos is not None else "",
        n=len(photos.paths) if photos is not None else 0,
        n_val=len(photos.labelled) if photos is not None else 0,
        n_test=len(targets.test),
        adapt=adapt,
        adapt_strength=strength if adapt != "none" else 0.0,
        norm=norm,
        pseudo=pseudo,
        reverse=start,
        bn=use_bn,
        fix=trials.fix if trials is not None else "",
        head=ev.head.method if ev.head is not None else "",
    )
    return section, tuple(said)


def start_reverse(evidence: NormChoice | None, norm: bool, asked: bool | None) -> float:
    """The reverse validation score of the head the run starts from, reading target photos as the run will (0
    without the score: labelled target photos chose, or no target photos); the run's end compares the chosen
    model's with it (engine.train.reverse_check)."""
    rev = evidence.evidence.get("reverse") if evidence is not None else None
    if not rev:
        return 0.0
    if refitted(evidence, norm, asked):
        return rev["pseudo"]
    return rev["target" if norm else "source"]


ADAPT_TEXT = {
    "dann": "a domain classifier behind a gradient reversal layer (DANN)",
    "mmd": "the multi-kernel MMD between training and target photos (DAN)",
}


def keeps_epoch(
    val_acc: float, target_val: float | None, kept: tuple[float, float], top_val: float, adapted: bool
) -> bool:
    """Whether the epoch just validated becomes the run's model; `kept` is (val accuracy, labelled target photos'
    accuracy) of the epoch kept so far.

    Without adaptation: it beats the best on val. With it, val does not show what adaptation gains (the training
    photos are already right), so: more labelled target photos right, when there are some (ties: val); else the latest
    epoch whose val accuracy is at most `MAX_VAL_LOSS` below the best seen (`top_val`, this epoch included).
    """
    best_val, best_target = kept
    if not adapted:
        return val_acc > best_val
    if target_val is not None:
        return target_val > best_target or (target_val == best_target and val_acc > best_val)
    return val_acc >= top_val - MAX_VAL_LOSS


def head_distance(probe: ProbeResult, taps: tuple[int, ...], photos: TargetSet, weights: str, in_chans: int) -> float:
    """How well a domain classifier tells the head's input at `taps` on the target photos from its input on the
    training photos (5-fold accuracy: 0.5 is chance), on `probe`'s backbone."""
    xt = target_features(photos, probe.backbone, weights, in_chans)
    return stage_gap(probe.features.x("train", taps), xt.x("target", taps))[0]
