"""Background runs: queueing, cancel, and a run killed with SIGKILL in phase 2 that resumes without losing events."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import torch

from engine.paths import REPO
from engine_cli import engine_cli, torchrun_cli
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.service.runner import Runner


def fake_fit(cfg, run, token) -> dict:
    """Stands in for `train`: one 'step' every 20 ms until cancelled or done."""
    run.set_status(state="running", pid=os.getpid())
    for step in range(200):
        if token.cancelled:
            run.set_status(state="cancelled")
            return {}
        run.append({"kind": "step", "step": step})
        time.sleep(0.02)
    run.set_status(state="finished")
    return {}


def test_one_run_at_a_time_others_queued_and_cancel(tmp_path):
    runner = Runner(RunStore(tmp_path), fit=fake_fit)
    cfg = TrainConfig.create(data="x", strategy="full")
    a, b = runner.submit(cfg), runner.submit(cfg)
    deadline = time.time() + 5
    while (runner.active != a or not runner.store.open(a).events()) and time.time() < deadline:
        time.sleep(0.01)
    assert runner.active == a and runner.queued == [b]
    runner.cancel(b)
    assert runner.store.open(b).status()["state"] == "cancelled" and runner.queued == []
    runner.cancel(a)
    assert runner.wait(a, timeout=5)
    assert runner.store.open(a).status()["state"] == "cancelled"
    snap = runner.snapshot(a)
    assert snap["events"] and snap["config"]["optim"]["strategy"] == "full"


def _train_cmd(data, home):
    return [
        sys.executable,
        "-m",
        "engine",
        "train",
        "--data",
        str(data),
        "--strategy",
        "full",
        "--head-epochs",
        "1",
        "--epochs",
        "6",
        "--batch-size",
        "4",
        "--views",
        "1",
        "--quiet",
        "--json",
    ]


def test_sigkill_in_phase_2_then_resume_is_continuous(tiny_folder, tmp_path):
    env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        _train_cmd(tiny_folder, tmp_path),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    store = RunStore(tmp_path / "runs")
    deadline = time.time() + 240
    run = None
    while time.time() < deadline:
        runs = store.list()
        if runs:
            run = runs[0]
            epochs = run.events("epoch")
            if any(e.phase == 2 for e in epochs) and run.events("step")[-1].epoch >= 3:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run is not None and run.status()["state"] == "interrupted"
    killed_at = max(e.epoch for e in run.events("epoch"))
    assert 2 <= killed_at < 7

    out = engine_cli("resume", "--run", run.id, "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "finished"
    epochs = [e.epoch for e in run.events("epoch")]
    steps = [e.step for e in run.events("step")]
    assert epochs == list(range(0, 8))  # every epoch once, in order (0: the starting head)
    assert steps == list(range(1, len(steps) + 1))  # no step lost or duplicated
    starts = run.events("run_started")
    assert [s.resumed_from_epoch for s in starts] == [0, killed_at]
    assert run.events()[-1].kind == "run_ended" and run.status()["state"] == "finished"


def test_two_process_gloo_training(tiny_folder, tmp_path):
    """torchrun --nproc_per_node=2 on the CPU: one run, recorded once, each rank on half of every epoch."""
    out = torchrun_cli(
        "train",
        "--data",
        str(tiny_folder),
        "--strategy",
        "full",
        "--head-epochs",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--views",
        "1",
        "--quiet",
        "--json",
        home=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = RunStore(tmp_path / "runs").list()
    assert len(runs) == 1 and runs[0].status()["state"] == "finished"
    run = runs[0]
    assert run.events("run_started")[0].world_size == 2
    n_train = 18 - len(run.read_json("metrics.json")["val_labels"])
    per_rank_steps = math.ceil(math.ceil(n_train / 2) / 4)  # each rank takes half the images, in batches of 4
    epochs = [e for e in run.events("epoch") if e.epoch > 0]  # epoch 0: the starting head
    steps = run.events("step")
    assert len(epochs) == 2 and len(steps) == 2 * per_rank_steps  # rank 0 records its half, once


def test_ddp_weights_equal_one_process_on_the_same_global_batch(tiny_folder, tmp_path):
    """Two gloo processes with batch 4 each against one process with batch 8: DDP averages the gradients of the two
    halves of every global batch, so after the same steps the weights agree (fp32, BatchNorm statistics frozen)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFERLAB_PRECISION": "fp32", "PYTHONPATH": str(REPO)}
    worker = str(REPO / "tests" / "ddp_worker.py")
    one = subprocess.run(
        [sys.executable, worker, str(tiny_folder), str(tmp_path / "one.pt"), "8"],
        cwd=REPO,
        env={**env, "TRANSFERLAB_HOME": str(tmp_path / "h1")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            worker,
            str(tiny_folder),
            str(tmp_path / "two.pt"),
            "4",
        ],
        cwd=REPO,
        env={**env, "TRANSFERLAB_HOME": str(tmp_path / "h2")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "one.pt", weights_only=True), torch.load(tmp_path / "two.pt", weights_only=True)
    assert a["world"] == 1 and b["world"] == 2 and a["steps"] == b["steps"] > 0
    moved = max(float((a["last"][k].float() - a["best"][k].float()).abs().max()) for k in a["last"])
    diff = max(float((a["last"][k].float() - b["last"][k].float()).abs().max()) for k in a["last"])
    assert moved > 1e-3, "training did not change the weights: the comparison would prove nothing"
    assert diff < 1e-4 * max(1.0, moved) and diff < moved / 100, f"DDP differs from one process by {diff} ({moved=})"
