"""The planner's decisions, fingerprinted: every strategy (auto at several budgets, with and without target photos)
planned on the same photos with the same cached measurements and a clock that does not move, so two versions of the
planner can be compared decision by decision (a refactor must print the same digests).

Timing is the only thing a plan reads that changes from one run to the next: the forward pace (kept with the cached
features), the step costs (kept in the cache folder) and the seconds planning takes. The first pass (`--warm`, a real
clock) fills the caches; every later pass reads them and replaces `time.perf_counter` with a clock that advances one
microsecond per call, so auto's time left and its choice of candidates no longer depend on the machine's load. The
photos are a copy of the bundled sample inside the home, so every version compared plans the same paths.

Each plan is reduced to its facts (backbone, head, phases, rates, epochs, target section, the costs and the reason
in words) under PLAN_VERSION 8's flat names, read from either the flat plans of that version or the typed parts
that replaced them; the digest is the SHA-256 of those facts and of the starting head's weights.

Run by hand:  .venv/bin/python bench/plan_digest.py --home DIR [--warm] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "samples" / "plant-leaves-15"
FACTS = (
    "backbone",
    "taps",
    "tap_label",
    "flip_tta",
    "head_init",
    "groups",
    "head_lr",
    "head_epochs",
    "frozen",
    "lrs",
    "finetune_epochs",
    "warmup_epochs",
    "augment",
    "bn_frozen_stats",
    "views",
    "probe_accuracy",
    "head_accuracy",
    "head_cv",
    "metric",
    "n_target",
    "adapt",
    "adapt_strength",
    "target_norm",
    "target_pseudo",
    "target_reverse",
    "target_bn",
    "target_fix",
    "estimate_s",
    "start_s",
    "cache_s",
    "finetune_epoch_s",
    "score_s",
    "ram_bytes",
    "disk_bytes",
    "reason",
    "target_reason",
)


def make_target(src: Path, out: Path) -> Path:
    """Target photos made from the sample's val photos as bench/shifted_pair.py's `field` shift makes them: every
    other photo of each class unlabelled (the rest are not used)."""
    from PIL import Image

    sys.path.insert(0, str(ROOT / "bench"))
    from shifted_pair import field

    if out.exists():
        return out
    n = 0
    for cls in sorted(p for p in (src / "val").iterdir() if p.is_dir()):
        for i, f in enumerate(sorted(cls.iterdir())):
            if i % 2 == 0:
                dst = out / f"{n:05d}.jpg"
                dst.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(f) as im:
                    field(im).save(dst, quality=35)
                n += 1
    return out


def configs(data: Path, target: Path) -> dict[str, dict]:
    """The flat configs planned, by name."""
    base = {"data": str(data), "data_root": str(data), "allow_outside_root": True}
    out = {s: {**base, "strategy": s} for s in ("feature-extraction", "top-k", "full", "lp-ft", "scratch")}
    out["custom"] = {**base, "strategy": "custom", "freeze": (True,) * 7 + (False, False)}
    for budget in (60, 150, 300, 900):
        out[f"auto-{budget}"] = {**base, "strategy": "auto", "budget": float(budget)}
    for budget in (150, 300, 900):
        out[f"auto-target-{budget}"] = {**base, "strategy": "auto", "budget": float(budget), "target": str(target)}
    out["top-k-target-dann"] = {**base, "strategy": "top-k", "target": str(target), "adapt": "dann"}
    return out


# the typed parts' fields under the flat names of PLAN_VERSION 8, so both versions' digests compare
FLAT_NAMES = {
    ("data", "path"): "data",
    ("head", "label"): "tap_label",
    ("head", "flip"): "flip_tta",
    ("head", "init"): "head_init",
    ("head", "accuracy"): "head_accuracy",
    ("head", "cv"): "head_cv",
    ("target", "folder"): "target",
    ("target", "fingerprint"): "target_fingerprint",
    ("target", "n"): "n_target",
    ("target", "n_val"): "n_target_val",
    ("target", "n_test"): "n_target_test",
    ("target", "norm"): "target_norm",
    ("target", "pseudo"): "target_pseudo",
    ("target", "reverse"): "target_reverse",
    ("target", "bn"): "target_bn",
    ("target", "fix"): "target_fix",
    ("target", "reason"): "target_reason",
}


def facts(plan) -> dict:
    """The plan's decisions as plain values under PLAN_VERSION 8's flat names, whichever shape the plan has."""
    d = plan.to_dict()
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "input":
            for name, v in value.items():
                flat[FLAT_NAMES.get((key, name), name)] = v
        else:
            flat[key] = value
    flat["reason"] = getattr(plan, "reason", flat.get("reason"))  # rendered from the decisions since version 9
    flat["target_reason"] = getattr(plan, "target_reason", flat.get("target_reason"))
    return {k: flat.get(k) for k in FACTS}


def head_digest(head) -> str:
    if head is None:
        return "-"
    h = hashlib.sha256()
    for a in (head.std_coef, head.std_intercept, head.mean, head.scale):
        h.update(a.astype("float32").tobytes())
    return h.hexdigest()[:12]


class FrozenClock:
    """`time.perf_counter` that advances one microsecond a call."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True, help="the TRANSFERLAB_HOME whose caches every pass shares")
    ap.add_argument("--warm", action="store_true", help="fill the caches with a real clock first")
    ap.add_argument("--only", default="", help="comma-separated config names")
    ap.add_argument("--json", default="", help="write every plan's facts here")
    args = ap.parse_args()
    home = Path(args.home).resolve()
    os.environ["TRANSFERLAB_HOME"] = str(home)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    data = home / "sample"  # one copy for every version compared: a dataset's fingerprint includes its paths
    if not data.exists():
        shutil.copytree(SAMPLE, data)
    target = make_target(data, home / "target-field")
    try:  # where each version keeps it: model/pace.py since the planner became one policy, model/cost.py before
        from engine.model.pace import step_costs
    except ImportError:
        from engine.model.cost import step_costs
    from engine.plan.config import TrainConfig
    from engine.plan.make import get_plan

    todo = configs(data, target)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only.split(",")}
    if args.warm:  # every measurement a plan may read, with a real clock: the features and the step costs
        for name, size in (
            ("tf_efficientnet_lite0", 224),
            ("tf_efficientnet_lite1", 240),
            ("tf_efficientnet_lite2", 260),
        ):
            step_costs(name, size, "cpu")
        for name, flat in todo.items():
            t0 = time.time()
            get_plan(TrainConfig.create(**flat))
            print(f"warm {name}: {time.time() - t0:.0f} s", flush=True)
    time.perf_counter = FrozenClock()
    out, rows = {}, []
    for name, flat in todo.items():
        shutil.rmtree(home / "plans", ignore_errors=True)
        planned = get_plan(TrainConfig.create(**flat))
        f = facts(planned.plan)
        f["head"] = head_digest(planned.head)
        out[name] = f
        digest = hashlib.sha256(json.dumps(f, sort_keys=True, default=str).encode()).hexdigest()[:12]
        trained = sum(not x for x in f["frozen"][:-1])
        rows.append(
            f"{name:22} {digest}  head {f['head']}  {f['backbone']:24} groups {trained:2}  epochs "
            f"{f['head_epochs']:2}+{f['finetune_epochs']:2}  adapt {f['adapt']:5} norm {f['target_norm']!s:5} "
            f"est {f['estimate_s']:7.1f} s"
        )
    print("plan digests (the same digest: the same decisions, numbers and words)")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
