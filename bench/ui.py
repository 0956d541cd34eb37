"""Dashboard responsiveness: each page's render time once warm, and the Train page's rerun time while a real run
trains in the background (the live fragment refreshes every 1 s; a rerun must not block longer than 200 ms).

With --browser, the live interval is also measured in Debian's chromium: the Train page of a real `streamlit run`
server is watched while the run trains, and the times between the fragment's "updated" stamps are reported.

Run by hand:  .venv/bin/python bench/ui.py [--browser]
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-ui-"))

from streamlit.testing.v1 import AppTest  # noqa: E402

import ui.state  # noqa: E402
from engine.config import TrainConfig  # noqa: E402
from engine.paths import REPO, SAMPLE  # noqa: E402
from engine.runner import Runner  # noqa: E402

PAGES = ["app.py", "pages/1_Data.py", "pages/2_Backbone.py", "pages/3_Probe.py", "pages/4_Train.py",
         "pages/5_Compare.py", "pages/6_Predict_Export.py"]


def render(path: str) -> float:
    at = AppTest.from_file(str(REPO / path), default_timeout=300)
    t0 = time.perf_counter()
    at.run()
    if at.exception:
        raise RuntimeError(f"{path}: {at.exception}")
    return time.perf_counter() - t0


def browser_interval(seconds: float = 12.0) -> list[float]:
    """Intervals (s) between live updates of the Train page, seen by a real browser."""
    import socket
    import subprocess
    from playwright.sync_api import sync_playwright
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port",
                               str(port), "--server.headless", "true"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            for _ in range(60):
                try:
                    page.goto(f"http://127.0.0.1:{port}/Train")
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    time.sleep(1)
            page.get_by_text("Live · updated").first.wait_for(timeout=60_000)
            page.evaluate("""() => { window.stamps = []; let last = '';
                new MutationObserver(() => { const el = [...document.querySelectorAll('p')].find(
                    e => e.textContent.startsWith('Live · updated'));
                  if (el && el.textContent !== last) { last = el.textContent; window.stamps.push(performance.now()); }
                }).observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
            time.sleep(seconds)
            stamps = page.evaluate("() => window.stamps")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [(b - a) / 1000 for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    runner = Runner()
    ui.state.get_runner = lambda: runner  # the pages read this process's runner
    rid = runner.submit(TrainConfig(data=str(SAMPLE), strategy="top-k", head_epochs=2, finetune_epochs=6, views=2))
    while runner.store.open(rid).status().get("state") not in ("running",):
        time.sleep(0.1)
    while not runner.store.open(rid).events("epoch"):  # wait until the loop is in its epochs
        time.sleep(0.2)
    print(f"{'page':28} {'cold s':>7} {'warm s':>7}   (a real run is training meanwhile)")
    for path in PAGES:
        cold = render(path)
        warm = statistics.median(render(path) for _ in range(3))
        print(f"{path:28} {cold:7.2f} {warm:7.2f}")
    reruns = []
    at = AppTest.from_file(str(REPO / "pages/4_Train.py"), default_timeout=60)
    for _ in range(10):
        t0 = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t0)
        time.sleep(1.0)
    state = runner.store.open(rid).status().get("state")
    print(f"Train page reruns while training ({state}): median {statistics.median(reruns) * 1000:.0f} ms, "
          f"max {max(reruns) * 1000:.0f} ms; live fragment run_every 0.8 s")
    if "--browser" in sys.argv:
        gaps = browser_interval()
        if gaps:
            print(f"live updates seen in chromium while training: {len(gaps)} intervals, median "
                  f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s")
        else:
            print("live updates seen in chromium: none (the stamp did not change)")
    runner.cancel(rid)
    runner.wait(rid, timeout=60)


if __name__ == "__main__":
    main()
