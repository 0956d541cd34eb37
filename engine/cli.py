"""Command line: `python -m engine {backbones,inspect-data,probe,train,resume,evaluate,lr-find}`; all print JSON too."""
from __future__ import annotations

import argparse
import json
import sys

from engine.errors import TransferLabError


def _progress(stage: str, frac: float) -> None:
    print(f"\r{stage:>10} {frac:6.1%}", end="" if frac < 1 else "\n", file=sys.stderr, flush=True)


def cmd_backbones(args: argparse.Namespace) -> int:
    from engine.catalogue import list_entries
    from engine.weights import availability
    rows = [{**e.as_row(), **availability(e.name)} for e in list_entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'backbone':24} {'params':>7} {'top-1':>6} {'size':>5}  {'weights':18} best for")
    for r in rows:
        src = r["source"] or "MISSING"
        print(f"{r['name']:24} {r['params_m']:6.1f}M {r['imagenet_top1']:6.1f} {r['input_size']:5d}  {src:18} "
              f"{r['best_for']}")
    if any(not r["available"] for r in rows):
        print("\nMISSING: no weights on this machine. Run `python -m engine backbones --json` for how to provide them.")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from engine.data import load_dataset
    from engine.report import build_report
    report = build_report(load_dataset(args.path, val=args.val, seed=args.seed))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"dataset {report.root}  ({len(report.classes)} classes; validation: {report.val_source})")
    for split, counts in report.counts.items():
        print(f"  {split}: {sum(counts.values())} images")
    width = max(len(c) for c in report.classes)
    for cls in report.classes:
        print(f"  {cls:{width}}  " + "  ".join(f"{s} {report.counts[s][cls]:4d}" for s in report.counts))
    sizes = dict(list(report.sizes.items())[:3])
    print(f"imbalance ratio {report.imbalance_ratio}; sizes {sizes}; modes {report.modes}")
    for u in report.unreadable:
        print(f"  skipped: {u['reason']}")
    for w in report.warnings:
        print(f"WARNING: {w}")
    return 0


CHANS_HELP = "image channels: 1, 2, 3 (default), 4, or more from .npy files; the first convolution is adapted"


def cmd_probe(args: argparse.Namespace) -> int:
    from engine.data import load_dataset
    from engine.probe import probe, shootout
    ds = load_dataset(args.data, val=args.val, seed=args.seed)
    names = [n.strip() for n in args.backbone.split(",") if n.strip()]
    progress = None if args.quiet else _progress
    if len(names) > 1:
        rows = shootout(ds, names, per_stage=args.per_stage, progress=progress)
        out = [{k: v for k, v in r.items() if k != "result"} |
               ({"recommendation": r["result"].recommendation.to_dict()} if r["result"] else {}) for r in rows]
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            for r in out:
                acc = "   -  " if r["accuracy"] is None else f"{r['accuracy']:.1%}"
                print(f"{r['backbone']:24} {acc:>6}  {r['seconds'] or 0:6.1f}s  {r['params_m']:5.1f}M  "
                      f"{r['error'] or ''}")
        return 0
    r = probe(ds, names[0], weights=args.weights, per_stage=args.per_stage, in_channels=args.in_chans,
              progress=progress)
    if args.json:
        d = r.to_dict()
        for k in ("val_paths", "val_labels", "val_predictions", "val_confidence"):
            d.pop(k)
        print(json.dumps(d, indent=2))
        return 0
    print(f"{r.backbone}: linear probe accuracy {r.accuracy:.1%} on {r.n_val} validation images "
          f"({r.seconds:.1f}s{', cached features' if r.cached else ''}; weights {r.weights.source})")
    if r.stage_curve:
        for c in r.stage_curve:
            print(f"  after {c['name']:28} {c['accuracy']:6.1%}  {'#' * int(c['accuracy'] * 40)}")
    rec = r.recommendation
    print(f"\nRecommendation: {rec.strategy}\n  {rec.reason}")
    return 0


