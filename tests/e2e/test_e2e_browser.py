"""End to end in a real browser: the README's `make run`, the Quick demo, the live chart (also in a second tab),
the Compare page.

Debian's chromium driven by Playwright through its executable path, headless. Screenshots of every page are saved
to test-artifacts/.
"""

from __future__ import annotations

import time

import pytest
from browser import ACC_POINTS, ARGS, ARTIFACTS, CHROMIUM, choose_option, dashboard

pytestmark = [pytest.mark.browser, pytest.mark.alone]  # it times the page: no other test beside it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {
        "TRANSFERLAB_HOME": str(tmp_path_factory.mktemp("e2e")),
        "TRANSFERLAB_DEMO_EPOCHS": "2",
        "TRANSFERLAB_DEMO_BUDGET": "30",
    }
    with dashboard(env) as url:
        yield url


STEP_NAMES = ("queued", "load and check data", "probe", "choose the head", "validate the starting model")
PROGRESS = """() => [...document.querySelectorAll('[data-testid="stProgress"]')].map(p => {
  const bar = p.querySelector('[role="progressbar"]');
  return [p.innerText, bar ? Number(bar.getAttribute('aria-valuenow')) : -1];
})"""


# In the page: the time of the first click and of the first moment after it when what `seen` names is on screen (a
# MutationObserver), so the measure is the browser's own, not the test's polling interval. `seen.kind`: "step" (a
# progress bar names one of `seen.what`), "heading" (a run heading names `seen.what`), "text" (the page shows it).
WATCH = """(seen) => {
  window.__clickAt = null; window.__seenAt = null;
  document.addEventListener('click', () => { if (window.__clickAt === null) window.__clickAt = performance.now(); },
                            true);
  const shown = {
    step: () => [...document.querySelectorAll('[data-testid="stProgress"]')]
      .some(p => seen.what.some(n => p.innerText.includes(n))),
    heading: () => [...document.querySelectorAll('h3')]
      .some(h => h.innerText.startsWith('Run ') && h.innerText.includes(seen.what)),
    text: () => document.body.innerText.includes(seen.what),
  }[seen.kind];
  new MutationObserver(() => {
    if (window.__seenAt === null && window.__clickAt !== null && shown()) window.__seenAt = performance.now();
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def click_until(page, button: str, kind: str, what, limit: float) -> float | None:
    """Clicks `button` and returns the seconds until `what` of `kind` is on screen (None: not within `limit`), as the
    browser timed them (`WATCH`)."""
    page.evaluate(WATCH, {"kind": kind, "what": what})
    page.get_by_role("button", name=button).click()
    deadline = time.time() + limit
    while time.time() < deadline:
        click_at, seen_at = page.evaluate("() => [window.__clickAt, window.__seenAt]")
        if seen_at is not None and click_at is not None:
            return (seen_at - click_at) / 1000
        time.sleep(0.05)
    return None


def make_the_plan(page, tries: int = 3, each_s: float = 80.0) -> None:
    """Clicks Make the plan until Start training is on screen. A click that lands while the page reruns (a live
    fragment's rerun, the page's once a run ends) can be lost; a second click while the plan is being made returns the
    job under way, so clicking again changes nothing else."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    start = page.get_by_role("button", name="Start training")
    for _ in range(tries - 1):
        page.get_by_role("button", name="Make the plan").click()
        try:
            start.wait_for(timeout=each_s * 1000)
            return
        except PlaywrightTimeout:
            continue
    page.get_by_role("button", name="Make the plan").click()
    start.wait_for(timeout=each_s * 1000)


def click_to_first_step(page, button: str, limit: float = 10.0) -> float | None:
    """Seconds from clicking `button` to a named setup step's progress bar on screen."""
    return click_until(page, button, "step", list(STEP_NAMES), limit)


def _state(page) -> str:
    head = page.get_by_role("heading", name="Run ").first
    return head.inner_text() if head.count() else ""


