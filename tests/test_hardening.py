"""Hardening: every adversarial case builds its own input in a temp folder and checks: no traceback, the right exit code
or status, the named reason, nothing read or written outside the root, no event duplicated after kill and resume."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.paths import REPO
from engine_cli import ENGINE, engine_cli


def cli(*args, home: Path, timeout: int = 300, **popen) -> subprocess.CompletedProcess:
    return engine_cli(*args, home=home, timeout=timeout, text=False, **popen)


def no_traceback(out: subprocess.CompletedProcess) -> str:
    err = out.stderr.decode("utf-8", "replace") if isinstance(out.stderr, bytes) else out.stderr
    assert "Traceback" not in err, err[-2000:]
    return err


def photo(path: Path, colour=(10, 200, 30), size=(48, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def two_classes(root: Path, n: int = 4) -> Path:
    for c, colour in (("a", (200, 20, 20)), ("b", (20, 20, 200))):
        for i in range(n):
            photo(root / c / f"{i}.png", tuple(min(255, v + 9 * i) for v in colour))
    return root


# ------------------------------------------------------------------ 1. nothing read outside the root
def test_csv_rows_outside_the_folder_are_skipped_with_the_reason(tmp_path, monkeypatch):
    import engine.data.dataset as data
    from engine.data.dataset import load_dataset

    root = two_classes(tmp_path / "d")
    secret = photo(tmp_path / "secret.jpg")
    rows = ["path,label"] + [f"{c}/{i}.png,{c}" for c in "ab" for i in range(4)]
    rows += ["../secret.jpg,a", f"{secret},b", "../../../../../../etc/passwd,a"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    read = []
    real = data.check_image
    monkeypatch.setattr(data, "check_image", lambda p, *a: read.append(Path(p).resolve()) or real(p, *a))
    ds = load_dataset(root / "labels.csv")
    assert len(ds.items) == 8 and not any(Path(p).is_relative_to(tmp_path / "secret.jpg") for p in read)
    assert all(p.is_relative_to(root.resolve()) for p in read)
    outside = [s.reason for s in ds.skipped if "outside" in s.reason]
    assert len(outside) == 3 and all("--allow-outside-root" in r for r in outside)
    allowed = load_dataset(root / "labels.csv", allow_outside=True)
    assert any(it.path.endswith("secret.jpg") for it in allowed.items)


def test_symlinks_out_of_the_folder_are_skipped(tmp_path):
    from engine.data.dataset import load_dataset

    root = two_classes(tmp_path / "d")
    elsewhere = two_classes(tmp_path / "elsewhere")
    os.symlink(elsewhere / "a", root / "linked_class")
    os.symlink("/etc/passwd", root / "a" / "passwd.jpg")
    os.symlink(elsewhere / "b" / "0.png", root / "b" / "outside.png")
    ds = load_dataset(root)
    used = {Path(it.path).name for it in ds.items}
    assert "linked_class" not in ds.classes and "passwd.jpg" not in used and "outside.png" not in used
    assert sum("outside" in s.reason for s in ds.skipped) == 3


def test_the_server_reads_nothing_outside_its_data_root(tmp_path, monkeypatch):
    from pagetest import page

    root = tmp_path / "root"
    two_classes(root / "d")
    secret = photo(tmp_path / "secret.jpg")
    (root / "d" / "labels.csv").write_text(
        "path,label\n" + "".join(f"{c}/{i}.png,{c}\n" for c in "ab" for i in range(4)) + f"{secret},a\n"
    )
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(root))
    at = page("data.py")
    at.session_state["dataset"] = str(root / "d" / "labels.csv")
    at.run()
    assert not at.exception
    shown = [img.url for el in at.get("imgs") for img in getattr(el, "proto", el).imgs] if at.get("imgs") else []
    assert all("secret" not in u for u in shown)
    assert any("outside" in str(r) for r in at.dataframe[0].value["reason"].tolist())


def test_a_npy_header_bomb_is_refused_before_reading(tmp_path):
    from engine.data.imageio import load_image
    from engine.errors import UnreadableImage

    path = tmp_path / "bomb.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (40000, 40000, 3)})
        f.write(b"\0" * 4096)
    t0 = time.perf_counter()
    with pytest.raises(UnreadableImage, match="refused, the header claims shape"):
        load_image(path, 3)
    assert time.perf_counter() - t0 < 1.0


# ------------------------------------------------------------------ 2. one writer per run
def _slow_train(data: Path, home: Path, head_epochs: int = 1) -> subprocess.Popen:
    env = {**os.environ, "TRANSFERLAB_HOME": str(home)}
    return subprocess.Popen(
        [
            *ENGINE,
            "train",
            "--data",
            str(data),
            "--strategy",
            "full",
            "--head-epochs",
            str(head_epochs),
            "--epochs",
            "8",
            "--batch-size",
            "4",
            "--views",
            "1",
            "--quiet",
            "--json",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_for(home: Path, pred, seconds: float = 240):
    from engine.runs.store import RunStore

    deadline = time.time() + seconds
    while time.time() < deadline:
        runs = RunStore(home / "runs").list() if (home / "runs").exists() else []
        if runs and pred(runs[0]):
            return runs[0]
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def test_a_second_writer_is_refused_and_a_dead_owners_lock_is_taken_over(tiny_folder, tmp_path, monkeypatch, capsys):
    from engine.cli import main

    proc = _slow_train(tiny_folder, tmp_path)
    try:
        run = _wait_for(tmp_path, lambda r: (r.path / "last.pt").exists())  # a checkpoint: the resume continues
        os.killpg(proc.pid, signal.SIGSTOP)  # paused, alive and holding the lock: it cannot finish before it is asked
        # the second writer asks in this process (a CLI would need seconds to start on a loaded machine)
        monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
        code = main(["resume", "--run", run.id, "--json"])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert code == 3 and f"run {run.id} is being trained by process {proc.pid}" in err
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out = cli("resume", "--run", run.id, "--json", "--quiet", home=tmp_path)
        no_traceback(out)
        assert out.returncode == 0 and json.loads(out.stdout)["status"] == "finished"
        starts = run.events("run_started")
        assert len(starts) == 2 and run.events()[-1].kind == "run_ended"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "moment",
    [pytest.param("setup", marks=pytest.mark.slow), "before the first checkpoint"],  # setup: `make test-slow`
)
def test_kill_then_resume_duplicates_no_event(tiny_folder, tmp_path, moment):
    # no head epoch: the first steps are a full fine-tuning epoch (seconds), not cached features (milliseconds), so
    # "a step and no checkpoint yet" lasts long enough to be seen by a test polling a loaded machine
    proc = _slow_train(tiny_folder, tmp_path, head_epochs=0)
    when = (
        (lambda r: r.events("setup"))
        if moment == "setup"
        else (lambda r: r.events("step") and not (r.path / "last.pt").exists())
    )
    run = _wait_for(tmp_path, when)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = cli("resume", "--run", run.id, "--json", "--quiet", home=tmp_path)
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    events = run.events()
    steps = [e.step for e in events if e.kind == "step"]
    epochs = [e.epoch for e in events if e.kind == "epoch"]
    assert steps == list(range(1, len(steps) + 1)) and epochs == list(range(0, max(epochs) + 1))
    assert [e.kind for e in events].count("run_started") == 1  # the killed attempt left no orphan
    assert sum(e.kind == "phase_started" for e in events) == 1  # its one phase (no head epoch), announced once


# ------------------------------------------------------------------ 3. disk full
def test_a_full_disk_fails_the_run_in_words_and_keeps_the_last_checkpoint(tiny_folder, tmp_path, monkeypatch):
    import engine.runs.store as store
    from engine.plan.config import TrainConfig
    from engine.runs.store import RunStore
    from engine.service.training import train

    cfg = TrainConfig.create(
        data=str(tiny_folder),
        strategy="full",
        head_epochs=1,
        finetune_epochs=3,
        batch_size=4,
        views=1,
        val_fraction=0.34,
    )
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    real, lasts = store.torch.save, []

    def full_disk(obj, f, *a, **k):  # the 2nd write of the last checkpoint runs out of space half way
        if Path(f.name).name.startswith(".last.pt."):
            lasts.append(1)
            if len(lasts) == 2:
                f.write(b"half a checkpoint")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, f, *a, **k)

    monkeypatch.setattr(store.torch, "save", full_disk)
    metrics = train(cfg, run)
    monkeypatch.undo()
    assert metrics.status == "failed" and "disk full while writing" in metrics.error
    assert "the last good checkpoint is epoch 1" in metrics.error and "resume" in metrics.error
    assert run.status()["state"] == "failed" and "disk full" in run.status()["error"]
    assert run.load_checkpoint("last")["epoch"] == 1  # the last good checkpoint stays
    assert not list(run.path.glob(".*.tmp"))  # and no temporary file
    assert run.read_json("metrics.json")["status"] == "failed"


def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import torch

    from engine.runs.store import RunStore

    run = RunStore(tmp_path).create({})
    run.save_checkpoint("last", {"epoch": 1})

    def boom(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        run.save_checkpoint("last", {"epoch": 2})
    monkeypatch.undo()
    assert run.load_checkpoint("last")["epoch"] == 1 and not list(run.path.glob(".*tmp"))


def test_too_little_disk_is_refused_before_the_run_with_how_much_is_needed(tmp_path, monkeypatch):
    from engine.errors import NotEnoughSpace
    from engine.model import resources

    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 10**6))
    with pytest.raises(NotEnoughSpace, match=r"needs about [\d,]+ MB in .* only 1 MB are free"):
        resources.need_disk(tmp_path, 10**7, "the feature cache")


# ------------------------------------------------------------------ 4. inputs named, never a traceback
def test_non_utf8_file_names(tmp_path):
    root = two_classes(tmp_path / "d")
    bad = os.fsencode(str(root / "a")) + b"/caf\xe9.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(bad.decode("utf-8", "surrogateescape"))
    out = cli("inspect-data", root, home=tmp_path)
    no_traceback(out)
    assert out.returncode == 0
    from engine.data.dataset import load_dataset

    assert load_dataset(root).fingerprint()  # hashing the odd name works too


def test_csv_encodings_and_split_values(tmp_path):
    root = two_classes(tmp_path / "d")
    body = "".join(f"{c}/{i}.png,{c}\n" for c in "ab" for i in range(4))
    (root / "bom.csv").write_bytes(b"\xef\xbb\xbf" + ("path,label\n" + body).encode())
    out = cli("inspect-data", root / "bom.csv", home=tmp_path)
    assert out.returncode == 0, no_traceback(out)
    (root / "latin.csv").write_bytes(("path,label\n" + body + "a/0.png,caf\xe9\n").encode("latin-1"))
    out = cli("inspect-data", root / "latin.csv", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "latin.csv: not UTF-8 text" in err and "CSV UTF-8" in err
    (root / "splits.csv").write_text(
        "path,label,split\n" + body.replace(",a\n", ",a,trian\n").replace(",b\n", ",b,holdout\n")
    )
    out = cli("inspect-data", root / "splits.csv", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "'holdout', 'trian'" in err and "train, val or test" in err


def test_zips_that_clash_or_carry_junk(tmp_path):
    from engine.data.archive import extract_zip
    from engine.errors import UnsafeArchive

    clash = tmp_path / "clash.zip"
    with zipfile.ZipFile(clash, "w") as z:
        z.writestr("x", b"a file")
        z.writestr("x/y.jpg", b"an entry below it")
    with pytest.raises(UnsafeArchive, match="both a file and a folder"):
        extract_zip(clash, tmp_path / "out")
    assert not list(tmp_path.glob("out*"))
    junk = tmp_path / "junk.zip"
    src = two_classes(tmp_path / "src")
    with zipfile.ZipFile(junk, "w") as z:
        for f in src.rglob("*.png"):
            z.write(f, f"data/{f.relative_to(src)}")
        z.writestr("data/a/big.bin", b"\0" * 2_000_000)
        z.writestr("data/notes.txt", b"hello")
    root = extract_zip(junk, tmp_path / "junk-out")
    files = [p for p in (tmp_path / "junk-out").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert root.name == "data" and all(p.suffix == ".png" for p in files) and len(files) == 8


def test_corrupt_weights_one_class_weights_none_batch_one_and_unknown_backbones(tmp_path, tiny_folder):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    out = cli("probe", "--data", tiny_folder, "--weights", bad, "--quiet", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "not a readable .safetensors file" in err

    one = tmp_path / "one"
    shutil.copytree(sorted(tiny_folder.iterdir())[0], one / "only")
    for cmd in ("probe", "train"):
        out = cli(cmd, "--data", one, "--quiet", home=tmp_path)
        err = no_traceback(out)
        assert out.returncode == 2 and "at least 2 classes" in err, (cmd, err)

    out = cli("probe", "--data", tiny_folder, "--weights", "none", "--quiet", "--json", home=tmp_path)
    no_traceback(out)
    assert out.returncode == 0 and json.loads(out.stdout)["weights"]["source"] == "scratch"
    out = cli(
        "train",
        "--data",
        tiny_folder,
        "--weights",
        "none",
        "--strategy",
        "auto",
        "--budget",
        "30",
        "--quiet",
        "--json",
        home=tmp_path,
    )
    no_traceback(out)
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "finished"

    out = cli("train", "--data", tiny_folder, "--batch-size", "1", "--quiet", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "--batch-size: 1 is out of range" in err and "from 2" in err

    t0 = time.perf_counter()
    out = cli("train", "--data", tmp_path / "does-not-matter", "--backbone", "resnet9000", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "unknown backbone 'resnet9000'" in err and time.perf_counter() - t0 < 60


# ------------------------------------------------------------------ 5. cancel and stop
def test_cancel_during_the_probe_stops_within_a_batch(tiny_folder):
    from engine.data.dataset import load_dataset
    from engine.probe.linear import probe
    from engine.progress import Reporter
    from engine.runs.events import Cancelled

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 2:
            raise Cancelled()

    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        probe(load_dataset(tiny_folder), "tf_efficientnet_lite0", progress=Reporter(cancel=check).step("probe"))
    assert len(calls) == 2 and time.perf_counter() - t0 < 30


def test_stop_from_the_dashboard_reaches_a_run_started_from_the_cli(tiny_folder, tmp_path):
    from engine.runs.store import RunStore
    from engine.service.runner import Runner

    proc = _slow_train(tiny_folder, tmp_path)
    try:
        run = _wait_for(tmp_path, lambda r: r.events("step"))
        said = Runner(RunStore(tmp_path / "runs")).cancel(run.id)
        assert f"asked process {proc.pid} to stop" in said
        proc.wait(timeout=120)
        assert run.status()["state"] == "cancelled" and run.events()[-1].kind == "run_ended"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_memory_budget_that_is_not_a_size_is_named_not_a_traceback(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "lots")
    out = cli("probe", "--data", tiny_folder, "--quiet", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "TRANSFERLAB_MEMORY='LOTS' is not a size" in err


# ------------------------------------------------------------------ second round (issue 23)
def _tiny_cfg(data, **kw):
    from engine.plan.config import TrainConfig

    base = dict(strategy="full", head_epochs=1, finetune_epochs=3, batch_size=4, views=1, val_fraction=0.34)
    return TrainConfig.create(data=str(data), **{**base, **kw})


@pytest.fixture
def small_disk(tmp_path):
    """A 200 MB tmpfs (a real file system that can fill up or turn read-only); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_a_disk_that_fills_up_or_turns_read_only_mid_run_ends_in_one_line(tiny_folder, small_disk, how, monkeypatch):
    """After the first epoch's checkpoint the run folder's disk fills up (a file takes the rest) or is remounted read
    only: the run says so in one line, keeps its last checkpoint, and its status is not "running"."""
    from engine.runs.store import RunStore
    from engine.service.training import train

    cfg = _tiny_cfg(tiny_folder)
    run = RunStore(small_disk / "runs").create(cfg.to_dict())
    save, saved = run.save_checkpoint, []

    def then_squeeze(name, state):  # the first epoch's checkpoint is written, then the disk fills or turns read only
        path = save(name, state)
        if name == "last" and not saved:
            saved.append(path)
            if how == "full":
                with open(small_disk / "filler", "wb") as f:
                    try:
                        while True:
                            f.write(b"\0" * (16 << 20))
                    except OSError:
                        pass
            else:
                for args in (["--bind", str(run.path), str(run.path)], ["-o", "remount,bind,ro", str(run.path)]):
                    subprocess.run(["mount", *args], check=True)
        return path

    run.save_checkpoint = then_squeeze
    try:
        metrics = train(cfg, run)
    finally:
        if how == "read-only":
            subprocess.run(["umount", str(run.path)], capture_output=True)
    assert metrics.status == "failed" and "\n" not in metrics.error
    if how == "full":
        assert "disk full while writing" in metrics.error and "the last good checkpoint is epoch 1" in metrics.error
        assert run.status()["state"] == "failed" and "disk full" in run.status()["error"]
        assert run.read_json("metrics.json")["status"] == "failed"
    else:
        assert "cannot be written" in metrics.error and "resume" in metrics.error, metrics.error
    assert run.load_checkpoint("last")["epoch"] >= 1


