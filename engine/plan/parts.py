"""The plan: one frozen object made of typed parts, made once; the Train page and `engine plan` show it, the trainer
executes it, and it is stored with the run.

* `DataPart`: the photos it belongs to (folder, fingerprint, split sizes, leaks across splits).
* `input`: the input contract (`engine.data.spec.InputSpec`).
* `HeadPart`: the head the run starts from and the evidence behind it (its taps, mirror-image averaging, the probe's
  and the head's scores, every candidate auto scored).
* `Phases`: the layer groups and each phase's freeze map, rates, epochs, augmentation and BatchNorm policy.
* `TargetPart`: the photos from where the model will be used, and how the run reads and adapts to them.
* `DistillPart`: the trained run whose answers on the training photos this run also learns from (distillation).
* `Cost`: the seconds of each step and the memory and disk the run needs.
* `decisions`: why, as typed records (`engine.plan.reasons`), rendered to words by one function.

A stored plan carries `PLAN_VERSION`; one of another version, or with a field this version does not know, is refused
in one line (`PlanError`), never misread: a plan cache entry is then made again, a run says what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from engine.data.spec import InputSpec
from engine.errors import TransferLabError
from engine.model.bn_stats import BN_SAMPLE
from engine.model.catalogue import is_transformer
from engine.plan.reasons import Decision, render
from engine.plan.rules import BANDS, BASE_LR, band, discriminative, layer_decay
from engine.probe.choose import HeadChoice

PLAN_VERSION = 11  # 5: the target domain; 6: reverse validation and adaptation trials; 7: AdaBN; 8: the simple fixes
# tried; 9: typed parts; 10: the head-level adaptation (TargetPart.head); 11: distillation (DistillPart)


class PlanError(TransferLabError, ValueError):
    """A stored plan that cannot be read as this version's: another version, or a field it does not know."""


@dataclass(frozen=True)
class DataPart:
    """The photos a plan belongs to: the folder, its fingerprint, the split sizes and the leaks across splits."""

    path: str
    fingerprint: str
    test_source: str = ""
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    leaks: int = 0  # val or test photos that are (near) copies of training photos: the score they give is inflated
    leak_note: str = ""

    @property
    def n_outside_test(self) -> int:
        """The photos choices may read (train and val): what cross-validation scores heads on."""
        return self.n_train + self.n_val


@dataclass(frozen=True)
class HeadPart:
    """The head the run starts from (the linear probe's solution, or random) and the evidence behind it."""

    init: str  # "probe" (the linear probe's solution) or "random"
    taps: tuple[int, ...]
    label: str  # the taps in words ("blocks.3 to blocks.6, with mirror images")
    flip: bool = False  # the features of each photo and its mirror image are averaged
    probe_accuracy: float | None = None  # the final-feature probe on val
    accuracy: float | None = None  # the head the run starts from, on val
    cv: float | None = None  # its cross-validated score over train + val
    metric: str = "accuracy"
    candidates: tuple[HeadChoice, ...] = ()  # every head auto scored


@dataclass(frozen=True)
class Phases:
    """Phase 1 trains the head alone; phase 2 trains the groups with `frozen[i] == False` at `lrs[i]`. The run keeps
    the model that is best on the validation photos: the head it started from, or any epoch."""

    groups: tuple[str, ...]
    labels: tuple[str, ...]
    head_lr: float
    head_epochs: int
    frozen: tuple[bool, ...]
    lrs: tuple[float, ...]
    finetune_epochs: int
    warmup_epochs: int
    augment: str
    bn_frozen_stats: bool
    batch_size: int
    views: int

    @property
    def trainable(self) -> list[int]:
        return [i for i, f in enumerate(self.frozen) if not f]

    @property
    def total_epochs(self) -> int:
        return self.head_epochs + self.finetune_epochs

    @property
    def trains_below_head(self) -> bool:
        """Phase 2 trains a group below the head: what adaptation (DANN, MMD) needs to move anything."""
        return bool(self.finetune_epochs) and any(i < len(self.groups) - 1 for i in self.trainable)

    @property
    def head_only(self) -> "Phases":
        """These phases with the head alone trainable and no phase 2 (the linear head is the model)."""
        head = len(self.groups) - 1
        return replace(
            self,
            finetune_epochs=0,
            warmup_epochs=0,
            frozen=tuple(i != head for i in range(len(self.groups))),
            lrs=tuple(lr if i == head else 0.0 for i, lr in enumerate(self.lrs)),
        )


