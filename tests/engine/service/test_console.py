"""Following a run in the terminal: progress lines with the time left, and the result in words or JSON."""

from __future__ import annotations

import json

from engine.runs.result import RunResult
from engine.runs.store import RunStore
from engine.service.console import RESULT_KEYS, StepClock, progress_line, train_result


def test_a_progress_line_says_the_time_left_until_the_step_is_done(capsys):
    progress_line("extract features", 0.5, left=12.4, run_left=80)
    progress_line("extract features", 1.0, left=0.0, run_left=70)
    err = capsys.readouterr().err
    assert "50.0% · about 12 s left (run: about 80 s left)" in err
    assert err.endswith("100.0%      \n")  # the finished step keeps its line, without a time left


def test_the_step_clock_starts_its_pace_again_for_each_step(capsys):
    now = [0.0]
    clock = StepClock(lambda: now[0])
    clock("probe", 0.1)
    now[0] = 10.0
    clock("probe", 0.5)  # 0.4 of the step in 10 s: 12.5 s for the half left
    clock("plan", 0.1)
    err = capsys.readouterr().err
    assert "probe  50.0% · about 12 s left" in err and clock.name == "plan" and clock.meter.left() is None


def test_a_finished_run_is_said_in_words_and_as_json(finished_store, capsys):
    run = finished_store.list()[0]
    assert train_result(run, as_json=False) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"run {run.id} finished: test accuracy ") and "(chosen on) at epoch" in said
    assert train_result(run, as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == RESULT_KEYS and out["best_val_acc"] == RunResult.read(run).best_val_acc


def test_a_run_that_failed_before_any_epoch_says_so_and_exits_1(tmp_path, capsys):
    run = RunStore(tmp_path / "runs").create({"data": {"path": "x"}}, "early")
    returned = RunResult(status="failed", error="the disk is full", run_id=run.id, run_dir=str(run.path))
    assert train_result(run, as_json=False, returned=returned) == 1
    said = capsys.readouterr().out
    assert f"run {run.id} failed: test accuracy not scored: the run failed before its plan was made" in said
    assert "no epoch scored on val" in said and "val 0.0%" not in said
    assert "- the disk is full" in said
