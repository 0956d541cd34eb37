"""Scale: the probe on N = 1k, 5k and 20k images of eurosat-large (wall time, images/s, peak memory), and auto with a
short budget on the small and the large training set, scored on eurosat-10/test.

Each measurement is a fresh `python -m engine …` process with its own TRANSFERLAB_HOME (nothing cached); peak memory
is the process's maximum resident set (`wait4`). Validation is eurosat-10/val, the test split eurosat-10/test; the
1k and 5k sets are stratified copies of part of eurosat-large/train.

Run by hand:  .venv/bin/python bench/scale.py [--sizes 1000,5000,19728] [--budget-small 300] [--budget-large 900]
              [--memory 2G] [--no-auto] [--no-probe]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "datasets"
LARGE, VAL, TEST = SHARED / "eurosat-large" / "train", SHARED / "eurosat-10" / "val", SHARED / "eurosat-10" / "test"


def subset(n: int, out: Path) -> Path:
    """A stratified copy of `n` images of eurosat-large/train (the whole folder when `n` covers it)."""
    classes = sorted(d for d in LARGE.iterdir() if d.is_dir())
    files = {c: sorted(c.iterdir()) for c in classes}
    total = sum(len(f) for f in files.values())
    if n >= total:
        return LARGE
    for c in classes:
        (out / c.name).mkdir(parents=True)
        for f in files[c][: round(n * len(files[c]) / total)]:
            shutil.copy(f, out / c.name / f.name)
    return out


def run(args: list[str], memory: str | None, then: bool = False) -> tuple[float, float, dict, dict]:
    """(wall seconds, peak RSS in GB, the command's JSON, the run's plan) of `python -m engine ARGS --json --quiet`.
    With `then`, the run is also evaluated on its test split and exported (their results go into the plan dict)."""
    env = {**os.environ, "TRANSFERLAB_HOME": tempfile.mkdtemp(prefix="tl-scale-")}
    if memory:
        env["TRANSFERLAB_MEMORY"] = memory
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args, "--json", "--quiet"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak resident set
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(args)} failed: {err.read()[-2000:]}")
    wall, rss, result = time.perf_counter() - t0, usage.ru_maxrss / 1024**2, json.loads(out)
    plan_file = Path(result.get("run_dir") or "/nonexistent") / "plan.json"
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    if then and result.get("run_id"):
        for cmd in (["evaluate", "--run", result["run_id"], "--split", "test"], ["export", "--run", result["run_id"]]):
            done = subprocess.run(
                [sys.executable, "-m", "engine", *cmd, "--json"], cwd=REPO, env=env, capture_output=True, text=True
            )
            plan[cmd[0]] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}
    shutil.rmtree(env["TRANSFERLAB_HOME"], ignore_errors=True)
    return wall, rss, result, plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,5000,19728")
    ap.add_argument("--budget-small", type=float, default=300.0)
    ap.add_argument("--budget-large", type=float, default=900.0)
    ap.add_argument("--memory", default=None, help="TRANSFERLAB_MEMORY for every run (default: unset)")
    ap.add_argument("--no-auto", action="store_true")
    ap.add_argument("--no-probe", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tl-scale-data-"))
    sets = {n: subset(n, work / str(n)) for n in sizes}
    print(
        f"probe (EfficientNet-Lite0, final features; image + mirror up to 5,000 images), val {VAL.parent.name}/val; "
        f"TRANSFERLAB_MEMORY={args.memory or 'unset'}; {os.cpu_count()} CPUs"
    )
    print(f"{'images':>7} {'wall s':>8} {'images/s':>9} {'peak RSS GB':>12} {'val acc':>8}")
    for n, data in sets.items() if not args.no_probe else []:
        wall, rss, out, _ = run(["probe", "--data", str(data), "--val", str(VAL), "--test", str(TEST)], args.memory)
        print(
            f"{out['n_train']:7d} {wall:8.1f} {(out['n_train'] + out['n_val']) / wall:9.1f} {rss:12.2f} "
            f"{out['accuracy']:8.3f}"
        )
    if not args.no_auto:
        print("\nauto (train on N, choose on eurosat-10/val, score eurosat-10/test once)")
        print(
            f"{'images':>7} {'budget s':>9} {'wall s':>8} {'peak RSS GB':>12} {'test acc':>9} "
            f"{'95% interval':>14}  plan"
        )
        for n, budget in ((min(sizes), args.budget_small), (max(sizes), args.budget_large)):
            wall, rss, out, plan = run(
                [
                    "train",
                    "--data",
                    str(sets[n]),
                    "--val",
                    str(VAL),
                    "--test",
                    str(TEST),
                    "--strategy",
                    "auto",
                    "--budget",
                    str(budget),
                ],
                args.memory,
                then=True,
            )
            lo, hi = out.get("test_interval") or (0, 0)
            print(
                f"{n:7d} {budget:9.0f} {wall:8.1f} {rss:12.2f} {out['test_accuracy'] or 0:9.3f} "
                f"{lo:6.3f}–{hi:6.3f}  {plan.get('backbone', '?')}: {plan.get('tap_label', '?')}, "
                f"{plan.get('finetune_epochs', '?')} fine-tune epochs; {out['status']}"
            )
            ev, ex = plan.get("evaluate", {}), plan.get("export", {})
            print(
                f"{'':7} then: evaluate --split test {ev.get('accuracy', ev.get('error'))}; export "
                f"{', '.join(ex.get('files', {})) or ex.get('error')} (checks {ex.get('checks')})"
            )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
