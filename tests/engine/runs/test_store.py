import os
import threading
import time

import pytest

from engine.runs import store as store_module
from engine.runs.events import EpochEnded, StepEnded
from engine.runs.store import EventTail, Run, RunStore


def test_events_round_trip_and_torn_line_is_ignored(tmp_path):
    run = RunStore(tmp_path).create({"a": 1})
    run.append(StepEnded(step=1, loss=0.5, lrs=[0.0, 1e-3]))
    run.append(EpochEnded(epoch=1, val_acc=0.7))
    with open(run.events_path, "a") as f:
        f.write('{"kind": "step", "st')  # a crash mid-write
    evs = run.events()
    assert [e.kind for e in evs] == ["step", "epoch"] and evs[0].lrs == [0.0, 1e-3]
    assert run.events("epoch")[0].val_acc == 0.7


def test_truncate_restores_the_log_to_a_checkpoint(tmp_path):
    run = RunStore(tmp_path).create({})
    run.append(StepEnded(step=1))
    offset = run.events_offset()
    run.append(StepEnded(step=2))
    run.truncate_events(offset)
    assert [e.step for e in run.events()] == [1]


def test_status_and_interrupted_detection(tmp_path):
    store = RunStore(tmp_path)
    run = store.create({"x": 1})
    assert run.status()["state"] == "queued"
    run.set_status(state="running", pid=os.getpid())
    assert run.status()["state"] == "running"
    run.set_status(state="running", pid=2**22 + 12345)  # no such process
    assert run.status()["state"] == "interrupted"
    assert [r.id for r in store.list()] == [run.id] and store.open(run.id).config == {"x": 1}


def test_checkpoints_are_weights_only(tmp_path):
    import torch

    run = RunStore(tmp_path).create({})
    run.save_checkpoint("last", {"model": {"w": torch.ones(2)}, "epoch": 3})
    assert run.load_checkpoint("last")["epoch"] == 3 and run.load_checkpoint("best") is None


def test_event_tail_reads_only_new_lines_and_follows_a_rewind(tmp_path, monkeypatch):
    run = RunStore(tmp_path).create({})
    tail = EventTail(run)
    assert tail.read() == []
    for i in range(3):
        run.append(StepEnded(step=i))
    checkpoint = run.events_offset()
    run.append(StepEnded(step=3))
    with open(run.events_path, "a") as f:
        f.write('{"kind": "step", "st')  # a line being written
    assert [e.step for e in tail.read()] == [0, 1, 2, 3]
    parsed = []
    real_loads = store_module.json.loads
    monkeypatch.setattr(store_module.json, "loads", lambda s: parsed.append(s) or real_loads(s))
    with open(run.events_path, "a") as f:
        f.write('ep": 9}\n')  # the line completes
    assert [e.step for e in tail.read()] == [0, 1, 2, 3, 9] and len(parsed) == 1  # only the new line is parsed
    # a resume rewinds the log to its checkpoint and appends past the old end before the next read
    run.truncate_events(checkpoint)
    for i in range(10, 14):
        run.append(StepEnded(step=i))
    assert [e.step for e in tail.read()] == [0, 1, 2, 10, 11, 12, 13] == [e.step for e in run.events()]


class _Code:  # a pickled object: a weights-only load refuses it
    pass


@pytest.mark.parametrize("case", ["finished", "pickled checkpoint"])
def test_resume_refuses_a_finished_run_or_an_unloadable_checkpoint_and_changes_nothing(
    tmp_path, monkeypatch, capsys, case
):
    import torch

    from engine.cli import main

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    run = RunStore().create({"data": {}}, "kept")
    run.write_json("metrics.json", {"status": case, "best_val": 0.9})
    if case == "finished":
        run.set_status(state="finished")
    else:
        run.set_status(state="failed")
        torch.save({"model": _Code()}, run.path / "last.pt")
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    code = main(["resume", "--run", run.id])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "left as it is" in err and "weights_only=False" not in err, err
    assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()} == before


def test_update_json_from_two_writers_loses_no_update(tmp_path):
    run = RunStore(tmp_path).create({"data": "x"})
    others = [Run(run.path) for _ in range(2)]  # two handles: only the OS lock keeps them apart

    def add(handle: Run, who: int) -> None:
        for i in range(25):

            def change(kept: dict, key: str = f"{who}-{i}") -> dict:
                time.sleep(0.002)  # a slow read-modify-write: without the lock the other writer's update is lost
                return kept | {key: True}

            handle.update_json("estimates.json", change)

    threads = [threading.Thread(target=add, args=(h, n)) for n, h in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(run.read_json("estimates.json")) == 50
