"""End to end in a real browser: the README's `make run`, the Quick demo, the live chart (also in a second tab),
the Compare page.

Debian's chromium driven by Playwright through its executable path, headless. Screenshots of every page are saved
to test-artifacts/.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from engine.paths import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
pytestmark = pytest.mark.browser

ACC_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const acc = plots.find(p => p.data && p.data.some(t => t.name === 'validation') && p.layout && p.layout.yaxis
                              && p.layout.yaxis.tickformat === '.0%');
  const val = acc ? acc.data.find(t => t.name === 'validation') : null;
  return val && val.x ? val.x.length : -1;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    port = _free_port()
    env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path_factory.mktemp("e2e")), "TRANSFERLAB_DEMO_EPOCHS": "1,3"}
    proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("the dashboard did not start")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_quick_demo_live_chart_and_compare(server):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        page.get_by_role("button", name="Quick demo").wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "0_home.png"), full_page=True)
        page.get_by_role("button", name="Quick demo").click()
        page.get_by_text("Accuracy per epoch").first.wait_for(timeout=120_000)
        second = browser.new_page(viewport={"width": 1400, "height": 1000})  # another tab: its own session
        second.goto(f"{server}/Train")
        second.get_by_text("Accuracy per epoch").first.wait_for(timeout=120_000)

        seen, deadline = [], time.time() + 600
        while time.time() < deadline:
            n = page.evaluate(ACC_POINTS)
            if not seen or n != seen[-1]:
                seen.append(n)
            if page.get_by_text("· finished").count():
                break
            time.sleep(0.3)
        page.screenshot(path=str(ARTIFACTS / "4_train.png"), full_page=True)
        changes = [n for n in seen if n > 0]
        assert len(seen) >= 3 and len(changes) >= 2 and changes == sorted(changes), f"accuracy chart over time: {seen}"
        assert page.get_by_text("· finished").count(), "the demo run did not finish"
        second.get_by_text("· finished").first.wait_for(timeout=60_000)  # the other tab followed the same run live
        second.screenshot(path=str(ARTIFACTS / "4b_train_second_tab.png"), full_page=True)
        second.close()

        for shot, path in (("1_data", "Data"), ("2_backbone", "Backbone"), ("3_probe", "Probe"),
                           ("6_predict", "Predict_Export"), ("5_compare", "Compare")):
            page.goto(f"{server}/{path}")
            page.wait_for_load_state("networkidle")
            page.get_by_role("heading").first.wait_for(timeout=60_000)
            time.sleep(2)
            page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert page.get_by_text("quick-demo").count() and page.get_by_text("finished").count()
        browser.close()