def test_quick_demo_steps_live_stop_resume_reload_and_pages(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        page.get_by_role("button", name="Quick demo").wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "0_home.png"), full_page=True)
        page.wait_for_load_state("networkidle")
        time.sleep(1)  # a person reads the page before clicking

        first = click_to_first_step(page, "Quick demo")
        page.screenshot(path=str(ARTIFACTS / "1_demo_first_step.png"), full_page=True)
        assert first is not None and first <= 2.0, f"no named step on screen {first} s after the click"
        values, deadline = set(), time.time() + 60
        while len(values) < 3 and time.time() < deadline:  # the setup step's bar moves
            values |= {b[1] for b in page.evaluate(PROGRESS) if "probe" in b[0]}
            time.sleep(0.3)
        assert len(values) >= 3, f"the probe's progress bar did not move: {values}"

        page.get_by_text("Accuracy per epoch").first.wait_for(timeout=240_000)
        run_id = page.evaluate("() => new URLSearchParams(location.search).get('run_id')")
        assert run_id and "quick-demo" in run_id
        second = browser.new_page(viewport={"width": 1400, "height": 1000})  # another tab: its own session
        second.goto(f"{server}/Train?run_id={run_id}")
        second.get_by_text("Accuracy per epoch").first.wait_for(timeout=120_000)

        seen, deadline = [], time.time() + 600
        while time.time() < deadline and not page.get_by_text("training: epoch 2").count():
            seen.append(page.evaluate(ACC_POINTS))
            time.sleep(0.3)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("· cancelled").first.wait_for(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "2_stopped.png"), full_page=True)
        page.get_by_role("button", name="Resume").click()
        deadline = time.time() + 900
        while time.time() < deadline and not page.get_by_text("· finished").count():
            n = page.evaluate(ACC_POINTS)
            if not seen or n != seen[-1]:
                seen.append(n)
            time.sleep(0.3)
        page.screenshot(path=str(ARTIFACTS / "3_train_finished.png"), full_page=True)
        changes = [n for n in dict.fromkeys(seen) if n > 0]
        assert len(changes) >= 2 and changes == sorted(changes), f"accuracy chart over time: {seen}"
        assert page.get_by_text("· finished").count(), "the demo run did not finish after Resume"
        assert page.get_by_text("photos it has never seen").count()  # the plain-words summary
        second.get_by_text("· finished").first.wait_for(timeout=60_000)  # the other tab followed the same run live
        second.screenshot(path=str(ARTIFACTS / "3b_train_second_tab.png"), full_page=True)
        second.close()

        page.reload()
        page.get_by_text(f"Run {run_id}").first.wait_for(timeout=60_000)  # a reload keeps the run
        assert "plant-leaves-15" in page.evaluate("() => decodeURIComponent(location.search)")  # and the dataset

        # a second run started while the finished one is shown: the page switches to it
        page.get_by_text("New run: the plan").click()
        choose_option(page, "Strategy", "feature-extraction")
        try:
            make_the_plan(page)
        finally:
            page.screenshot(path=str(ARTIFACTS / "3c_plan_made.png"), full_page=True)
        switch = click_until(page, "Start training", "heading", "feature-extraction", 30.0)
        page.screenshot(path=str(ARTIFACTS / "3c_second_run.png"), full_page=True)
        assert switch is not None and switch <= 2.0, f"the new run was not on screen {switch} s after Start"
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("· cancelled").first.wait_for(timeout=120_000)

        for shot, path in (
            ("4_data", "Data"),
            ("5_backbone", "Backbone"),
            ("6_probe", "Probe"),
            ("7_predict", "Predict_Export"),
            ("8_compare", "Compare"),
        ):
            page.goto(f"{server}/{path}")
            page.wait_for_load_state("networkidle")
            page.get_by_role("heading").first.wait_for(timeout=60_000)
            time.sleep(2)
            page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert page.get_by_text("quick-demo").count()

        # the lesson: the button's promise is the cost model's, and a named step with the time left of all four
        # runs is on screen at once after the click
        page.goto(server)
        page.get_by_text("it should take about").first.wait_for(timeout=120_000)
        lesson = click_until(page, "Show me why transfer learning works", "text", "s left for the four runs", 30.0)
        page.screenshot(path=str(ARTIFACTS / "9_lesson_first_second.png"), full_page=True)
        assert lesson is not None and lesson <= 2.0, f"no step and time left on screen {lesson} s after the click"
        assert page.get_by_text("Now: ").count()
        browser.close()
