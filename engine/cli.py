"""Command line: `python -m engine {backbones,inspect-data,probe}`; every command can print JSON."""
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
        print(f"{r['name']:24} {r['params_m']:6.1f}M {r['imagenet_top1']:6.1f} {r['input_size']:5d}  {src:18} {r['best_for']}")
    if any(not r["available"] for r in rows):
        print("\nMISSING: no weights on this machine. " + "Run `python -m engine backbones --json` for how to provide them.")
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
    print(f"imbalance ratio {report.imbalance_ratio}; sizes {dict(list(report.sizes.items())[:3])}; modes {report.modes}")
    for u in report.unreadable:
        print(f"  skipped: {u['reason']}")
    for w in report.warnings:
        print(f"WARNING: {w}")
    return 0


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
                print(f"{r['backbone']:24} {acc:>6}  {r['seconds'] or 0:6.1f}s  {r['params_m']:5.1f}M  {r['error'] or ''}")
        return 0
    r = probe(ds, names[0], weights=args.weights, per_stage=args.per_stage, progress=progress)
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
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(fn=cmd_probe)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (TransferLabError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
