"""In a real browser: two datasets of one folder name (a shared copy and a bundled one) appear on Compare as two,
labelled apart, and their runs are never side by side unless both are chosen."""

from __future__ import annotations

import json
import shutil

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, dashboard

pytestmark = pytest.mark.browser


def test_two_datasets_of_one_name_are_two_on_compare(finished_store, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    src = finished_store.list()[0]
    home = tmp_path / "home"
    for where in ("shared", "bundled"):
        dst = home / "runs" / f"{src.id}-{where}"
        shutil.copytree(src.path, dst)
        plan = json.loads((dst / "plan.json").read_text())
        plan["data"]["path"] = f"/photos/{where}/tiny"
        (dst / "plan.json").write_text(json.dumps(plan))
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard({"TRANSFERLAB_HOME": str(home)}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Compare")
        picker = page.get_by_test_id("stMultiSelect").filter(has_text="Datasets")
        picker.wait_for(timeout=60_000)
        expect(picker.get_by_text("tiny (bundled)")).to_have_count(1)  # one dataset chosen at first, named by place
        expect(picker.get_by_text("tiny (shared)")).to_have_count(0)  # the other not mixed into it
        picker.click()
        expect(page.get_by_role("option", name="tiny (shared)")).to_be_visible()  # the other is offered apart
        page.keyboard.press("Escape")
        page.screenshot(path=str(ARTIFACTS / "compare_two_of_one_name.png"), full_page=True)
        browser.close()
