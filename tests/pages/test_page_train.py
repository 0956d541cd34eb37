"""AppTest of the Train page: the plan made once and shown as it runs, edits, live runs, stop and resume."""

import time

import pytest
from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401

import ui.state
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore


def _wait(job, seconds=180):
    deadline = time.time() + seconds
    while job.state == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert job.state == "done", job.error


def _make_plan(at, strategy):
    at.selectbox(key="strategy").set_value(strategy).run()
    before = set(ui.state.get_jobs()._jobs)
    at.button(key="make_plan").click().run()
    job = next(j for k, j in ui.state.get_jobs()._jobs.items() if k.startswith("plan|") and k not in before)
    _wait(job)
    at.run()
    assert not at.exception
    return job.key


def test_train_page_empty_running_stopped_resumed_finished_interrupted(monkeypatch, tmp_path, finished_store):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("train.py").run()
    assert not at.exception and any("No run yet" in i.value for i in at.info)

    runner = use_runner(monkeypatch, RunStore(tmp_path / "live"), slow_fake_fit)
    rid = runner.submit(TrainConfig.create(data="x", strategy="full"))
    while not runner.store.open(rid).events("epoch"):
        time.sleep(0.05)
    at = page("train.py").run()
    assert not at.exception and "running" in at.subheader[0].value
    at.button(key="stop").click().run()
    assert runner.wait(rid, timeout=10) and runner.store.open(rid).status()["state"] == "cancelled"
    at.run()
    assert at.button(key="resume")  # a stopped run can go on
    at.button(key="resume").click().run()
    deadline = time.time() + 10
    while runner.store.open(rid).status()["state"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    assert runner.store.open(rid).status()["state"] == "running"
    runner.cancel(rid)
    runner.wait(rid, timeout=10)

    use_runner(monkeypatch, finished_store)
    at = page("train.py").run()
    assert not at.exception and "finished" in at.subheader[0].value
    assert any("photos it has never seen" in s.value or "too little data" in s.value for s in at.success)

    run = finished_store.open(finished_store.list()[0].id)
    run.set_status(state="running", pid=2**22 + 7)  # its process is gone
    at = page("train.py").run()
    assert not at.exception and at.button(key="resume")
    run.set_status(state="finished")


def test_the_head_rate_field_drives_the_head_phase_and_an_edit_makes_the_run_custom(monkeypatch, tmp_path, tiny_folder):
    runner = use_runner(monkeypatch, RunStore(tmp_path / "runs"), slow_fake_fit)
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    _make_plan(at, "top-k")
    assert any("all checks passed" in s.value for s in at.success)
    head_lr = next(n for n in at.number_input if n.label.startswith("Head learning rate"))
    head_lr.set_value(0.003).run()
    assert not at.exception and any("custom" in w.value for w in at.warning)
    at.button(key="start").click().run()
    rid = at.session_state["run_id"]
    assert at.selectbox(key="run_pick").value == rid  # the page follows the run just started
    assert any(rid in t.value for t in at.toast) and any(h.value.startswith(f"Run {rid}") for h in at.subheader)
    run = runner.store.open(rid)
    plan = run.read_json("plan.json")
    assert plan["phases"]["head_lr"] == 0.003 and plan["strategy"] == "custom" and rid.endswith("-custom")
    runner.cancel(rid)
    runner.wait(rid, timeout=10)


def test_editing_the_table_renames_the_strategy_and_gives_the_implied_rate(monkeypatch, tmp_path, tiny_folder):
    runner = use_runner(monkeypatch, RunStore(tmp_path / "runs"), slow_fake_fit)
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    plan_key = _make_plan(at, "top-k")
    at.checkbox(key=f"frozen|{plan_key}|5").uncheck().run()
    assert not at.exception and any("custom" in w.value for w in at.warning)
    at.button(key="start").click().run()
    plan = runner.store.open(at.session_state["run_id"]).read_json("plan.json")
    assert (
        plan["strategy"] == "custom"
        and not plan["phases"]["frozen"][5]
        and plan["phases"]["lrs"][5] == pytest.approx(1e-5)
    )
    runner.cancel(at.session_state["run_id"])


def test_a_reload_keeps_the_new_run_s_choices_and_the_plan_being_edited(monkeypatch, tmp_path, tiny_folder):
    use_runner(monkeypatch, RunStore(tmp_path / "runs"), slow_fake_fit)
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.selectbox(key="balance").set_value("sampler").run()
    plan_key = _make_plan(at, "top-k")
    at.number_input(key=f"fe|{plan_key}").set_value(7).run()
    assert any("custom" in w.value for w in at.warning)
    url = dict(at.query_params)
    assert url["strategy"] == "top-k" and url["balance"] == "sampler" and url["draft"]

    reloaded = page("train.py")  # a new session from the same URL
    for key, value in url.items():
        reloaded.query_params[key] = value
    reloaded.session_state["dataset"] = str(tiny_folder)
    reloaded.run()
    assert reloaded.selectbox(key="strategy").value == "top-k" and reloaded.selectbox(key="balance").value == "sampler"
    assert not reloaded.exception
    assert reloaded.number_input(key=f"fe|{plan_key}").value == 7  # the stored plan, with this tab's edit
    assert any("custom" in w.value for w in reloaded.warning)


def test_a_plan_for_other_data_is_never_previewed(monkeypatch, tmp_path, tiny_folder, bad_corpus):
    use_runner(monkeypatch, RunStore(tmp_path / "runs"))
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    _make_plan(at, "feature-extraction")
    assert at.button(key="start")
    at.session_state["dataset"] = str(tmp_path / "elsewhere")
    at.run()
    assert not at.exception and not any(b.key == "start" for b in at.button)


def test_lr_finder_from_the_train_page(monkeypatch, tmp_path, tiny_folder):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    _make_plan(at, "top-k")
    at.button(key="lr_find").click().run()
    job = next(j for k, j in ui.state.get_jobs()._jobs.items() if k.startswith("lrfind|"))
    _wait(job, 120)
    at.run()
    assert not at.exception and job.result.suggestion > 0
    at.button(key="apply_lr").click().run()
    assert not at.exception and any("custom" in w.value for w in at.warning)


def test_every_strategy_previews_its_plan(monkeypatch, tmp_path, tiny_folder):
    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    for strategy in ("feature-extraction", "top-k", "full", "lp-ft", "scratch"):
        _make_plan(at, strategy)
        assert not at.exception and not at.error, strategy
        assert at.button(key="start"), strategy


def test_the_adaptation_choice_starts_at_auto_which_lets_the_plan_try_each(monkeypatch, tmp_path):
    from engine import ADAPT_CHOICES

    use_runner(monkeypatch, RunStore(tmp_path / "empty"))
    at = page("train.py").run()
    adapt = at.selectbox(key="adapt")
    assert list(adapt.options) == list(ADAPT_CHOICES) and adapt.value == "auto" and ADAPT_CHOICES["auto"] is None
    assert adapt.disabled  # no target photos given on the Data page
    bn = at.selectbox(key="target_bn")
    assert list(bn.options) == ["auto", "on", "off"] and bn.value == "auto" and bn.disabled  # AdaBN: on evidence
    head = at.selectbox(key="target_head")
    assert list(head.options) == ["auto", "none", "coral", "t3a", "shot", "em"] and head.value == "auto"
    assert head.disabled  # no target photos given on the Data page


def test_a_run_of_the_same_photos_can_teach_the_next_one(monkeypatch, finished_store):
    teacher = finished_store.list()[0]
    use_runner(monkeypatch, finished_store)
    at = page("train.py")
    at.session_state["dataset"] = TrainConfig.from_dict(teacher.config).data.path
    at.run()
    pick = at.selectbox(key="distill_from")
    assert not pick.disabled and len(pick.options) == 2 and pick.options[1].startswith(f"{teacher.id} (tf_eff")
    pick.set_value(str(teacher.path)).run()
    _make_plan(at, "feature-extraction")
    assert not at.exception and not at.error
    said = " ".join(i.value for i in at.info)
    assert f"It learns from run {teacher.path}" in said and "as well as from the labels" in said


def test_a_parameter_budget_cuts_the_planned_model(monkeypatch, tmp_path, tiny_folder):
    """The budget field reaches the plan: the page shows the cut the engine will run."""
    use_runner(monkeypatch, RunStore(tmp_path / "runs"), slow_fake_fit)
    at = page("train.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.number_input(key="max_params").set_value(100_000).run()
    _make_plan(at, "top-k")
    assert not at.exception and not at.error
    said = " ".join(i.value for i in at.info)
    assert "The model must stay under 100,000 parameters" in said and "so it is cut after" in said
