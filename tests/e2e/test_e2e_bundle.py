"""The exported browser bundle in a real browser: served from 127.0.0.1 by a static server, a test photo chosen,
the same top class as predict.py, with no TransferLab server running."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import ARGS, CHROMIUM
from conftest import SAMPLE

from engine.serve.bundle import web_missing
from engine.serve.export import export_run
from engine.serve.targets import TARGETS

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def bundle(finished_store, tmp_path_factory) -> Path:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    if web_missing():
        pytest.skip(web_missing())
    out = tmp_path_factory.mktemp("bundle") / "export"
    export_run(finished_store.list()[0], out, target=TARGETS["browser"].with_limits(max_drop=100))
    return out


@pytest.fixture(scope="module")
def static(bundle):
    """A plain static server on 127.0.0.1 over the bundle's web/ folder."""
    handler = functools.partial(QuietHandler, directory=str(bundle / "web"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_the_bundle_classifies_a_photo_in_the_page_as_predict_py_does(bundle, static):
    from playwright.sync_api import sync_playwright

    card = json.loads((bundle / "web" / "model_card.json").read_text())
    photos = [str(p) for p in sorted((SAMPLE / "val").rglob("*.jpg"))[::60]]
    done = subprocess.run(
        [sys.executable, str(bundle / "predict.py"), *photos, "--json", "--model", card["model"]],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    expected = [json.loads(line)["top"][0]["class"] for line in done.stdout.splitlines()]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(static)
        page.wait_for_selector("body[data-ready=yes]", timeout=60_000)
        got = []
        for photo in photos:
            page.evaluate("() => { delete document.getElementById('answer').dataset.top; }")
            page.set_input_files("#photo", photo)
            page.wait_for_selector("#answer[data-top]", timeout=30_000)
            got.append(page.get_attribute("#answer", "data-top"))
        browser.close()
    assert not errors and len(photos) >= 4
    assert got == expected
