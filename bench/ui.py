"""Dashboard honesty and responsiveness, measured the way a person meets them.

1. Page render time once warm (AppTest, every page of the router).
2. Time left: the Quick demo (auto), and top-k and full edited to 1 head + 2 fine-tuning epochs (`--strategies`),
   each run by the same `Runner` the page uses, cold (a fresh TRANSFERLAB_HOME each time: no stored plan, no cached
   features), and at 25, 50 and 75% of its wall time the whole run's time left that the Train page shows is compared
   with the time the run really had left. Also the plan's estimate against the real wall time.
3. With --lesson N: the lesson's experiment ("Show me why transfer learning works") N times, cold, through the same
   `Runner` and configurations as the Home button: seconds from the click until every arm has ended (the final chart),
   the fine-tuning arm's epochs drawn and its groups that trained (the freeze map's open groups).
4. With --browser: a real `streamlit run` server in Debian's chromium; the time from the Quick demo click to the first
   named setup step on screen (the run is stopped right after).

Run by hand:  .venv/bin/python bench/ui.py [--reps 2] [--strategies auto,top-k,full] [--lesson 3] [--browser]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-ui-"))

from engine import TERMINAL, TrainConfig, demo_config, lesson_configs, lesson_estimate, time_left
from engine.data.decode import DECODED
from engine.paths import REPO, SAMPLE
from engine.plan.stored import read_plan
from engine.runs.store import RunStore
from engine.service.runner import Runner

PAGES = ["home.py", "data.py", "backbone.py", "probe.py", "train.py", "compare.py", "predict.py"]
MARKS = (0.25, 0.5, 0.75)


def render(name: str) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / name), default_timeout=300)
    t0 = time.perf_counter()
    at.run()
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception}")
    return time.perf_counter() - t0


def shown_eta(events: list[dict], at: float) -> float | None:
    """The whole run's time left as the Train page shows it at wall time `at` (the engine's `time_left`)."""
    return time_left(events, at)


def eta_errors(store: RunStore, run_id: str) -> tuple[dict[float, float | None], float, float, float]:
    """Relative error of the shown time left at each mark, the run's wall time, the plan's estimate, and the largest
    swing of the shown time left from one second to the next (`swing`)."""
    run = store.open(run_id)
    events = run.events()
    start, end = events[0].t, events[-1].t
    wall = end - start
    errors = {}
    for m in MARKS:
        at = start + m * wall
        eta, real = shown_eta(events, at), end - at
        errors[m] = None if eta is None else abs(eta - real) / real
    plan = read_plan(run.path)
    estimate = plan.cost.estimate_s if plan else 0.0
    return errors, wall, estimate, swing(events, start, end)


def swing(events: list[dict], start: float, end: float) -> float:
    """The largest factor by which the shown time left jumps from one second to the next (1.0: it only counts down),
    sampled every second of the run."""
    shown = [shown_eta(events, t) for t in range(int(start) + 1, int(end))]
    pairs = [(a, b) for a, b in zip(shown, shown[1:]) if a is not None and b is not None]
    return max([max(b / max(a - 1.0, 1.0), max(a - 1.0, 1.0) / b) for a, b in pairs] or [1.0])


def busy(n: int) -> list:
    """`n` processes that keep a core busy each (the CPU-bound neighbour the time left must hold against)."""
    import subprocess

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


STRATEGY_CONFIGS = {  # as a person would start them on the sample (fixed strategies edited down to a few epochs)
    "auto": demo_config,
    "top-k": lambda: TrainConfig.create(data=str(SAMPLE), strategy="top-k", head_epochs=1, finetune_epochs=2),
    "full": lambda: TrainConfig.create(data=str(SAMPLE), strategy="full", head_epochs=1, finetune_epochs=2),
}


def run_cold(strategy: str) -> str:
    """One run of `strategy`, cold (a fresh TRANSFERLAB_HOME: no stored plan, no cached features, no measured step
    costs), through the `Runner` the pages use; returns its id once it ended."""
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-ui-")
    DECODED.clear()
    runner = Runner(RunStore())
    rid = runner.submit(STRATEGY_CONFIGS[strategy](), name=f"bench-{strategy}")
    while runner.store.open(rid).status().get("state") not in ("finished", "failed", "cancelled"):
        time.sleep(1)
    return rid


def lesson_run() -> tuple[float, int, int, float]:
    """One cold lesson experiment: (seconds until all four runs ended, fine-tuning epochs drawn, groups it trained,
    the seconds the Home page promised: `lesson_estimate`, made cold before the click)."""
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-lesson-")
    DECODED.clear()
    runner = Runner(RunStore())
    promised = lesson_estimate(str(SAMPLE)).total
    t0 = time.perf_counter()
    ids = {arm: runner.submit(cfg, name=f"lesson-{arm}") for arm, cfg in lesson_configs(str(SAMPLE)).items()}
    while any(runner.store.open(r).status().get("state") not in TERMINAL for r in ids.values()):
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    tune = runner.store.open(ids["finetune"])
    for arm, rid in ids.items():
        state = runner.store.open(rid).status().get("state")
        if state != "finished":
            raise SystemExit(f"lesson arm {arm} ended {state}")
    epochs = [e.epoch for e in tune.events("epoch") if e.epoch > 0]
    phases = tune.events("phase_started")
    trained = sum(not f for f in phases[-1].frozen) if phases else 0
    return wall, len(epochs), trained, promised


def browser_first_step(reps: int) -> list[float]:
    """Seconds from the Quick demo click to a named setup step with a progress bar, in chromium."""
    import shutil
    import signal
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "tests"))
    from test_e2e_browser import click_to_first_step

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRANSFERLAB_HOME": tempfile.mkdtemp(prefix="tl-ui-browser-")}
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url, times = f"http://127.0.0.1:{port}", []
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu"],
            )
            for _ in range(reps):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.get_by_role("button", name="Quick demo").wait_for(timeout=60_000)
                page.wait_for_load_state("networkidle")
                time.sleep(1)
                first = click_to_first_step(page, "Quick demo", limit=30)
                if first is not None:
                    times.append(first)
                page.get_by_role("button", name="Stop").click()
                page.get_by_text("· cancelled").first.wait_for(timeout=120_000)
                page.close()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2, help="runs of each strategy for the time-left error")
    ap.add_argument("--strategies", default="auto", help="comma-separated, of: " + ", ".join(STRATEGY_CONFIGS))
    ap.add_argument("--browser", action="store_true", help="also time click → first step in chromium")
    ap.add_argument("--lesson", type=int, default=0, help="time the lesson's experiment this many times (cold)")
    ap.add_argument("--load", type=int, default=0, help="CPU-bound processes running beside the runs")
    ap.add_argument("--no-pages", action="store_true", help="skip the page render times")
    args = ap.parse_args()
    neighbours = busy(args.load)
    try:
        measure(args)
    finally:
        for proc in neighbours:
            proc.kill()


def measure(args: argparse.Namespace) -> None:
    """Everything `main`'s arguments ask for, printed as it is measured."""
    if args.load:
        print(f"with {args.load} CPU-bound process(es) running beside it, {os.cpu_count()} CPU cores")
    if args.lesson:
        print(f"lesson experiment on the bundled sample, {os.cpu_count()} CPU cores, cold ({args.lesson} runs)")
        print(
            f"{'promised s':>10} {'seconds to the final chart':>27} {'fine-tuning epochs':>19} {'groups trained':>15}",
            flush=True,
        )
        runs = []
        for _ in range(args.lesson):
            runs.append(lesson_run())
            print(f"{runs[-1][3]:10.0f} {runs[-1][0]:27.0f} {runs[-1][1]:19d} {runs[-1][2]:15d}", flush=True)
        print(f"median {statistics.median(r[0] for r in runs):.0f} s")
    if not args.no_pages:
        print(f"{'page':14} {'render s (warm)':>16}")
        for name in PAGES:
            render(name)
            print(f"{name:14} {statistics.median(render(name) for _ in range(3)):16.2f}")

    for strategy in args.strategies.split(",") if args.reps else []:
        rows = []
        for _ in range(args.reps):
            rid = run_cold(strategy)
            rows.append(eta_errors(RunStore(), rid))
        print(f"\n{strategy} ({args.reps} runs, cold): error of the time left shown, |shown - real| / real")
        print(f"{'at':>6} {'median error':>13} {'max error':>10}")
        for m in MARKS:
            errs = [r[0][m] for r in rows if r[0][m] is not None]
            print(f"{m:6.0%} {statistics.median(errs):13.0%} {max(errs):10.0%}" if errs else f"{m:6.0%} {'none':>13}")
        walls = [r[1] for r in rows]
        ests = [r[2] for r in rows]
        print(
            f"run wall time: median {statistics.median(walls):.0f} s; the plan's estimate before it started: median "
            f"{statistics.median(ests):.0f} s ({statistics.median(e / w for e, w in zip(ests, walls)):.2f}x); "
            f"each: " + ", ".join(f"{e:.0f}/{w:.0f} s" for e, w in zip(ests, walls)),
            flush=True,
        )
        print(f"largest swing of the time left from one second to the next: {max(r[3] for r in rows):.2f}x")
    if args.browser:
        t = browser_first_step(args.reps)
        print(
            f"\nclick → first named step on screen (chromium, {len(t)} clicks): median {statistics.median(t):.2f} s, "
            f"max {max(t):.2f} s"
        )


if __name__ == "__main__":
    main()