@dataclass(frozen=True)
class TargetPart:
    """Photos from where the model will be used (`engine.plan.domain`): how many, how the run reads them and what it
    adapts with."""

    folder: str = ""  # the folder of target photos ("": none)
    fingerprint: str = ""
    n: int = 0  # target photos adapted to (unlabelled and labelled)
    n_val: int = 0  # labelled target photos: they choose, instead of the label-free criterion
    n_test: int = 0  # labelled target photos scored once, at the end
    adapt: str = "none"  # dann or mmd in phase 2, on the head's input (engine.model.adapt)
    adapt_strength: float = 0.0
    norm: bool = False  # the head standardises its input on the target photos' statistics
    pseudo: int = 0  # target photos the starting head was refitted with (confident pseudo-labels)
    reverse: float = 0.0  # the starting head's reverse validation score as it reads target photos (0: none)
    bn: bool = False  # the saved model's BatchNorm statistics are re-estimated on the target photos (AdaBN)
    fix: str = ""  # the simple fix auto's trials kept for phase 2 (engine.plan.trials.FIX_TEXT; "": none)
    head: str = ""  # the head-level adaptation the run starts from (engine.plan.target_head; "": none)

    @property
    def checks_against_start(self) -> bool:
        """The run's end checks a trained epoch against the starting head by reverse validation
        (`engine.train.reverse_check`): the plan scored the start without labels, and no labelled target photo
        chooses instead."""
        return self.reverse > 0 and not self.n_val

    def reads(self, n_val: int, checked: bool) -> int:
        """Images the end of the run reads for the target photos, beyond val and the test split: the target photos for
        their statistics, the target test for the chosen model and the start, with `checked` the `n_val` validation
        photos and the target photos again for both models, and AdaBN's sample once for the saved model (and once per
        model checked)."""
        n = (self.n if self.norm else 0) + 2 * self.n_test
        n += 2 * (n_val + self.n) if checked else 0
        n += (3 if checked else 1) * min(BN_SAMPLE, self.n) if self.bn else 0
        return n


@dataclass(frozen=True)
class DistillPart:
    """The teacher of a distilled run (`engine.plan.distill`): a trained run of the same classes whose answers on the
    training photos (read once, before the first epoch, and kept in the run folder) the run learns from beside the
    labels: loss = (1 - weight) x cross-entropy + weight x temperature² x KL(teacher || student), both softened by the
    temperature (Hinton et al. 2015)."""

    teacher: str = ""  # the teacher run's id or folder ("": no distillation)
    backbone: str = ""  # the teacher's backbone
    input_size: int = 0  # the side of the teacher's input, in pixels
    params: int = 0  # the teacher's parameters
    val_accuracy: float | None = None  # the teacher's own val accuracy, as its run recorded it
    n_target: int = (
        0  # target photos the teacher also answers for: phase 2 learns its answers on them beside every batch
    )
    weight: float = 0.0
    temperature: float = 1.0

    @property
    def on(self) -> bool:
        return bool(self.teacher)


