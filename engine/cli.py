"""Command line: `python -m engine {backbones,weights,inspect-data,probe,gap,check,suggest,plan,train,demo,resume,
evaluate,estimate,export,lr-find}`; each takes its dataset as --data (inspect-data also as its first argument), and
the reports print JSON with --json. A user's mistake ends with one line naming the file or field and what to do, and
a non-zero exit code."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from engine.data.augment import PRESETS
from engine.errors import RunBusy, TransferLabError
from engine.model.adapt import ADAPT_METHODS
from engine.paths import memory_budget
from engine.plan.config import (
    BALANCE,
    DEFAULT_BACKBONE,
    DEFAULT_BUDGET_S,
    DISTILL_TEMPERATURE,
    DISTILL_WEIGHT,
    MAX_PARAMS,
    STRATEGIES,
    TARGET_HEAD,
    TARGET_NORM,
    TrainConfig,
)
from engine.progress import QUIET
from engine.service.console import StepClock, fit_in_thread, progress_line, train_result

CHANS_HELP = "image channels: 1, 2, 3 (default), 4, or more from .npy files; the first convolution is adapted"


def cmd_backbones(args: argparse.Namespace) -> int:
    from engine.model.weights import catalogue_rows

    rows = catalogue_rows()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    print(
        f"{'backbone':34} {'family':18} {'params':>7} {'top-1':>6} {'px':>4} {'download':>9}  {'licence':11} "
        f"{'weights':18} best for"
    )
    for r in rows:
        top1 = "-" if r.imagenet_top1 is None else f"{r.imagenet_top1:.1f}"
        print(
            f"{r.name:34} {r.family:18} {r.params_m:6.1f}M {top1:>6} {r.input_size:4d} "
            f"{r.download_mb:6.0f} MB  {r.licence:11} {r.source or 'MISSING':18} {r.best_for}"
        )
    if any(not r.available for r in rows):
        print(
            "\nMISSING: no weights on this machine. `python -m engine weights fetch NAME` downloads them (asked for, "
            "never automatic); `python -m engine weights install NAME FILE` takes a file you have."
        )
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from engine.model.weights import install_weights

    if args.action == "install":
        if not args.file:
            raise TransferLabError("weights install needs the file: python -m engine weights install NAME FILE")
        info = install_weights(args.name, args.file)
    else:
        from engine.model.fetch import fetch_weights, remote_file

        remote = remote_file(args.name)
        size = f"{remote.size / 1e6:.1f} MB" if remote.size else "size unknown"
        print(f"downloading {remote.filename} of {args.name} ({size}) from {remote.url}", file=sys.stderr)
        info = fetch_weights(args.name, progress=None if args.quiet else _download_progress(remote.size))
    print(
        json.dumps(info.to_dict(), indent=2)
        if args.json
        else f"{args.name}: weights at {info.path}\n  sha256 {info.sha256} ({info.note})"
    )
    return 0


def _download_progress(size: int | None):
    """A download's terminal line (`progress_line`): megabytes so far and the time left at its pace."""
    from engine.timeleft import Meter

    meter = Meter()

    def report(stage: str, fraction: float) -> None:
        meter.report(fraction)
        done = f"{fraction * size / 1e6:.1f} / {size / 1e6:.1f} MB" if size else ""
        progress_line(f"{stage.split(' (')[0]} {done}".strip(), fraction, meter.left())

    return report


