"""In a real browser: a missing backbone's weights downloaded from the Backbone page (a local stand-in for the hub),
with its size, licence and a moving progress bar, and another backbone's weights uploaded as a file."""

from __future__ import annotations

import time

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, dashboard
from hubserver import Hub, HubServer
from safetensors.torch import save

from engine.model.catalogue import build_model, get_entry

pytestmark = pytest.mark.browser
DOWNLOAD, UPLOAD = "mobilenetv3_small_100", "resnet18"
BARS = """() => [...document.querySelectorAll('[data-testid="stProgress"] [role="progressbar"]')]
  .map(b => Number(b.getAttribute('aria-valuenow')))"""


def test_backbone_page_downloads_with_progress_and_accepts_an_upload(tmp_path):
    from playwright.sync_api import sync_playwright

    hub = Hub(delay=0.02)
    repo, filename = get_entry(DOWNLOAD).hub_file
    hub.add(repo, filename, save(build_model(DOWNLOAD).state_dict()))
    upload = tmp_path / "my-resnet18.safetensors"
    upload.write_bytes(save(build_model(UPLOAD).state_dict()))
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        HubServer(hub) as hub_url,
        dashboard(
            {
                "HF_ENDPOINT": hub_url,
                "HF_HOME": str(tmp_path / "hf"),
                "TORCH_HOME": str(tmp_path / "torch"),
                "TRANSFERLAB_HOME": str(tmp_path / "tl"),
            }
        ) as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Backbone?backbone={DOWNLOAD}")
        button = page.get_by_role("button", name="Download (10 MB)")
        button.wait_for(timeout=60_000)
        assert page.get_by_text("licence apache-2.0").count()
        # the first page a fresh server opens by its URL: pages/ is st.navigation's, never Streamlit's own discovery
        assert not page.get_by_text("Page not found").count(), "a 'Page not found' dialog over a page opened by URL"
        button.click()
        values, deadline = set(), time.time() + 60
        while time.time() < deadline and not page.get_by_text("Weights: hf-cache").count():
            values |= set(page.evaluate(BARS))
            time.sleep(0.1)
        page.screenshot(path=str(ARTIFACTS / "backbone_downloaded.png"), full_page=True)
        assert page.get_by_text("Weights: hf-cache").count(), "the downloaded backbone is not shown as available"
        assert len(values) >= 3, f"the download's progress bar did not move: {values}"

        page.goto(f"{url}/Backbone?backbone={UPLOAD}")
        page.get_by_text("Or upload a weights file").wait_for(timeout=60_000)
        page.locator('input[type="file"]').set_input_files(str(upload))
        page.get_by_text("Weights: weights-dir").first.wait_for(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "backbone_uploaded.png"), full_page=True)
        browser.close()