@dataclass(frozen=True)
class Cost:
    """What the run will take: the seconds of each step (engine.plan.cost) and the memory and disk it needs."""

    estimate_s: float = 0.0  # the whole run, planning included
    plan_s: float = 0.0  # of which planning (loading, probing, choosing the head)
    start_s: float = 0.0  # validating the starting model (epoch 0)
    cache_s: float = 0.0  # running the frozen part once: augmented views, activations at the cut
    teach_s: float = 0.0  # the teacher's answers on the training photos (a distilled run), once
    finetune_epoch_s: float = 0.0  # one phase-2 epoch, from the measured forward speed and the groups' FLOPs
    score_s: float = 0.0  # the final validation and test scoring
    images_per_s: float = 0.0  # the forward pace the costs were counted at (the probe's, decoding included)
    ram_bytes: int = 0
    disk_bytes: int = 0

    @property
    def run_s(self) -> float:
        """The run's seconds once the plan exists (its estimate less the planning already done)."""
        return max(0.0, self.estimate_s - self.plan_s)

    @property
    def run_minutes(self) -> int:
        """`run_s` in whole minutes, at least one: what a button that starts the run says."""
        return max(1, round(self.run_s / 60))

    @property
    def ram_gb(self) -> float:
        return self.ram_bytes / 1e9

    @property
    def disk_gb(self) -> float:
        return self.disk_bytes / 1e9