def cmd_inspect(args: argparse.Namespace) -> int:
    from engine.data.dataset import load_dataset
    from engine.data.report import build_report
    from engine.model.catalogue import input_spec

    if (args.path is None) == (args.data is None):
        raise TransferLabError("inspect-data needs one dataset: give it as FOLDER or as --data FOLDER, not both")
    report = build_report(
        load_dataset(args.path or args.data, val=args.val, seed=args.seed, allow_outside=args.allow_outside_root),
        input_size=input_spec(args.backbone).input_size[-1],
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(
        f"dataset {report.root}  ({len(report.classes)} classes; validation: {report.val_source}; "
        f"test: {report.test_source})"
    )
    for split, counts in report.counts.items():
        print(f"  {split}: {sum(counts.values())} images")
    width = max(len(c) for c in report.classes)
    for cls in report.classes:
        print(f"  {cls:{width}}  " + "  ".join(f"{s} {report.counts[s][cls]:4d}" for s in report.counts))
    print(
        f"imbalance ratio {report.imbalance_ratio}; sizes {dict(list(report.sizes.items())[:3])}; modes {report.modes}"
    )
    for u in report.unreadable:
        print(f"  skipped: {u['reason']}")
    for w in report.warnings:
        print(f"WARNING: {w}")
    return 0


def cmd_gap(args: argparse.Namespace) -> int:
    from engine.data.target import load_target
    from engine.probe.gap import domain_gap

    ds = _dataset(args)
    target = load_target(args.target, ds, None, args.allow_outside_root, args.seed) if args.target else None
    progress = (QUIET if args.quiet else StepClock()).step("measure the domain gap")
    gap = domain_gap(ds, args.backbone, target, args.weights, args.in_chans, progress)
    if args.json:
        print(json.dumps(gap.to_dict(), indent=2))
        return 0
    for s in (gap.source, gap.target):
        print(
            f"{s.label:32} {s.n:6,} photos  mean RGB {' '.join(f'{m:.2f}' for m in s.mean_rgb)}  grey "
            f"{s.grey_share:4.0%}  median {s.median_size[0]}x{s.median_size[1]}"
        )
    if gap.stages:
        print(f"{'stage':16} {'domain classifier':>17} {'proxy A-distance':>16} {'MMD':>7}")
        for st in gap.stages:
            print(f"{st.name:16} {st.domain_acc:17.1%} {st.proxy_a:16.2f} {st.mmd:7.3f}")
    for note in gap.notes:
        print(note)
    print(gap.sentence)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from engine.probe.check import check_photos, save_check

    ds = _dataset(args)
    progress = (QUIET if args.quiet or args.json else StepClock()).step("check the photos")
    report = check_photos(ds, args.backbone, args.weights, args.in_chans, progress, args.threshold)
    save_check(ds, report)  # the plans of these photos warn about the leaks it found
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    flagged = report.flagged
    print(f"{len(flagged)} of {len(report.label_issues)} labelled photos may carry a wrong label (most likely first):")
    for i in flagged[: args.top]:
        print(f"  {i.score:.2f}  {i.path}  labelled {i.label}, looks like {i.suggested} ({i.confidence:.0%})")
    if report.learning_curve is not None:
        print(f"How many more photos: {report.learning_curve.sentence}")
    print(f"Two photos are {report.rule}.")
    print(f"{len(report.near_duplicates)} near-duplicate pair(s) within a split (features, pixels):")
    for p in report.near_duplicates[: args.top]:
        print(f"  {p.cosine:.3f} {p.similarity:.3f}  {p.kind:9}  {p.a} ({p.label_a})  {p.b} ({p.label_b})")
    print(f"{len(report.leaks)} leak(s) across splits (features, pixels):")
    for p in report.leaks[: args.top]:
        print(f"  {p.cosine:.3f} {p.similarity:.3f}  {p.split_a}/{p.split_b}  {p.a}  {p.b}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from engine.data.decisions import decisions_file
    from engine.probe.suggest import suggest_photos

    ds = _dataset(args)
    progress = (QUIET if args.quiet or args.json else StepClock()).step("rank the pool")
    found = suggest_photos(ds, args.pool, args.backbone, args.weights, args.in_chans, args.n, progress=progress)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2))
        return 0
    print(
        f"Label these {len(found.photos)} first, of {found.ranked} pool photo(s) ranked (the head learnt from "
        f"{found.labelled} labelled photos, {found.from_pool} of them from your pool):"
    )
    for rank, s in enumerate(found.photos, start=1):
        print(f"  {rank:3d}. {s.path}  looks like {s.guess} ({s.guess_p:.0%}) or {s.second} ({s.second_p:.0%})")
    for note in found.notes:
        print(f"note: {note}")
    for skipped in found.skipped:
        print(f"skipped: {skipped.reason}")
    print(f"How: {found.rule}.")
    print(
        f"Label them on the Data page, or add lines PATH,label,CLASS (or PATH,skip,) to "
        f"{decisions_file(ds.fingerprint())} (its first line: path,action,new_label); the next probe, plan and run "
        f"use them."
    )
    return 0


