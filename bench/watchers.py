"""Training speed while the dashboard is watched: the Quick demo's fine-tuning images/s with no dashboard, and under
`streamlit run` with 1 or 2 browser tabs on the Train page, with the repository's `.streamlit/config.toml` against
Streamlit's defaults for the two options it changes (the file watcher and a full garbage collection after every
script run). The run trains in a thread of the server's process, so whatever the server does while holding the
Python lock slows the training steps.

Run by hand (about 15 minutes on 2 CPU cores; Debian's chromium and Playwright):
    .venv/bin/python bench/watchers.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHROMIUM = "/usr/bin/chromium"
DEFAULTS = ["--server.fileWatcherType", "auto", "--runner.postScriptGC", "true"]


def _fine_tune_rate(home: str) -> float:
    """Median images/s of the phase-2 epochs of the one run under `home`."""
    events = [json.loads(line) for f in Path(home, "runs").glob("*/events.jsonl") for line in open(f)]
    rates = [e["images_per_s"] for e in events if e["kind"] == "epoch" and e["phase"] == 2]
    return statistics.median(rates) if rates else float("nan")


def standalone(epochs: int) -> float:
    """The demo's config trained in this process, nothing watching."""
    home = tempfile.mkdtemp(prefix="tl-watch-")
    os.environ["TRANSFERLAB_HOME"] = home
    from engine.paths import SAMPLE
    from engine.plan.config import TrainConfig
    from engine.runs.store import RunStore
    from engine.service.training import train
    from ui.state import DEFAULT_BACKBONE

    cfg = TrainConfig.create(
        data=str(SAMPLE), backbone=DEFAULT_BACKBONE, strategy="auto", head_epochs=1, finetune_epochs=epochs, views=2
    )
    train(cfg, RunStore().create(cfg.to_dict()))
    return _fine_tune_rate(home)


def watched(tabs: int, epochs: int, extra: list[str]) -> float:
    """The Quick demo under `streamlit run` (with `extra` options) while `tabs` tabs show the Train page."""
    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="tl-watch-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRANSFERLAB_HOME": home, "TRANSFERLAB_DEMO_EPOCHS": f"1,{epochs}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Quick demo").click(timeout=120_000)
            page.get_by_text("Accuracy per epoch").first.wait_for(timeout=300_000)
            for _ in range(tabs - 1):
                browser.new_page(viewport={"width": 1400, "height": 1000}).goto(f"{url}/Train")
            page.get_by_text("· finished").first.wait_for(timeout=1_800_000)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return _fine_tune_rate(home)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of the demo run")
    args = ap.parse_args()
    base = standalone(args.epochs)
    rows = [("no dashboard", "-", base)]
    for label, extra in (("this repo's config", []), ("Streamlit defaults", DEFAULTS)):
        for tabs in (1, 2):
            rows.append((label, str(tabs), watched(tabs, args.epochs, extra)))
            print(rows[-1], flush=True)
    print(f"\nQuick demo (auto, bundled sample), fine-tuning images/s, median of {args.epochs} epochs")
    print(f"{'server config':22} {'tabs':>4} {'img/s':>7} {'vs no dashboard':>16}")
    for label, tabs, rate in rows:
        print(f"{label:22} {tabs:>4} {rate:7.1f} {rate / base:15.2f}x")


if __name__ == "__main__":
    main()
