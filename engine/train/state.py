"""The training run's state, in two typed parts, and the closed list of events the loop emits.

* `TrainContext` (frozen): what the run was built with. Made once by `Trainer.setup` from the plan it is handed; the
  model's and the optimiser's tensors change as it trains, the objects do not.
* `TrainState`: what changes as the run goes: the step, the epoch, the phase and its freeze map, the best epoch, the
  current step's and epoch's logs, the caches the execution paths fill once.
* `Event`: the points at which the loop calls its callbacks (fastai's `before_fit` ... `after_fit`). A callback reads
  both parts and writes only its own side effects (an event log, a checkpoint, a time left) and the epoch's log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    from engine.data.dataset import Dataset
    from engine.data.spec import InputSpec
    from engine.model.adapt import Adaptation
    from engine.model.cut import SplitModel
    from engine.model.groups import LayerGroup
    from engine.model.taps import TapModel
    from engine.model.weights import WeightsInfo
    from engine.plan.config import TrainConfig
    from engine.plan.domain import Targets
    from engine.plan.parts import Plan
    from engine.runs.result import RunResult
    from engine.runs.store import Run
    from engine.progress import Progress


class Event(str, enum.Enum):
    """The loop's events, in the order a run meets them; a run ends with exactly one of the last three."""

    BEFORE_FIT = "before_fit"
    BEFORE_PHASE = "before_phase"
    BEFORE_EPOCH = "before_epoch"
    AFTER_BACKWARD = "after_backward"
    AFTER_STEP = "after_step"
    AFTER_VALIDATE = "after_validate"
    AFTER_EPOCH = "after_epoch"
    AFTER_FIT = "after_fit"
    AFTER_CANCEL = "after_cancel"
    AFTER_FAIL = "after_fail"


EVENT_NAMES = tuple(e.value for e in Event)
# the events every process hears under torchrun (they keep statistics and validate); the others reach rank 0 alone
RANK_EVENTS = frozenset({Event.BEFORE_FIT, Event.AFTER_BACKWARD, Event.AFTER_EPOCH})


@dataclass(frozen=True)
class TrainContext:
    """What one run was built with (`Trainer.setup`): the config, the run folder, the device, the data, the model and
    its layer groups, the plan it executes, the optimiser and loss, the labels and the phases."""

    cfg: TrainConfig
    run: Run
    device: torch.device
    precision: str
    rank: int
    world: int
    ds: Dataset
    spec: InputSpec
    model: TapModel
    weights: WeightsInfo
    groups: list[LayerGroup]
    plan: Plan
    split: SplitModel | None  # the model cut at a frozen boundary (phase 2 on cached activations), or None
    opt: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ytr: torch.Tensor  # training labels
    yva: torch.Tensor  # val labels
    counts: torch.Tensor  # training photos per class
    steps_per_epoch: int
    phases: tuple[tuple[int, int, int], ...]  # (phase, epochs before it, its epochs): 1 trains the head, 2 fine-tunes
    report: Progress  # the named steps outside the epochs (caching, scoring), the time left and the cancel check
    targets: Targets | None = None  # photos from where the model will be used, and their labelled test
    adapt: Adaptation | None = None  # phase 2's adaptation loss (DANN or MMD), when the plan adapts
    teacher: torch.Tensor | None = None  # a distilled run's teacher answers, one row a training photo (log-probs)
    teacher_target: torch.Tensor | None = None  # and one row a target photo (the unlabelled photos it also learns on)

    @property
    def classes(self) -> list[str]:
        return self.ds.classes

    @property
    def reads_targets(self) -> bool:
        """Whether phase 2 reads a batch of target photos beside every batch: to adapt to them, or to learn the
        teacher's answers on them."""
        return self.adapt is not None or self.teacher_target is not None


@dataclass
class PhaseState:
    """The phase being run: its freeze map and rates, and how it runs."""

    number: int = 0  # 0: the starting model is validated; 1: the head trains; 2: fine-tuning
    epochs: int = 0
    first: int = 0  # epochs before it
    frozen: list[bool] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    path_name: str = ""
    announce: bool = True  # False when a resumed run continues it (its start is already in the event log)


@dataclass
class TrainState:
    """What changes during a run. Epoch 0 is the starting model (the probe's head), validated like any epoch."""

    step: int = 0
    epoch: int = 0
    phase: PhaseState = field(default_factory=PhaseState)
    best_acc: float = -1.0  # the val accuracy of the epoch kept so far
    best_epoch: int = -1
    top_val: float = -1.0  # the best val accuracy seen (with adaptation the epoch kept may be below it)
    best_target: float = -1.0  # the labelled target photos' accuracy of the epoch kept (adaptation with some)
    is_best: bool = False  # the epoch just validated is the best so far
    validated: bool = False  # the current epoch has been validated
    resumed_from: int = 0  # the epoch a resumed run continues after
    epoch_t0: float = 0.0  # when the current epoch started (time.perf_counter)
    start_val_s: float = 0.0  # seconds the starting model's validation took through the images (0: not run)
    adapt_sums: dict[str, float] = field(default_factory=dict)  # the adaptation's numbers summed over the epoch's steps
    adapt_steps: int = 0
    step_log: dict[str, Any] = field(default_factory=dict)  # loss, rates, running loss and accuracy of the last step
    epoch_log: dict[str, Any] = field(default_factory=dict)  # the epoch's metrics, as `EpochEnded` records them
    best_logits: torch.Tensor | None = None  # val logits of the best epoch, when validated through the images
    views: Any = None  # cached features or activations (`engine.train.views.Views`), computed once
    images: Any = None  # the augmented training images and their batcher, made once
    result: RunResult | None = None  # how the run ended, once it has
    trace: str = ""  # the traceback of a failed run

    def to_checkpoint(self, ctx: TrainContext, resumable: bool = True) -> dict:
        """The run's one checkpoint schema: the model's weights and the epoch (what `best.pt` and `start.pt` hold and
        what scoring, explaining and exporting read); to resume from it (`last.pt`), also the optimiser, the step,
        the best epoch so far, the random state and where the event log stood."""
        checkpoint = {"model": ctx.model.state_dict(), "epoch": self.epoch}
        if resumable:
            checkpoint |= {
                "optimizer": ctx.opt.state_dict(),
                "step": self.step,
                "best_acc": self.best_acc,
                "best_epoch": self.best_epoch,
                "top_val": self.top_val,
                "best_target": self.best_target,
                "rng": torch.random.get_rng_state(),
                "events_offset": ctx.run.events_offset(),
            }
        return checkpoint

    def from_checkpoint(self, ctx: TrainContext, checkpoint: dict) -> int:
        """Restores a resumable checkpoint (`to_checkpoint`) into the model, the optimiser and this state; returns
        the epoch it was taken after, where the run continues."""
        ctx.model.load_state_dict(checkpoint["model"])
        ctx.opt.load_state_dict(checkpoint["optimizer"])
        self.step, self.best_acc, self.best_epoch = checkpoint["step"], checkpoint["best_acc"], checkpoint["best_epoch"]
        self.top_val = checkpoint.get("top_val", checkpoint["best_acc"])
        self.best_target = checkpoint.get("best_target", -1.0)
        torch.random.set_rng_state(checkpoint["rng"])
        self.resumed_from = checkpoint["epoch"]
        return checkpoint["epoch"]
