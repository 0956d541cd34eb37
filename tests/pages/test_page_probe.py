"""AppTest of the Probe page."""

import time

from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401

import ui.state


def test_probe_page_runs_in_the_background(tiny_folder):
    at = page("probe.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    assert not at.exception and at.info  # empty state
    at.button(key="run_probe").click().run()
    job = ui.state.get_jobs().get(ui.state.probe_key(str(tiny_folder), "tf_efficientnet_lite0"))
    deadline = time.time() + 120
    while job.state == "running" and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception and job.state == "done", job.error
    assert at.metric[0].value.endswith("%")
