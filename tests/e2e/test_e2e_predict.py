"""In a real browser: a painting given to the sample's plant model on Predict is called out of place, not answered with
a confident class; one of the sample's own photos is answered."""

from __future__ import annotations

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, dashboard
from conftest import SAMPLE, shared_dataset

pytestmark = pytest.mark.browser
OUT_OF_PLACE = "This photo does not look like your training photos"


def test_a_painting_is_called_out_of_place_on_predict(sample_run):
    from playwright.sync_api import sync_playwright

    painting = sorted((shared_dataset("pacs-photo-art") / "target" / "test").rglob("*.jpg"))[0]
    leaf = sorted((SAMPLE / "val").rglob("*.jpg"))[0]
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard({"TRANSFERLAB_HOME": str(sample_run.path.parent.parent)}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Predict_Export")
        page.get_by_text("Try a photo").wait_for(timeout=60_000)
        page.locator('input[type="file"]').first.set_input_files(str(painting))
        page.get_by_text(OUT_OF_PLACE).wait_for(timeout=240_000)
        page.screenshot(path=str(ARTIFACTS / "predict_out_of_place.png"), full_page=True)
        page.locator('input[type="file"]').first.set_input_files(str(leaf))
        page.get_by_text("Scores for each class").wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        assert not page.get_by_text(OUT_OF_PLACE).count(), "a photo of the training collection called out of place"
        browser.close()
