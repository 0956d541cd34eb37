"""End to end in a real browser: the Train page keeps its strategy and an edited plan across a switch to the Data
page and back through the sidebar, as a person moves between pages.

Debian's chromium driven by Playwright through its executable path, headless; screenshots in test-artifacts/. A small
cut of the bundled sample (three classes, 14 photos each) so that the plan is made in seconds.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, choose_option, dashboard
from photos import sample_cut

pytestmark = [pytest.mark.browser]

EPOCHS = "Fine-tune epochs (phase 2)"


def test_an_edited_plan_survives_a_switch_to_data_and_back(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    data = sample_cut(tmp_path / "data" / "leaves")
    env = {"TRANSFERLAB_HOME": str(tmp_path / "home"), "TRANSFERLAB_DATA_ROOT": str(tmp_path / "data")}
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Train?dataset={quote(str(data))}")
        choose_option(page, "Strategy", "top-k")
        page.get_by_role("button", name="Make the plan").click()
        page.get_by_role("button", name="Start training").wait_for(timeout=240_000)
        epochs = page.get_by_label(EPOCHS)
        epochs.fill("7")
        epochs.press("Enter")
        page.get_by_text("custom").first.wait_for(timeout=30_000)  # the edit made the plan custom
        page.screenshot(path=str(ARTIFACTS / "train_plan_1_edited.png"), full_page=True)

        page.get_by_test_id("stSidebarNav").get_by_text("1 Data").click()
        page.get_by_role("heading", name="1 · Data").wait_for(timeout=60_000)
        page.get_by_test_id("stSidebarNav").get_by_text("4 Train").click()
        try:
            page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "train_plan_2_back.png"), full_page=True)
        expect(page.get_by_label(EPOCHS)).to_have_value("7")
        expect(page.get_by_role("combobox", name="Strategy")).to_have_value("top-k")
        browser.close()