def _config(args: argparse.Namespace, **over) -> TrainConfig:
    keys = (
        "val",
        "test",
        "backbone",
        "weights",
        "strategy",
        "top_k",
        "lr",
        "head_epochs",
        "batch_size",
        "augment",
        "balance",
        "views",
        "seed",
        "device",
        "in_chans",
        "budget",
        "max_params",
        "test_fraction",
        "target",
        "target_test",
        "adapt",
        "adapt_strength",
        "distill_from",
        "distill_weight",
        "distill_temperature",
    )
    kw = {k: getattr(args, k, None) for k in keys}
    kw["target_norm"] = TARGET_NORM[getattr(args, "target_norm", None) or "auto"]
    kw["target_pseudo"] = TARGET_NORM[getattr(args, "target_pseudo", None) or "auto"]
    kw["target_bn"] = TARGET_NORM[getattr(args, "target_bn", None) or "auto"]
    kw["target_head"] = TARGET_HEAD[getattr(args, "target_head", None) or "auto"]
    kw["finetune_epochs"] = getattr(args, "epochs", None)
    kw["allow_outside_root"] = getattr(args, "allow_outside_root", None) or None
    return TrainConfig.create(data=args.data, **{k: v for k, v in {**kw, **over}.items() if v is not None})


def _dataset(args: argparse.Namespace):
    from engine.data.dataset import TEST_FRACTION, load_dataset

    fraction = TEST_FRACTION if args.test_fraction is None else args.test_fraction
    return load_dataset(
        args.data,
        val=args.val,
        seed=args.seed,
        test=args.test,
        test_fraction=fraction,
        allow_outside=args.allow_outside_root,
    )