def test_a_npy_whose_header_claims_a_huge_array_is_refused_from_its_header(tmp_path):
    from engine.data.dataset import load_dataset

    data = two_classes(tmp_path / "d")
    bomb = data / "a" / "bomb.npy"
    with open(bomb, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (40000, 40000, 3)})
        f.truncate(900_000_000)  # sparse: reading it whole would take seconds and gigabytes
    huge = data / "b" / "huge.npy"
    shutil.copy(bomb, huge)
    os.truncate(huge, 1_600_000_000)
    t0 = time.perf_counter()
    ds = load_dataset(data, val_fraction=0.25, test_fraction=0)
    assert time.perf_counter() - t0 < 2.0
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "header claims shape" in reasons["bomb.npy"] and "GiB, more than an image" in reasons["huge.npy"]


@pytest.mark.parametrize("name", ["a\0b", "~nosuchuser9/x", "x" * 5000, "loop"])
def test_the_data_page_answers_an_unusable_folder_name_in_one_line_and_keeps_the_dataset(tmp_path, monkeypatch, name):
    from pagetest import page

    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    if name == "loop":
        os.symlink(tmp_path / "loop", tmp_path / "loop")
        name = str(tmp_path / "loop" / "inside")
    at = page("data.py")
    at.run()
    before = at.session_state["dataset"]
    at.radio(key="source").set_value("Folder on this server").run()
    at.text_input(key="folder").set_value(name).run()
    at.button(key="open_folder").click().run()
    assert not at.exception and at.error, [e.value for e in at.error]
    assert "\n" not in at.error[0].value and at.session_state["dataset"] == before
    assert name not in str(at.query_params.get("dataset", ""))  # nor in the URL, so a reload does not fail again