def _watch(run, total_hint: int = 0) -> None:
    """Progress bar from the run's events (the CLI reads the store like the dashboard does)."""
    from tqdm import tqdm
    bar, seen = None, 0
    while True:
        evs = run.events("epoch")
        for e in evs[seen:]:
            if bar is None:
                bar = tqdm(total=e["total_epochs"], initial=e["epoch"] - 1, unit="epoch", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(val_acc=f"{e['val_acc']:.3f}", phase=e["phase"])
        seen = len(evs)
        if run.status().get("state") in ("finished", "cancelled", "failed"):
            break
        import time
        time.sleep(0.5)
    if bar:
        bar.close()


def _train_result(run, as_json: bool) -> int:
    m = run.read_json("metrics.json") or {}
    out = {k: m.get(k) for k in ("run_id", "run_dir", "status", "best_val_acc", "best_epoch", "seconds",
                                 "probe_accuracy", "error")}
    print(json.dumps(out, indent=2) if as_json else
          f"run {out['run_id']} {out['status']}: best val accuracy {out['best_val_acc']:.1%} "
          f"(epoch {out['best_epoch']}) "
          f"in {out['seconds']:.0f}s{' - ' + out['error'] if out['error'] else ''}\n  {out['run_dir']}")
    return 0 if out["status"] == "finished" else 1


def cmd_train(args: argparse.Namespace) -> int:
    import threading
    from engine.config import TrainConfig
    from engine.events import CancelToken
    from engine.loop import Trainer
    from engine.store import RunStore
    kw = {k: v for k, v in dict(val=args.val, backbone=args.backbone, weights=args.weights, strategy=args.strategy,
                                 top_k=args.top_k, lr=args.lr, head_epochs=args.head_epochs,
                                 finetune_epochs=args.epochs, batch_size=args.batch_size, augment=args.augment,
                                 balance=args.balance, views=args.views, seed=args.seed, device=args.device,
                                 in_chans=args.in_chans).items()
          if v is not None}
    from engine import distributed
    cfg = TrainConfig(data=args.data, **kw)
    rank, world = distributed.init()
    store = RunStore()
    run = store.open(distributed.share_run_id(store.create(cfg.to_dict()).id if rank == 0 else None))
    if rank != 0:  # torchrun: the other ranks train their shards; rank 0 records and reports
        Trainer(cfg, run).fit()
        return 0
    print(f"run {run.id} in {run.path}" + (f" ({world} processes)" if world > 1 else ""), file=sys.stderr)
    token = CancelToken()
    t = threading.Thread(target=Trainer(cfg, run, token).fit, daemon=True)
    t.start()
    try:
        if not args.quiet:
            _watch(run)
        t.join()
    except KeyboardInterrupt:
        token.cancel()
        t.join()
    return _train_result(run, args.json)


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.config import TrainConfig
    from engine.loop import Trainer
    from engine.store import RunStore
    run = RunStore().open(args.run)
    Trainer(TrainConfig.from_dict(run.config), run).fit()
    return _train_result(run, args.json)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.evaluate import evaluate
    r = evaluate(args.run, args.data)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"accuracy {r['accuracy']:.1%} on {r['n']} images")
        for c, a in r["per_class"].items():
            print(f"  {c:40} {'-' if a is None else f'{a:.1%}'}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from engine.config import TrainConfig
    from engine.lrfind import lr_find
    cfg = TrainConfig(data=args.data, backbone=args.backbone, strategy=args.strategy)
    r = lr_find(cfg, steps=args.steps, progress=None if args.json else _progress)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        for lr, loss in list(zip(r["lrs"], r["losses"]))[::max(1, len(r["lrs"]) // 15)]:
            print(f"  lr {lr:9.2e}  loss {loss:7.3f}")
        print(f"suggested head learning rate: {r['suggestion']:.1e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="TransferLab engine")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backbones", help="the catalogue, with weight availability")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_backbones)
    i = sub.add_parser("inspect-data", help="the dataset health report")
    i.add_argument("path")
    i.add_argument("--val", default=None)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inspect)
    pr = sub.add_parser("probe", help="linear probe and strategy recommendation")
    pr.add_argument("--data", required=True)
    pr.add_argument("--val", default=None)
    pr.add_argument("--backbone", default="tf_efficientnet_lite0", help="one name, or several separated by commas")
    pr.add_argument("--weights", default="auto", help="auto, none, or a weights file")
    pr.add_argument("--per-stage", action="store_true", help="also probe the features after every layer group")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--in-chans", type=int, default=3, help=CHANS_HELP)
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(fn=cmd_probe)
    t = sub.add_parser("train", help="fine-tune a backbone (progress bar, then JSON with --json)")
    t.add_argument("--data", required=True)
    t.add_argument("--val", default=None)
    t.add_argument("--backbone", default="tf_efficientnet_lite0")
    t.add_argument("--weights", default="auto")
    t.add_argument("--strategy", default="auto",
                   choices=["auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch"])
    t.add_argument("--top-k", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--head-epochs", type=int, default=None)
    t.add_argument("--epochs", type=int, default=None, help="fine-tuning (phase 2) epochs")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--augment", default=None, choices=["none", "basic", "randaugment", "autoaugment"])
    t.add_argument("--balance", default=None, choices=["none", "sampler", "weighted-loss", "focal"])
    t.add_argument("--views", type=int, default=None)
    t.add_argument("--in-chans", type=int, default=None, help=CHANS_HELP)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None)
    t.add_argument("--json", action="store_true")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(fn=cmd_train)
    r = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    r.add_argument("--run", required=True)
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_resume)
    e = sub.add_parser("evaluate", help="evaluate a run's model on a labelled folder")
    e.add_argument("--run", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_evaluate)
    f = sub.add_parser("lr-find", help="learning-rate range test on the groups the strategy trains")
    f.add_argument("--data", required=True)
    f.add_argument("--backbone", default="tf_efficientnet_lite0")
    f.add_argument("--strategy", default="top-k", choices=["auto", "feature-extraction", "top-k", "full", "lp-ft"])
    f.add_argument("--steps", type=int, default=60)
    f.add_argument("--json", action="store_true")
    f.set_defaults(fn=cmd_lr_find)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (TransferLabError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
