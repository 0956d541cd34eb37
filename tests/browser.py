"""The dashboard as a person starts it (`make run`) and Debian's chromium driven by Playwright, for the end-to-end
tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from engine.paths import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# In the page: how many epochs the Train page's accuracy chart draws (-1: no such chart yet).
ACC_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const acc = plots.find(p => p.data && p.data.some(t => t.name === 'validation') && p.layout && p.layout.yaxis
                              && p.layout.yaxis.tickformat === '.0%');
  const val = acc ? acc.data.find(t => t.name === 'validation') : null;
  return val && val.x ? val.x.length : -1;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(env: dict[str, str]) -> Iterator[str]:
    """`make run` on a free port with `env` added; yields its URL once it answers, stops it afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not start")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def choose_option(page, box: str, option: str, tries: int = 6) -> None:
    """Opens the selectbox labelled `box` and picks `option`, as a person would. A rerun of the page (a live
    fragment's, or the page's once a run ends) can close the list as it opens; then it is opened again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(tries):
        page.get_by_test_id("stSelectbox").filter(has_text=box).click()
        item = page.get_by_role("option", name=option)
        try:
            item.wait_for(timeout=5_000)
            item.click()
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"the {box} list never showed {option!r}")
