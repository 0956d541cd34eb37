"""End to end in a real browser: "Show me why transfer learning works" draws the runs' curves live and the final
comparison chart; on the auto run that kept its linear head, "Fine-tune anyway" starts a run that draws epochs.

Debian's chromium driven by Playwright through its executable path, headless; screenshots in test-artifacts/. The
lesson runs on a small cut of the bundled sample chosen as the session's dataset (three classes, 14 photos each: a
test split of 3 a class is carved), with one epoch from scratch and one of fine-tuning and a 5 s budget for auto:
the page's behaviour, not the bench's timing (`bench/ui.py --lesson` times the bundled sample).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, quote, urlparse

import pytest
from browser import ACC_POINTS, ARGS, ARTIFACTS, CHROMIUM, dashboard
from photos import sample_cut

pytestmark = [pytest.mark.browser]

TRACES = """(title) => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout && p.layout.title
      && String(p.layout.title.text || p.layout.title).includes(title));
  return plot ? plot.data.filter(t => t.x && t.x.length).map(t => [t.name, t.x.length]) : null;
}"""


def wait_until(fn, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def test_the_lesson_draws_its_curves_and_result_and_fine_tune_anyway_trains(tmp_path):
    from playwright.sync_api import sync_playwright

    data = sample_cut(tmp_path / "data" / "leaves")
    env = {
        "TRANSFERLAB_HOME": str(tmp_path / "home"),
        "TRANSFERLAB_DATA_ROOT": str(tmp_path / "data"),
        "TRANSFERLAB_LESSON_SCRATCH_EPOCHS": "1",
        "TRANSFERLAB_LESSON_FT_EPOCHS": "1",
        "TRANSFERLAB_LESSON_BUDGET": "5",
    }  # auto: no epoch fits, it keeps its head and offers to fine-tune
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?dataset={quote(str(data))}")
        page.get_by_role("button", name="Show me why transfer learning works").click()
        page.get_by_role("heading", name="Why transfer learning works").wait_for(timeout=60_000)

        curves = wait_until(
            lambda: (t := page.evaluate(TRACES, "Validation accuracy per epoch")) and len(t) >= 3 and t,
            900,
            "three curves on the lesson page",
        )
        page.screenshot(path=str(ARTIFACTS / "lesson_1_curves.png"), full_page=True)
        result = wait_until(
            lambda: (t := page.evaluate(TRACES, "four ways")) and t[0][1] == 4 and t,
            900,
            "the final comparison chart with all four runs",
        )
        page.get_by_text("nothing was chosen on").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "lesson_2_result.png"), full_page=True)
        assert len(curves) >= 3 and result[0][1] == 4, (curves, result)

        lesson = parse_qs(urlparse(page.url).query)["lesson"][0]
        auto_id = dict(pair.split(":", 1) for pair in lesson.split(","))["auto"]
        page.goto(f"{url}/Train?run_id={auto_id}")
        anyway = page.get_by_role("button", name="Fine-tune anyway")
        anyway.wait_for(timeout=120_000)
        anyway.click()
        try:
            page.get_by_role("heading", name="finetune-anyway").first.wait_for(timeout=60_000)  # the new run shown
            wait_until(lambda: page.evaluate(ACC_POINTS) >= 2, 600, "a fine-tuning epoch drawn")
        finally:
            page.screenshot(path=str(ARTIFACTS / "lesson_3_anyway.png"), full_page=True)
        assert "finetune-anyway" in parse_qs(urlparse(page.url).query)["run_id"][0]
        browser.close()