@dataclass(frozen=True)
class Plan:
    """What a run executes, in typed parts (see the module's docstring)."""

    strategy: str
    backbone: str
    in_chans: int
    data: DataPart
    input: InputSpec
    head: HeadPart
    phases: Phases
    target: TargetPart = field(default_factory=TargetPart)
    distill: DistillPart = field(default_factory=DistillPart)
    cost: Cost = field(default_factory=Cost)
    decisions: tuple[Decision, ...] = ()  # why, as data (engine.plan.reasons), in the order they were made
    edited: bool = False

    def seconds_left(self, done: int = 0) -> float:
        """The run's seconds once its plan exists and `done` epochs are behind it (a resumed run): the caches, the
        epochs left at the plan's costs and the scoring; `cost.run_s` for a fresh run. A head epoch costs its share
        of what the plan counts beside the caches, the fine-tuning epochs and the scoring."""
        c, ph = self.cost, self.phases
        if done <= 0:
            return c.run_s
        tuning = ph.finetune_epochs * c.finetune_epoch_s
        head_s = max(0.0, c.run_s - c.start_s - c.teach_s - c.cache_s - c.score_s - tuning) / max(1, ph.head_epochs)
        head_left = max(0, ph.head_epochs - done)
        tuning_left = max(0, min(ph.finetune_epochs, ph.total_epochs - done))
        return c.cache_s + c.score_s + head_left * head_s + tuning_left * c.finetune_epoch_s

    @property
    def reason(self) -> str:
        """Why the plan is what it is, in words: its decisions about the plan, rendered."""
        return render(self.decisions, "plan")

    @property
    def target_reason(self) -> str:
        """What the plan does with the photos from where the model will be used, and why, in words."""
        return render(self.decisions, "target")

    def recommendation(self) -> dict:
        """What this plan advises, as the Probe page shows it: what it will train, the head, the reason in words, and
        the classic rule of thumb for its final-feature probe."""
        ph = self.phases
        trained = [g for g, f in zip(ph.groups[:-1], ph.frozen[:-1]) if not f]
        does = (
            f"fine-tune {', '.join(trained)} with the head for {ph.finetune_epochs} epochs"
            if trained and ph.finetune_epochs
            else "train only a new head (feature extraction)"
        )
        rule = None
        if self.head.probe_accuracy is not None:
            b = BANDS[band(self.head.probe_accuracy)]
            rule = {"probe_accuracy": self.head.probe_accuracy, "band": b[1], "suggests": b[2]}
        return {
            "strategy": self.strategy,
            "does": does,
            "head": self.head.label,
            "reason": self.reason,
            "rule_of_thumb": rule,
        }

    # PLR0913: keyword edits of the phases' fields, each optional
    def edit(  # noqa: PLR0913
        self,
        frozen: tuple[bool, ...] | None = None,
        lrs: tuple[float, ...] | None = None,
        head_lr: float | None = None,
        head_epochs: int | None = None,
        finetune_epochs: int | None = None,
        decay: float | None = None,
        floor: float = 0.01,
    ) -> "Plan":
        """This plan with a person's edits; any change makes it "custom". A group unfrozen without a rate gets the
        rate the decay rule implies (the backbone family's unless `decay` is given); a frozen group's rate is 0."""
        ph = self.phases
        decay = decay or layer_decay(is_transformer(self.backbone))
        frozen = tuple(ph.frozen if frozen is None else frozen)
        base = next((lr for lr in reversed(ph.lrs) if lr), BASE_LR)
        implied = discriminative(len(frozen), [i for i, f in enumerate(frozen) if not f], base, decay, floor)
        new = list(ph.lrs if lrs is None else lrs)
        new = [
            0.0 if f else (new[i] if new[i] and not (ph.frozen[i] and lrs is None) else implied[i])
            for i, f in enumerate(frozen)
        ]
        edited = replace(
            ph,
            frozen=frozen,
            lrs=tuple(new),
            head_lr=ph.head_lr if head_lr is None else head_lr,
            head_epochs=ph.head_epochs if head_epochs is None else head_epochs,
            finetune_epochs=ph.finetune_epochs if finetune_epochs is None else finetune_epochs,
        )
        if edited == ph:
            return self
        trainable = [ph.groups[i] for i, f in enumerate(frozen) if not f]
        said = Decision("edit", "custom", (self.strategy,), {"strategy": self.strategy, "trainable": trainable})
        return replace(self, phases=edited, strategy="custom", edited=True, decisions=(said, *self.decisions))

    def to_dict(self) -> dict[str, Any]:
        """The plan as stored (plan.json) and as `engine plan --json` prints it."""
        d = asdict(self)
        d["input"] = self.input.to_dict()
        d["head"]["candidates"] = [c.to_dict() for c in self.head.candidates]
        d["decisions"] = [x.to_dict() for x in self.decisions]
        return {"version": PLAN_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        """A stored plan, checked part by part.

        Raises:
            PlanError: Another version wrote it, or it holds a field this version does not know (named).
        """
        d = dict(d)
        version = d.pop("version", None)
        if version != PLAN_VERSION:
            raise PlanError(
                f"the plan was made by {'an older' if (version or 0) < PLAN_VERSION else 'a newer'} TransferLab "
                f"(plan version {version or 'before 9'}, this one reads {PLAN_VERSION}); make the plan again"
            )
        _known(cls, d, "plan")
        missing = [name for name in ("data", "input", "head", "phases") if name not in d]
        if missing:
            raise PlanError(f"the plan is incomplete (no {', '.join(missing)}); make the plan again")
        parts = {name: _part(kind, d.pop(name), name) for name, kind in _PARTS.items() if name in d}
        parts["input"] = _part(InputSpec, d.pop("input"), "input")
        head = parts["head"]
        try:
            parts["head"] = replace(head, candidates=tuple(HeadChoice.from_dict(c) for c in head.candidates))
            parts["decisions"] = tuple(Decision.from_dict(x) for x in d.pop("decisions", ()))
            return cls(**d, **parts)
        except (TypeError, KeyError, ValueError) as e:
            raise PlanError(f"the plan is incomplete or edited by hand ({e}); make the plan again") from None


_PARTS = {
    "data": DataPart,
    "head": HeadPart,
    "phases": Phases,
    "target": TargetPart,
    "distill": DistillPart,
    "cost": Cost,
}


def _known(kind: type, d: dict, where: str) -> None:
    unknown = sorted(set(d) - {f.name for f in fields(kind)})
    if unknown:
        raise PlanError(
            f"the plan's {where} has unknown field(s) {', '.join(unknown)}: it was edited by hand or made by another "
            f"version; make the plan again"
        )


def _tupled(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _part(kind: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise PlanError(f"the plan's {where} is not a record; make the plan again")
    _known(kind, d, where)
    try:
        return kind(**_tupled(d))
    except TypeError as e:
        raise PlanError(f"the plan's {where} is incomplete ({e}); make the plan again") from None