def test_a_zip_of_a_million_entries_is_refused_from_its_last_record(tmp_path):
    from engine.data.archive import entry_count, extract_zip
    from engine.errors import UnsafeArchive

    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(2_000):
            z.writestr(f"notes/{i}.txt", "")
    assert entry_count(path) == 2_000
    t0 = time.perf_counter()
    with pytest.raises(UnsafeArchive, match="2,000 entries, more than the limit of 1,000"):
        extract_zip(path, tmp_path / "out", max_files=1_000)  # non-images count: every entry does
    assert time.perf_counter() - t0 < 0.5 and not (tmp_path / "out").exists()


def test_a_csv_of_a_million_rows_naming_two_files_collapses_them_before_decoding(tmp_path):
    from engine.data.dataset import load_dataset

    data = two_classes(tmp_path / "d", n=1)
    csv_path = data / "list.csv"
    with open(csv_path, "w") as f:
        f.write("path,label\n")
        for i in range(500_000):
            f.write("a/0.png,a\nb/0.png,b\n")
    t0 = time.perf_counter()
    ds = load_dataset(csv_path, val_fraction=0, test_fraction=0)
    assert time.perf_counter() - t0 < 30 and len(ds.items) == 2
    assert any("999,998 row(s) repeat an earlier row" in s.reason for s in ds.skipped)