def cmd_probe(args: argparse.Namespace) -> int:
    from engine.probe.shootout import shootout

    names = [n.strip() for n in args.backbone.split(",") if n.strip()]
    progress = QUIET if args.quiet else StepClock()
    if len(names) > 1:
        result = shootout(_dataset(args), names, progress=progress)
        print(json.dumps(result.to_dict(), indent=2) if args.json else result.verdict)
        return 0
    # the Probe page's probe: the auto plan (probe, candidates, recommendation), from the same plan object
    from engine.plan.make import plan_with_probe

    planned = plan_with_probe(_config(args, strategy="auto", backbone=names[0]), progress)
    p = planned.plan
    out = {"plan": p.to_dict(), "accuracy": p.head.probe_accuracy, "recommendation": p.recommendation()}
    if planned.probes:
        out.update({k: v for k, v in planned.probes[0].to_dict().items() if not k.startswith("val_")})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for c in out.get("stage_curve", []):
        print(f"  after {c['name']:28} {c['accuracy']:6.1%}  {'#' * int(c['accuracy'] * 40)}")
    rec = out["recommendation"]
    rule = rec["rule_of_thumb"]
    print(
        f"\n{names[0]}: final-feature probe {p.head.probe_accuracy:.1%} on val"
        + (f" ({rule['band']}: the classic table suggests {rule['suggests']})" if rule else "")
        + f"\nrecommended: {rec['does']}; head on {rec['head']}\n  {rec['reason']}"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from engine.plan.make import get_plan
    from engine.plan.preflight import preflight

    planned = get_plan(_config(args), QUIET if args.quiet else StepClock())
    plan = planned.plan
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    ph, cost = plan.phases, plan.cost
    print(f"{plan.strategy} on {plan.backbone}: head on {plan.head.label} ({plan.head.init} start)")
    for g, label, f, lr in zip(ph.groups, ph.labels, ph.frozen, ph.lrs):
        print(f"  {label:14} {g:28} {'frozen' if f else f'trains at {lr:.0e}'}")
    print(
        f"head epochs {ph.head_epochs} at {ph.head_lr:g}; fine-tune epochs {ph.finetune_epochs}; "
        f"augmentation {ph.augment}; about {cost.estimate_s:.0f} s; memory {cost.ram_bytes / 1e9:.1f} GB, disk "
        f"{cost.disk_bytes / 1e9:.1f} GB\n{plan.reason}"
    )
    if plan.target_reason:
        print(f"target photos ({plan.target.n:,}): {plan.target_reason}")
    for f in preflight(plan):
        print(f"{'ERROR' if f.error else 'WARNING'}: {f.message}. Fix: {f.fix}.")
    return 0


def _checked_plan(cfg: TrainConfig, quiet: bool):
    """The plan `train` runs, made (or read) first: a plan that cannot run is refused before any run exists."""
    from engine.plan.make import get_plan
    from engine.plan.preflight import blocking, preflight

    planned = get_plan(cfg, QUIET if quiet else StepClock())
    stop = blocking(preflight(planned.plan))
    if stop:
        raise TransferLabError(f"the plan cannot run: {stop[0].message}. Fix: {stop[0].fix}")
    return planned


def cmd_train(args: argparse.Namespace) -> int:
    from engine.plan.stored import save_run_plan
    from engine.runs.store import RunStore
    from engine.train import distributed
    from engine.train.loop import Trainer

    cfg = _config(args)
    rank, world = distributed.init()
    store = RunStore()
    if rank == 0:
        planned = _checked_plan(cfg, args.quiet)
        run = store.create(cfg.to_dict())
        save_run_plan(run, planned)
    run = store.open(distributed.share_run_id(run.id if rank == 0 else None))
    if rank != 0:  # torchrun: the other ranks train their shards (the plan rank 0 stored); rank 0 records and reports
        Trainer(cfg, run).fit()
        return 0
    print(f"run {run.id} in {run.path}" + (f" ({world} processes)" if world > 1 else ""), file=sys.stderr)
    returned = fit_in_thread(run, cfg, args.quiet, planned)
    return train_result(run, args.json, returned)


def _run_planned(cfg: TrainConfig, name: str, quiet: bool):
    """Plans `cfg` (refusing a plan that cannot run), creates its run and trains it in this process."""
    from engine.plan.stored import save_run_plan
    from engine.runs.store import RunStore

    planned = _checked_plan(cfg, quiet)
    run = RunStore().create(cfg.to_dict(), name)
    save_run_plan(run, planned)
    fit_in_thread(run, cfg, quiet, planned)
    return run


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.paths import SAMPLE
    from engine.service.experiment import ARM_TEXT, lesson_configs, lesson_rows, lesson_sentence, snapshot

    configs = lesson_configs(args.data or str(SAMPLE), args.backbone, args.budget)
    runs = {}
    for arm, cfg in configs.items():
        if not args.quiet:
            print(f"== {arm}: {ARM_TEXT[arm]}", file=sys.stderr)
        runs[arm] = _run_planned(cfg, f"lesson-{arm}", args.quiet)
    rows = lesson_rows({arm: snapshot(run) for arm, run in runs.items()})
    if args.json:
        print(json.dumps({"arms": [r.to_dict() for r in rows], "sentence": lesson_sentence(rows)}, indent=2))
        return 0
    print(f"{'arm':9} {'test':>6} {'95% interval':>14} {'seconds':>8} {'epochs':>6}  run")
    for r in rows:
        acc, ci = r.test_accuracy, r.test_interval
        print(
            f"{r.arm:9} {'-' if acc is None else f'{acc:.1%}':>6} "
            f"{'-' if ci is None else f'{ci[0]:.0%}-{ci[1]:.0%}':>14} {r.seconds or 0:8.0f} "
            f"{r.epochs_trained:6d}  {r.run_id}"
        )
    print(lesson_sentence(rows))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.runs.store import RunStore

    run = RunStore().open(args.run)
    run.check_resumable()
    returned = fit_in_thread(run, TrainConfig.from_dict(run.config), args.quiet)
    return train_result(run, args.json, returned)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.serve.evaluate import evaluate

    if (args.data is None) == (args.split is None):
        raise TransferLabError("evaluate needs either --data FOLDER or --split test|val (the run's own split)")
    r = evaluate(args.run, args.data, args.split)
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
    else:
        lo, hi = r.interval
        print(f"accuracy {r.accuracy:.1%} on {r.n} images (95% interval {lo:.1%}–{hi:.1%})")
        width = max(map(len, r.per_class), default=0)
        for c, a in r.per_class.items():
            print(f"  {c:{width}} {'-' if a is None else f'{a:.1%}':>6}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from engine.serve.estimate import estimate_accuracy

    est = estimate_accuracy(args.run, args.data, args.root)
    if args.json:
        print(json.dumps(est.to_dict(), indent=2))
        return 0
    print(est.sentence)
    print(
        f"(Average Thresholded Confidence: the share of the photos above {est.threshold:.3f}, the confidence "
        f"threshold fitted on val.) {est.caveat}"
    )
    print(f"Expected class mix. {est.mix_how}")
    width = max(map(len, est.class_mix), default=0)
    for c, share in sorted(est.class_mix.items(), key=lambda t: -t[1]):
        print(f"  {c:{width}} {share:>4.0%}")
    for line in est.notes + est.skipped:
        print(f"note: {line}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.runs.store import RunStore
    from engine.serve.export import export_run
    from engine.serve.targets import get_target

    target = get_target(args.target).with_limits(args.max_latency_ms, args.max_size_mb, args.max_drop)
    formats = tuple(args.formats.split(",")) if args.formats else None
    # the converters' own progress bars (Core ML's, by tqdm) would interleave with this command's progress lines;
    # tqdm reads TQDM_DISABLE when a bar is made, and this command runs in one thread, so setting it here is safe
    os.environ.setdefault("TQDM_DISABLE", "1")
    r = export_run(RunStore().open(args.run), args.out, formats, target)
    if args.json:
        print(json.dumps(r.to_dict(), indent=2, default=float))
        return 0
    print(f"exported {', '.join(r.files) or 'nothing'} to {r.dir} for the {target.name} ({target.means})")
    print(
        f"{'file':12} {'accuracy':>9} {'95% interval':>13} {'agrees':>7} {'MB':>6} {'1 thread p50/p95 ms':>20} "
        f"{'all threads p50/p95 ms':>23}"
    )
    for m in r.measures:
        print(
            f"{m.name:12} {m.accuracy:9.1%} {m.interval[0]:6.1%}-{m.interval[1]:6.1%} {m.agreement:7.1%} "
            f"{m.size_mb:6.1f} {m.one_thread.p50:10.1f}/{m.one_thread.p95:<9.1f} "
            f"{m.all_threads.p50:12.1f}/{m.all_threads.p95:<9.1f}"
        )
    print(
        f"measured on {r.measures[0].n} {r.measures[0].split} photos, running each file; latency at batch 1 on this CPU"
    )
    if r.int8:
        print(r.int8["sentence"])
    for why in r.refused.values():
        print(why)
    print(r.sentence())
    print(r.how_to_run().replace("`", ""))
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from engine.train.lrfind import lr_find

    r = lr_find(_config(args), steps=args.steps, progress=QUIET if args.json else StepClock())
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
    else:
        for lr, loss in list(zip(r.lrs, r.losses))[:: max(1, len(r.lrs) // 15)]:
            print(f"  lr {lr:9.2e}  loss {loss:7.3f}")
        said = (
            f"suggested head learning rate: {r.suggestion:.1e}"
            if r.suggestion
            else "no suggestion: the loss never fell"
        )
        print(said)
    return 0


def ranged(kind: type, lo: float, hi: float | None = None):
    """An argparse type: a number of `kind` in [lo, hi] (no upper bound without `hi`); NaN, infinity and anything
    else are refused by the parser with the valid range."""

    what = "an integer" if kind is int else "a number"

    def shown(v: float) -> str:
        return f"{int(v):,}" if kind is int else f"{v:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < lo or (hi is not None and value > hi):
            upper = f" to {shown(hi)}" if hi is not None else " up"
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what} from {shown(lo)}{upper}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


SEED = ranged(int, 0, 2**32 - 1)  # what numpy and torch seeds accept
EPOCHS = ranged(int, 0, 10_000)
BUDGET = ranged(float, 1, 7 * 24 * 3600)  # a second at least (the probe still runs); a week is the most anyone plans


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="a folder (one subfolder per class, or train/ val/ [test/]), .zip or .csv (path,label[,split])",
    )
    p.add_argument("--val", default=None, help="a separate validation folder")
    p.add_argument("--test", default=None, help="a separate test folder")
    p.add_argument(
        "--test-fraction",
        type=ranged(float, 0, 0.9),
        default=None,
        help="share of each class held out as the test split when the data has none (default 0.2; 0: none)",
    )
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--weights", default="auto", help="auto, none (random initialisation), or a weights file")
    p.add_argument("--in-chans", type=ranged(int, 1, 64), default=3, help=CHANS_HELP)
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="use files whose real path is outside the dataset's folder (symbolic links, CSV paths)",
    )
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _plan_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--strategy", default="auto", choices=[s for s in STRATEGIES if s != "custom"])
    p.add_argument(
        "--budget",
        type=BUDGET,
        default=None,
        help=f"auto's time budget in seconds, probe included (default {DEFAULT_BUDGET_S:.0f}; at least 1); with "
        f"top-k or full, their fine-tuning epochs are cut to end within it (default: none)",
    )
    p.add_argument(
        "--max-params",
        type=ranged(int, 1, MAX_PARAMS),
        default=None,
        help="the model's parameter budget, head included (a microcontroller's: 500000): the pretrained backbone is "
        "cut after the stage that reads val best among those that fit",
    )
    p.add_argument("--top-k", type=ranged(int, 1, 1000), default=None)
    p.add_argument("--lr", type=ranged(float, 1e-12, 10), default=None)
    p.add_argument("--head-epochs", type=EPOCHS, default=None)
    p.add_argument("--epochs", type=EPOCHS, default=None, help="fine-tuning (phase 2) epochs")
    p.add_argument("--batch-size", type=ranged(int, 2, 65536), default=None)
    p.add_argument("--augment", default=None, choices=list(PRESETS))
    p.add_argument("--balance", default=None, choices=list(BALANCE))
    p.add_argument("--views", type=ranged(int, 1, 64), default=None)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--target",
        default=None,
        help="photos from where the model will be used (no labels needed; class subfolders: a few labelled ones)",
    )
    p.add_argument("--target-test", default=None, help="labelled photos from there (one subfolder per class)")
    p.add_argument("--adapt", default=None, choices=ADAPT_METHODS, help="phase 2's adaptation to the target photos")
    p.add_argument(
        "--adapt-strength", type=ranged(float, 0, 100), default=None, help="the adaptation loss's weight (default 1)"
    )
    p.add_argument(
        "--target-norm",
        default="auto",
        choices=list(TARGET_NORM),
        help="the head reads its input standardised on the target photos (auto: chosen on evidence)",
    )
    p.add_argument(
        "--target-pseudo",
        default="auto",
        choices=list(TARGET_NORM),
        help="the starting head is refitted with the target photos it labels with 90%% confidence (auto: on evidence)",
    )
    p.add_argument(
        "--target-bn",
        default="auto",
        choices=list(TARGET_NORM),
        help="the saved model's BatchNorm statistics re-estimated on the target photos, AdaBN (auto: on evidence)",
    )
    p.add_argument(
        "--target-head",
        default="auto",
        choices=list(TARGET_HEAD),
        help="the starting head adapted to the target photos on their cached features (auto: by the accuracy "
        "expected on them)",
    )
    p.add_argument(
        "--distill-from",
        default=None,
        metavar="RUN",
        help="a trained run of the same classes whose answers on the training photos this run also learns from "
        "(distillation: a small student of a large teacher)",
    )
    p.add_argument(
        "--distill-weight",
        type=ranged(float, 0, 1),
        default=None,
        help=f"the teacher's share of the loss (default {DISTILL_WEIGHT:g})",
    )
    p.add_argument(
        "--distill-temperature",
        type=ranged(float, 0.01, 100),
        default=None,
        help=f"softens both models' answers before they are compared (default {DISTILL_TEMPERATURE:g})",
    )


# PLR0915: one add_argument per flag: the CLI's reference in one place
def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915
    p = argparse.ArgumentParser(prog="python -m engine", description="TransferLab engine")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backbones", help="the catalogue, with weight availability")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_backbones)
    w = sub.add_parser(
        "weights", help="get a backbone's weights: fetch (download from the hub, asked for) or install FILE"
    )
    w.add_argument("action", choices=["fetch", "install"])
    w.add_argument("name", help="a catalogue name (python -m engine backbones)")
    w.add_argument("file", nargs="?", default=None, help="install: a .safetensors or .pth state dict")
    w.add_argument("--json", action="store_true")
    w.add_argument("--quiet", action="store_true")
    w.set_defaults(fn=cmd_weights)
    i = sub.add_parser("inspect-data", help="the dataset health report")
    i.add_argument("path", nargs="?", default=None, help="the dataset: a folder or a CSV (or --data, as elsewhere)")
    i.add_argument("--data", default=None, help="the dataset, as the other commands take it")
    i.add_argument("--val", default=None)
    i.add_argument("--seed", type=SEED, default=0)
    i.add_argument("--allow-outside-root", action="store_true")
    i.add_argument("--backbone", default=DEFAULT_BACKBONE, help="the backbone the photos are for (its input size)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inspect)
    pr = sub.add_parser(
        "probe",
        help="the Probe page's probe: per stage, candidate heads and the recommendation "
        "(several backbones: a shoot-out)",
    )
    _data_args(pr)
    pr.add_argument("--per-stage", action="store_true", help="(always on) probe after every stage and choose the head")
    pr.add_argument("--budget", type=BUDGET, default=None)
    pr.set_defaults(fn=cmd_probe)
    g = sub.add_parser(
        "gap",
        help="the domain gap: the training photos against photos from where the model will be used (--target), "
        "or against the backbone's pretraining",
    )
    _data_args(g)
    g.add_argument("--target", default=None, help="a folder of photos from where the model will be used (no labels)")
    g.set_defaults(fn=cmd_gap)
    c = sub.add_parser("check", help="likely label errors, near-duplicate photos and leaks across splits")
    _data_args(c)
    c.add_argument("--top", type=ranged(int, 1, 100_000), default=20, help="lines of each list to print")
    c.add_argument(
        "--threshold",
        type=ranged(float, 0.5, 1.0),
        default=0.92,
        help="feature cosine that alone makes a near-duplicate pair (0.92)",
    )
    c.set_defaults(fn=cmd_check)
    su = sub.add_parser("suggest", help="which photos of a pool of unlabelled ones to label next, best first")
    _data_args(su)
    su.add_argument("--pool", required=True, help="a folder of unlabelled photos you could label")
    su.add_argument("--n", type=ranged(int, 1, 10_000), default=50, help="how many photos to suggest (50)")
    su.set_defaults(fn=cmd_suggest)
    pl = sub.add_parser("plan", help="the plan `train` would run, made once and stored (--json: field by field)")
    _plan_args(pl)
    pl.set_defaults(fn=cmd_plan)
    t = sub.add_parser("train", help="run the plan (progress on stderr; the result as JSON with --json)")
    _plan_args(t)
    t.set_defaults(fn=cmd_train)
    d = sub.add_parser(
        "demo",
        help="the lesson's experiment: from scratch vs linear probe vs fine-tuning vs auto, each on the test split",
    )
    d.add_argument("--data", default=None, help="a dataset (default: the bundled sample)")
    d.add_argument("--backbone", default="tf_efficientnet_lite0")
    d.add_argument("--budget", type=BUDGET, default=None, help="auto's time budget in seconds (default 60)")
    d.add_argument("--json", action="store_true")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(fn=cmd_demo)
    r = sub.add_parser("resume", help="continue an interrupted, stopped or failed run from its last checkpoint")
    r.add_argument("--run", required=True)
    r.add_argument("--json", action="store_true")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(fn=cmd_resume)
    e = sub.add_parser("evaluate", help="score a run's model on a labelled folder, or on its own test/val split")
    e.add_argument("--run", required=True)
    e.add_argument("--data", default=None)
    e.add_argument("--split", default=None, choices=["test", "val"])
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_evaluate)
    m = sub.add_parser(
        "estimate", help="the accuracy a run's model is expected to reach on a folder of unlabelled photos"
    )
    m.add_argument("--run", required=True)
    m.add_argument("--data", required=True, help="folder of photos from where the model will be used")
    m.add_argument("--root", default=None, help="the data root the folder must lie under (default: the folder)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_estimate)
    x = sub.add_parser(
        "export", help="the model's files for where it will run, each measured on the test photos, and the model card"
    )
    x.add_argument("--run", required=True)
    x.add_argument("--out", default=None, help="folder (default: the run's export/)")
    x.add_argument("--target", default="server", help="phone, browser, server or microcontroller (its budget)")
    x.add_argument(
        "--formats",
        default=None,
        help="comma-separated: torchscript, onnx, onnx-int8, tflite, coreml, safetensors, web (default: the target's)",
    )
    x.add_argument("--max-latency-ms", type=float, default=None, help="median ms a photo on one CPU thread")
    x.add_argument("--max-size-mb", type=float, default=None, help="size of the file on disk")
    x.add_argument("--max-drop", type=float, default=None, help="test accuracy a file may lose, in points")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_export)
    f = sub.add_parser("lr-find", help="learning-rate range test on the groups the strategy trains")
    _plan_args(f)
    f.add_argument("--steps", type=ranged(int, 3, 10_000), default=60)
    f.set_defaults(fn=cmd_lr_find, strategy="top-k")
    return p


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print escaped, never crash
        stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        if os.environ.get("TRANSFERLAB_MEMORY"):
            memory_budget()  # a setting that is not a size is refused at start, before any data is read
        return args.fn(args)
    except RunBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (TransferLabError, KeyError, ValueError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        if isinstance(e, OSError) and not isinstance(e, TransferLabError) and e.strerror:
            msg = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
        print(f"error: {msg}", file=sys.stderr)
        return 2
