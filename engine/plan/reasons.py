"""Why a plan is what it is, as data: each decision the planner makes is a `Decision` (what it is about, what was
chosen, the alternatives, and the numbers that decided it), and `render` turns a plan's decisions into the sentences
the Train page, `engine plan` and the model card show. Nothing reads the sentences back: whoever needs to know why
reads the decisions.

Each kind of decision has one sentence (`SENTENCES`), written from its evidence alone, so the numbers a sentence says
are the numbers the decision carries. A decision is about the plan (`about="plan"`) or about the photos from where
the model will be used (`about="target"`); each group is rendered on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from engine.plan.rules import BANDS, STRATEGY_TEXT, norm_note


@dataclass(frozen=True)
class Decision:
    """One decision: its `kind` (a key of `SENTENCES`), what was `chosen`, the `alternatives` it was chosen among and
    the `evidence` (named numbers and names) that decided it."""

    kind: str
    chosen: str
    alternatives: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict, hash=False)
    about: str = "plan"  # "plan" or "target"

    def __post_init__(self):
        if self.kind not in SENTENCES:
            raise ValueError(f"unknown decision kind {self.kind!r}; known: {', '.join(SENTENCES)}")

    def __getitem__(self, name: str) -> Any:
        return self.evidence[name]

    @property
    def sentence(self) -> str:
        return SENTENCES[self.kind](self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chosen": self.chosen,
            "alternatives": list(self.alternatives),
            "evidence": self.evidence,
            "about": self.about,
            "sentence": self.sentence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Decision":
        """A stored decision; its `sentence` is rendered again from the evidence, never read."""
        d = {k: v for k, v in d.items() if k != "sentence"}
        return cls(**{**d, "alternatives": tuple(d.get("alternatives", ()))})


def render(decisions: Iterable[Decision], about: str = "plan") -> str:
    """The sentences of the decisions about `about`, in the order they were made."""
    return " ".join(s for d in decisions if d.about == about and (s := d.sentence))


def find(decisions: Iterable[Decision], kind: str) -> Decision | None:
    """The last decision of `kind`, or None."""
    return next((d for d in reversed(tuple(decisions)) if d.kind == kind), None)


# ---------------------------------------------------------------------------------------------- the sentences
def _strategy(d: Decision) -> str:
    return STRATEGY_TEXT.get(d.chosen, "").format(k=d["top_k"], norm=norm_note(d["batchnorm"]))


def _rule_of_thumb(d: Decision) -> str:
    b = BANDS[d["band"]]
    return (
        f"The linear probe on {d.evidence.get('reads', 'the final features')} gets {d['probe_accuracy']:.1%} of the "
        f"{d['n_val']} validation photos ({b[1]}: the classic table suggests {b[2]}); the run starts from it and "
        f"keeps it unless an epoch beats it."
    )


def _head(d: Decision) -> str:
    if d["best_cv"] is None:
        return f"Too few photos to cross-validate: the head is {d.chosen}."
    against = ""
    if d["final_cv"] is not None:
        against = f", against {d['final_cv']:.1%} for {d['first']}'s final features alone"
    return (
        f"{d['n_scored']} candidate heads were scored by {d['metric']} in 5-fold cross-validation on the "
        f"{d['n_photos']:,} labelled photos outside the test split. The best is {d.chosen} on {d['backbone']} "
        f"({d['best_cv']:.1%}{against})."
    )


def _start(d: Decision) -> str:
    return f"The run starts from that linear head ({d['start_accuracy']:.1%} on the {d['n_val']} validation photos)."


def _finetune(d: Decision) -> str:
    if not d["epochs"]:
        return (
            f"Fine-tuning does not fit the time left ({max(0.0, d['left_s']):.0f} s of a {d['budget_s']:.0f} s "
            f"budget, about {d['epoch_s']:.0f} s per epoch here), so the linear head is the model."
        )
    groups = d["groups"]
    return (
        f"Then {', '.join(groups)} {'is' if len(groups) == 1 else 'are'} fine-tuned with it for {d['epochs']} epochs "
        f"(about {d['epochs'] * d['epoch_s']:.0f} s here; {d['augment']} augmentation; {norm_note(d['batchnorm'])}), "
        f"and the run keeps whichever is better on the validation photos: the linear head or a fine-tuned epoch."
    )


def _views(d: Decision) -> str:
    return (
        f"{d['views']} augmented view(s) of the {d['n_train']:,} training photos are cached, not {d['asked']}: more "
        f"would not fit in the memory budget (TRANSFERLAB_MEMORY)."
    )


def _note(d: Decision) -> str:
    return d.chosen


def _budget_fit(d: Decision) -> str:
    if d.chosen == "fewer epochs":
        what = f"with {d['adapt'].upper()} " if d["adapt"] != "none" else ""
        return (
            f"Measuring the target photos took time, and an epoch {what}takes about {d['epoch_s']:.0f} s here: "
            f"phase 2 runs {d['epochs']} of the {d['planned']} epochs above, to end within the {d['budget_s']:.0f} s "
            f"budget."
        )
    return (
        f"Measuring the target photos took time: {d['fit']} epoch(s) of about {d['epoch_s']:.0f} s would fit the "
        f"{d['budget_s']:.0f} s budget, so the linear head is the model after all."
    )


def _budget_cap(d: Decision) -> str:
    over = " (one at least, although it does not end within it)" if d["fit"] < 1 else ""
    return (
        f"An epoch of phase 2 takes about {d['epoch_s']:.0f} s here: it runs {d['epochs']} of the {d['planned']} "
        f"epochs planned, to end within your {d['budget_s']:.0f} s budget{over}."
    )


def _distill(d: Decision) -> str:
    val = f", val {d['teacher_val']:.1%}" if d["teacher_val"] is not None else ""
    n_target = d.evidence.get("n_target", 0)
    on_target = (
        f" It also learns the teacher's answers on the {n_target:,} target photos, a batch of them beside every "
        f"fine-tuning batch (no label needed)."
        if n_target
        else ""
    )
    return (
        f"It learns from run {d['teacher']} ({d['teacher_backbone']}, {d['teacher_params'] / 1e6:.1f}M parameters"
        f"{val}) as well as from the labels: the teacher's answers on the {d['n_train']:,} training photos, softened "
        f"at temperature {d['temperature']:g}, are {d['weight']:.0%} of the loss (distillation), so the "
        f"{d['student_params'] / 1e6:.1f}M-parameter {d['student_backbone']} learns which classes the teacher finds "
        f"alike, not only which is right.{on_target}"
    )


def _param_budget(d: Decision) -> str:
    if d["params"] == d["whole_params"]:
        return (
            f"The whole {d['backbone']} fits the budget of {d['max_params']:,} parameters ({d['params']:,} with the "
            f"head), so nothing is cut."
        )
    size = f"{d['params']:,} parameters with the head"
    if d.evidence.get("chosen_by", "val") == "val":
        why = f"the stage whose linear probe read val best among those that fit ({d['val']:.1%}, {size})"
    else:
        why = (
            f"the deepest stage of the head auto chose by cross-validation among those that fit (that stage's probe: "
            f"{d['val']:.1%} of val; {size})"
        )
    return (
        f"The model must stay under {d['max_params']:,} parameters: the whole {d['backbone']} has "
        f"{d['whole_params']:,} with the head ({d['whole_val']:.1%} of val with a linear head), so it is cut after "
        f"{d.chosen}, {why}; the pretrained filters below the cut are kept."
    )


def _adaptation_dropped(d: Decision) -> str:
    return (
        f"With {d['adapt'].upper()} an epoch takes about {d['epoch_s']:.0f} s here (a batch of target photos beside "
        f"every batch): {d['fit']} epoch(s) would fit the {d['budget_s']:.0f} s budget, so phase 2 adds no adaptation "
        f"loss after all."
    )


def _edit(d: Decision) -> str:
    return (
        f"Your edit of the {d['strategy']} plan: {', '.join(d['trainable']) or 'nothing'} trainable in phase 2. "
        f"Before the edit:"
    )


def _anyway(d: Decision) -> str:
    return (
        f"Fine-tuning anyway: {', '.join(d['groups'])} and the head for {d['epochs']} epochs from the same linear "
        f"head, to see the gap."
    )


def _closest_head(d: Decision) -> str:
    return (
        f"With target photos, auto keeps the head closest to them among those within {d['max_val_loss']:.0%} of the "
        f"best cross-validated one: {d.chosen} on {d['backbone']} (a classifier tells its input on the target photos "
        f"from its input in training {d['distance']:.0%} of the time) instead of {d['instead']} "
        f"({d['instead_distance']:.0%})."
    )


def _target_norm(d: Decision) -> str:
    asked = {True: "Asked for: ", False: "Turned off: "}.get(d["asked"], "")
    asked = f"{asked}the head's input standardised on the target photos. " if asked else ""
    if "domain_acc" not in d.evidence and not d["n_labelled"]:  # asked for, with no evidence to show
        return asked.strip()
    if d["n_labelled"]:
        on = d["target_val"]
        return asked + (
            f"On your {d['n_labelled']} labelled target photos the head gets {on['target']:.1%} with its input "
            f"standardised on the target photos, {on['source']:.1%} as trained, and {on['pseudo']:.1%} refitted with "
            f"the {d['n_pseudo']} target photos it labels with {d['confidence']:.0%} confidence; so it "
            + ("reads them standardised on the target photos" if d["use"] else "keeps the training photos' statistics")
            + (", refitted." if d["refit"] else ".")
        )
    dom, rev, val = d["domain_acc"], d["reverse"], d["val"]
    return asked + (
        f"Without labelled target photos: a classifier tells the head's input on your target photos from its input "
        f"in training {dom['source']:.0%} of the time as trained and {dom['target']:.0%} with the target photos' own "
        f"statistics (50% is chance). A head trained on the target photos as this head labels them gets "
        f"{rev['source']:.1%} of your validation photos right as trained and {rev['target']:.1%} with their own "
        f"statistics (reverse validation). "
        + (
            "So the head reads target photos standardised on the target photos, and photos like the training ones on "
            f"the training photos' statistics (val stays {val['source']:.1%})."
            if d["use"]
            else "So it keeps the training photos' statistics."
        )
        + (
            f" It is then refitted with the {d['n_pseudo']} target photos it labels with {d['confidence']:.0%} "
            f"confidence (self-training; {val['pseudo']:.1%} on val)."
            if d["refit"]
            else ""
        )
        + _norm_expected(d)
    )


def _norm_expected(d: Decision) -> str:
    """The accuracy ATC expects for each reading, stated beside the choice (stored plans before it: nothing)."""
    if "expected" not in d.evidence:
        return ""
    e = d["expected"]

    def one(k: str) -> str:
        return f"{e[k]['estimate']:.1%} ({e[k]['low']:.1%}–{e[k]['high']:.1%})"

    if d.evidence.get("expected_by") == "reference":
        return (
            f" Expected on the target photos (ATC on the support of a reference adapted to them): {one('source')} "
            f"as trained, {one('target')} on their own statistics, {one('pseudo')} refitted; reverse validation "
            f"chooses, as the reference reads the target photos as the refitted reading does and cannot judge between "
            f"them."
        )
    return (
        f" Expected on the target photos by ATC: {one('source')} as trained, {one('target')} on their own statistics, "
        f"{one('pseudo')} refitted; reverse validation chooses, as ATC trusts confident answers and a reading that "
        f"leaves the target photos confidently wrong is what this choice must catch."
    )


def _head_score(d: Decision, method: str) -> str:
    """One head-level candidate as the sentence lists it."""
    s, name = d["scored"][method], d["text"][method]
    if d["by"] == "labelled":
        return f"{name} {s['labelled']:.1%} of the labelled target photos (val {s['val']:.1%})"
    gain = f"; gain {s['gain_low']:+.1%} to {s['gain_high']:+.1%}" if "gain_low" in s else ""
    return f"{name} about {s['estimate']:.1%} ({s['low']:.1%}–{s['high']:.1%}; val {s['val']:.1%}{gain})"


def _target_head(d: Decision) -> str:
    how = {
        "labelled": "by the labelled target photos",
        "reference": "by the accuracy expected on the target photos (ATC on the support of one reference adapted to "
        "them; 95% interval)",
    }.get(d["by"], "by the accuracy expected on the target photos (ATC, calibrated on val; 95% interval)")
    listing = "; ".join(_head_score(d, m) for m in d["scored"])
    if d["asked"] is not None:
        verdict = f"as asked, the run starts from {d['text'][d.chosen]}."
    elif d.chosen == "none" and d["by"] == "labelled":
        verdict = (
            "none gets more of the labelled target photos right than the head as it stands with val at most "
            f"{d['max_val_loss']:.0%} below, so the head stays as it is."
        )
    elif d.chosen == "none" and d["by"] == "reference" and any("gain_low" in v for v in d["scored"].values()):
        verdict = (
            "no candidate's gain over the head as it stands (paired on the same photos, 95% interval) lies above "
            f"zero with val at most {d['max_val_loss']:.0%} below, so the head stays as it is."
        )
    elif d.chosen == "none":
        verdict = (
            "none is ahead of the head as it stands beyond its interval with val at most "
            f"{d['max_val_loss']:.0%} below, so the head stays as it is."
        )
    else:
        verdict = f"so the run starts from {d['text'][d.chosen]}."
    return f"The head adapted to the target photos on their cached features, scored {how}: {listing}; {verdict}"


def _adabn(d: Decision) -> str:
    if d.chosen == "not possible":
        return f"BatchNorm re-estimation was asked for, but {d['why']}: nothing is re-estimated."
    asked, use = d["asked"], d["use"]
    reads = use if asked is None else asked
    keeps = "the backbone keeps its own statistics"
    if asked is None:
        does = "so the saved model reads" if use else f"so {keeps}"
    elif asked == use:
        does = "as asked, the saved model reads" if use else f"as asked, {keeps}"
    else:
        alone = "re-estimates them" if use else "keeps the backbone's own"
        does = f"the evidence alone {alone}; as asked, " + ("the saved model reads" if asked else keeps)
    if reads:
        does += " target photos with the re-estimated statistics (val keeps the backbone's own)"
    return (
        f"BatchNorm statistics re-estimated on {d['n_sample']} target photos (AdaBN), scored {d['how']}: "
        f"{d['score']:.1%}, against {d['without']:.1%} with the backbone's own (standard error {d['margin']:.1%}); "
        f"{does}.{_bn_expected(d)}"
    )


def _bn_expected(d: Decision) -> str:
    """The accuracy expected with and without the re-estimated statistics (plans before it, or labelled photos:
    nothing)."""
    e = d.evidence.get("expected")
    if not e:
        return ""
    one = {k: f"{v['estimate']:.1%} ({v['low']:.1%}–{v['high']:.1%})" for k, v in e.items()}
    return (
        f" Expected on those photos (ATC on an adapted reference's support): {one['re-estimated']} re-estimated, "
        f"{one['without']} without."
    )


def _entries(d: Decision) -> str:
    """A trials table as the sentence lists it: each candidate's score, the accuracy expected on the target photos
    (plans made before it was stated have none), and why it could not be chosen when the val rule rules it out."""
    out = []
    for t in d["trials"]:
        said = []
        if "expected" in t:
            estimate, low, high = t["expected"]
            said.append(f"expected {estimate:.1%}, {low:.0%}–{high:.0%}")
        if not t["eligible"]:
            said.append(f"val {t['val']:.1%}: more than {d['max_val_loss']:.0%} below, so not eligible")
        out.append(f"{t['label']} {t['score']:.1%}" + (f" ({'; '.join(said)})" if said else ""))
    return ", ".join(out)


def _fix(d: Decision) -> str:
    if d.chosen:
        verdict = f"so phase 2 takes {d['kept_label']}: val {d['kept_val']:.1%}, {d['plan_val']:.1%} without."
    else:
        verdict = (
            f"none beats the plan as it is by more than {d['margin']:.1%} (its standard error), so phase 2 keeps its "
            f"rates, warm-up and augmentation."
        )
    return (
        f"Simple fixes first, tried on the cached features for {d['steps']} steps each, scored {d['how']}: "
        f"{_entries(d)}; {verdict}"
    )


def _fix_skipped(d: Decision) -> str:
    return (
        f"Stronger augmentation was not tried: its trial reads the {d['n_train']:,} training photos again (about "
        f"{d['seconds']:.0f} s here), more than {d['share']:.0%} of the {d['budget_s']:.0f} s budget."
    )


def _trials(d: Decision) -> str:
    if d.chosen == "none":
        verdict = (
            f"none beats no adaptation by more than {d['margin']:.1%} (its standard error), so phase 2 adds no "
            f"adaptation loss."
        )
    else:
        verdict = f"so phase 2 adds {d['kept_label']} (val {d['kept_val']:.1%}, {d['none_val']:.1%} without)."
    return (
        f"Adaptation tried on the cached features for {d['steps']} steps each, scored {d['how']}: {_entries(d)}; "
        f"{verdict}"
    )


def _adapt(d: Decision) -> str:
    return (
        f"Phase 2 adds {d['text']} on the head's input (weight ramped up to {d['strength']:g}), with the "
        f"{d['n_target']:,} target photos."
    )


SENTENCES: dict[str, Callable[[Decision], str]] = {
    "strategy": _strategy,  # a fixed strategy's rule
    "head": _head,  # auto's head, by cross-validation
    "start": _start,  # auto's run starts from the head it chose
    "finetune": _finetune,  # auto's depth and epochs in the time left
    "views": _views,  # fewer cached views than asked: memory
    "rule-of-thumb": _rule_of_thumb,  # a fixed strategy: what the probe's band suggests
    "data-note": _note,  # what loading the photos found (a carved test split, files skipped)
    "budget-fit": _budget_fit,  # auto's epochs fitted back after the target photos were measured
    "budget-cap": _budget_cap,  # a fixed strategy's epochs cut to end within the budget the person gave
    "edit": _edit,  # a person's edit of the plan
    "distill": _distill,  # the run also learns from a trained run's answers (engine.plan.distill)
    "param-budget": _param_budget,  # the backbone cut to fit a parameter budget (engine.plan.param_budget)
    "anyway": _anyway,  # fine-tuning anyway after auto kept the linear head
    "target-note": _note,  # what loading the target photos found
    "closest-head": _closest_head,  # auto's head with target photos: the candidate closest to them
    "target-norm": _target_norm,  # the head standardised on the target photos, and refitted
    "target-head": _target_head,  # the head adapted to the target photos (CORAL, T3A, SHOT, EM) or as it stands
    "adabn": _adabn,  # BatchNorm statistics re-estimated on the target photos
    "fix": _fix,  # auto's simple fixes tried on the cached features
    "adaptation": _trials,  # auto's adaptations tried on the cached features
    "fix-skipped": _fix_skipped,  # stronger augmentation not tried: its pass does not fit
    "adapt": _adapt,  # what phase 2 adds for the target photos
    "adaptation-dropped": _adaptation_dropped,  # auto's adaptation dropped: too few epochs fit with it
}