def test_a_file_listed_under_two_splits_is_a_leak_kept_out_of_the_later_one(tmp_path):
    from engine.data.dataset import load_dataset

    data = two_classes(tmp_path / "d", n=6)
    rows = [f"{c}/{i}.png,{c},{split}" for c in "ab" for i in range(6) for split in ("train", "test")]
    (data / "list.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    ds = load_dataset(data / "list.csv", val_fraction=0.34, test_fraction=0)
    assert not ds.test and len(ds.train) + len(ds.val) == 12  # every file stays in train (and the val carved from it)
    assert any("12 row(s) list a file already listed under another split" in s.reason for s in ds.skipped)


def test_one_path_longer_than_the_system_allows_is_skipped_and_the_rest_loads(tmp_path):
    from engine.data.dataset import load_dataset

    data = two_classes(tmp_path / "d", n=4)
    here = os.getcwd()
    try:
        os.chdir(data / "a")
        for _ in range(20):  # 20 folders of 250 characters: deeper than PATH_MAX (4,096) from the dataset's root
            os.mkdir("x" * 250)
            os.chdir("x" * 250)
        photo(Path("deep.png"))
    finally:
        os.chdir(here)
    ds = load_dataset(data, val_fraction=0.25, test_fraction=0)
    assert len(ds.items) == 8 and any("deep.png" in s.path or "x" * 250 in s.path for s in ds.skipped)


@pytest.mark.parametrize("swap", ["junk", "truncated", "another run's model"])
def test_a_runs_model_file_replaced_after_training_is_named_in_one_line(finished_store, tmp_path, swap, capsys):
    from engine.runs.store import RunStore

    home = tmp_path / "home"
    shutil.copytree(finished_store.root, home / "runs")
    run = RunStore(home / "runs").list()[0]
    final = run.path / "model.safetensors"
    if swap == "junk":
        final.write_bytes(b"not a model at all")
    elif swap == "truncated":
        final.write_bytes(final.read_bytes()[:1000])
    else:
        from safetensors.torch import save_file

        from engine.model.catalogue import build_model

        save_file(build_model("resnet18").state_dict(), str(final))
    from engine.cli import main

    for args in (["evaluate", "--run", run.id, "--split", "val"], ["export", "--run", run.id]):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TRANSFERLAB_HOME", str(home))
            code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and "model.safetensors is not the model run" in err and err.count("\n") == 1, err


def test_a_memory_budget_below_zero_is_refused_at_start(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "-5")
    out = cli("probe", "--data", tiny_folder, "--quiet", home=tmp_path)
    err = no_traceback(out)
    assert out.returncode == 2 and "TRANSFERLAB_MEMORY='-5': it must be a positive size such as 4G" in err


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--budget", "0"),
        ("--budget", "-1"),
        ("--budget", "nan"),
        ("--head-epochs", "-1"),
        ("--views", "0"),
        ("--seed", str(2**64)),
        ("--batch-size", "1"),
        ("--lr", "inf"),
    ],
)
def test_absurd_numbers_are_refused_by_the_parser_before_any_run(
    tiny_folder, tmp_path, flag, value, capsys, monkeypatch
):
    from engine.cli import main

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tiny_folder), flag, value, "--quiet"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and f"argument {flag}" in err
    assert "out of range" in err or "not a number" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # no run was created


