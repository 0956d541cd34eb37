"""End to end in a real browser: photos from somewhere else. The Data page takes a folder of target photos and shows
the domain-gap report; a run with DANN draws its domain curves while it trains; the Predict page shows where the
model looks (Grad-CAM) on a photo.

Debian's chromium driven by Playwright through its executable path, headless; screenshots in test-artifacts/. The
training photos are a small cut of the bundled sample (three classes, 14 photos each), the target photos colour-
inverted copies of 30 others: the page's behaviour, not the bench's accuracy (bench/domain.py).
"""

from __future__ import annotations

import shutil
from urllib.parse import quote

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, choose_option, dashboard
from conftest import SAMPLE
from PIL import Image, ImageOps
from test_e2e_lesson import TRACES, wait_until

pytestmark = [pytest.mark.browser]


def test_the_data_page_measures_the_gap_and_a_dann_run_draws_its_domain_curves_live(tmp_path):
    from playwright.sync_api import sync_playwright

    data, target = tmp_path / "data" / "leaves", tmp_path / "data" / "field"
    target.mkdir(parents=True)
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (data / cls.name).mkdir(parents=True)
        files = sorted(cls.iterdir())
        for f in files[:14]:
            shutil.copy(f, data / cls.name / f.name)
        for i, f in enumerate(files[14:24]):
            ImageOps.invert(Image.open(f).convert("RGB")).save(target / f"{cls.name[:6]}{i}.jpg")
    env = {"TRANSFERLAB_HOME": str(tmp_path / "home"), "TRANSFERLAB_DATA_ROOT": str(tmp_path / "data")}
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/Data?dataset={quote(str(data))}")
        box = page.get_by_label("Folder of target photos")
        box.wait_for(timeout=60_000)
        box.fill(str(target))
        box.press("Enter")
        page.get_by_role("button", name="Measure the domain gap").click()
        stages = wait_until(
            lambda: page.evaluate(TRACES, "How far your target photos are"), 240, "the per-stage domain-gap chart"
        )
        page.get_by_text("50% is chance").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "domain_1_gap.png"), full_page=True)
        assert stages[0][1] >= 5, stages  # a bar per stage

        page.goto(f"{url}/Train?dataset={quote(str(data))}&target={quote(str(target))}")
        choose_option(page, "Strategy", "top-k")
        choose_option(page, "Adaptation to the target photos", "dann")
        page.get_by_role("button", name="Make the plan").click()
        page.get_by_role("button", name="Start training").wait_for(timeout=240_000)
        assert page.get_by_text("DANN").count(), "the plan does not say it adapts with DANN"
        page.get_by_role("button", name="Start training").click()
        curves = wait_until(
            lambda: (t := page.evaluate(TRACES, "Adaptation: training photos against target photos")) and t,
            300,
            "the adaptation chart",
        )
        heading = page.get_by_role("heading", name="Run ").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "domain_2_dann_live.png"), full_page=True)
        assert "running" in heading, f"the domain curves appeared only after the run ended: {heading}"
        assert any(name == "domain classifier accuracy" for name, _ in curves), curves

        # where the model looks: a photo on the Predict page gets its Grad-CAM overlay
        page.get_by_role("button", name="Stop").click()  # a stopped run with a best checkpoint predicts too
        page.get_by_text("· cancelled").first.wait_for(timeout=120_000)
        page.goto(f"{url}/Predict_Export")
        page.locator('input[type="file"]').first.set_input_files(str(next(target.iterdir())))
        page.get_by_text("the chosen model").first.wait_for(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "domain_3_gradcam.png"), full_page=True)
        assert page.get_by_text("Grad-CAM").count()
        browser.close()