def test_csv_rows_that_climb_out_of_its_folder_say_how_many_and_what_to_do(tmp_path):
    from engine.data.dataset import load_dataset
    from engine.errors import DataError

    two_classes(tmp_path / "images", n=3)
    (tmp_path / "lists").mkdir()
    rows = [f"../images/{c}/{i}.png,{c}" for c in "ab" for i in range(3)]
    (tmp_path / "lists" / "data.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"6 file\(s\) point outside .*--allow-outside-root"):
        load_dataset(tmp_path / "lists" / "data.csv")


def test_class_names_with_markdown_are_shown_as_written(tmp_path, monkeypatch):
    from engine.data.dataset import load_dataset
    from engine.data.report import build_report
    from engine.text import literal

    names = ["**bold**", ":red[x]", "$x$", "[link](http://e.x)"]
    for i, name in enumerate(names):
        for j in range(1 + 4 * (i == 0)):
            photo(tmp_path / "d" / name / f"{j}.png", (40 * i, 10 * j, 90))
    report = build_report(load_dataset(tmp_path / "d", val_fraction=0, test_fraction=0))
    assert f"{literal('**bold**')} has 5 training images" in " ".join(report.warnings)
    assert literal("**bold**") == "`**bold**`" and literal("a`b") == "``a`b``"


@pytest.mark.parametrize("strategy", ["top-k", "scratch"])
def test_a_run_resumed_in_phase_2_trains_exactly_what_the_plan_trains_there(tiny_folder, tmp_path, strategy):
    """Lightning users report a resume after a progressive unfreeze with the wrong layers frozen: here the first step
    after a resume in phase 2 has the plan's phase-2 trainable parameters, optimiser rates and BatchNorm modes, the
    same as the run had before it was stopped (top-k: the top groups train, BatchNorm statistics kept; from scratch:
    everything trains, BatchNorm included)."""
    from engine.runs.events import CancelToken, StepEnded
    from engine.runs.store import RunStore
    from engine.service.training import train
    from engine.train.loop import Trainer
    from engine.train.optim import BN_TYPES

    extra = {"weights": "none", "head_epochs": 0} if strategy == "scratch" else {"top_k": 2, "head_epochs": 1}
    cfg = _tiny_cfg(tiny_folder, strategy=strategy, finetune_epochs=3, **extra)
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    seen: dict[str, list] = {"first": [], "resumed": []}
    real = Trainer.one_batch

    def spy(self, path, idx, x, soft):
        ctx = self.ctx
        if self.state.phase.number == 2:
            seen["resumed" if "stopped" in seen else "first"].append(
                {
                    "grad": {n: p.requires_grad for n, p in ctx.model.named_parameters()},
                    "rates": sorted((pg["layer"], pg["lr_scale"]) for pg in ctx.opt.param_groups),
                    "bn": {n: m.training for n, m in ctx.model.named_modules() if isinstance(m, BN_TYPES)},
                }
            )
        return real(self, path, idx, x, soft)

    token, append = CancelToken(), run.append
    stop_at = 1 + extra["head_epochs"] + 1  # the second epoch of phase 2

    def stop_in_phase_2(ev):
        append(ev)
        if isinstance(ev, StepEnded) and ev.epoch == stop_at:
            token.cancel()

    run.append = stop_in_phase_2
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "one_batch", spy)
        assert train(cfg, run, token).status == "cancelled"
        seen["stopped"] = []
        run.append = append
        assert train(cfg, run).status == "finished"
    plan = run.read_json("plan.json")
    before, after = seen["first"][0], seen["resumed"][0]
    assert after == before  # the same parameters train, at the same rates, with the same BatchNorm modes
    assert set(after["rates"]) <= set(enumerate(plan["phases"]["lrs"]))  # the plan's phase-2 rate for every group
    if strategy == "top-k":
        assert not all(after["grad"].values()) and not any(after["bn"].values())  # frozen groups; statistics kept
    else:
        assert all(after["grad"].values()) and all(after["bn"].values())
