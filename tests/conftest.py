"""Shared fixtures: an isolated TransferLab home, tiny datasets cut from the bundled sample, a bad-input corpus."""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "plant-leaves-15"
SHARED = ROOT.parent / "shared" / "datasets"

if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers share two cores: one thread each, set before torch loads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
_home = tempfile.mkdtemp(prefix="transferlab-test-")
os.environ["TRANSFERLAB_HOME"] = _home  # before any engine import reads it


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


def _classes(n: int) -> list[Path]:
    return sorted(p for p in (SAMPLE / "train").iterdir() if p.is_dir())[:n]


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """Three classes, six images each, one folder per class (no val split)."""
    root = tmp_path / "tiny"
    for cls in _classes(3):
        (root / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:6]:
            shutil.copy(f, root / cls.name / f.name)
    return root


def huge_header_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims `width` x `height` pixels (100000 x 100000) but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.fixture
def bad_corpus(tiny_folder: Path) -> Path:
    """The tiny dataset plus every kind of bad or unusual file, in class 0 unless said otherwise."""
    cls = sorted(p for p in tiny_folder.iterdir())[0]
    good = sorted(cls.iterdir())[0].read_bytes()
    (cls / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (cls / "zero.jpg").write_bytes(b"")
    (cls / "text.jpg").write_text("this is not an image\n")
    (cls / "notes.txt").write_text("labelling notes\n")
    (cls / "huge.png").write_bytes(huge_header_png())
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(cls / "rgba.png")
    Image.fromarray(np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 30).save(cls / "sixteen.png")
    Image.fromarray(np.full((30, 30), 90, np.uint8), "L").save(cls / "gray.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("P").save(cls / "palette.gif")
    single = tiny_folder / "zz_single"
    single.mkdir()
    shutil.copy(sorted(cls.iterdir())[1], single / "only.jpg")
    return tiny_folder


def jpeg_bytes(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def a_plan(**fields):
    """A `Plan` for tests that need one to read, not to run: three groups, the head trainable. `fields` override any
    field of any part by its name in that part (`head_epochs=0`, `n_test=161`, `estimate_s=60`), or a top-level one
    (`strategy`, `reason`). A name two parts share is the first one's, in the order data, head, phases, target, cost
    (`n_val` is the data's); `part__name` names the other (`target__n_val=3`)."""
    from engine.model.catalogue import input_spec
    from engine.plan.parts import DataPart, HeadPart, Phases, Plan

    plan = Plan(
        strategy="full",
        backbone="tf_efficientnet_lite0",
        in_chans=3,
        data=DataPart(path="/x/tiny", fingerprint=""),
        input=input_spec("tf_efficientnet_lite0"),
        head=HeadPart(init="probe", taps=(-1,), label="final features"),
        phases=Phases(
            groups=("stem", "b0", "head"),
            labels=("stem", "stage 1 of 1", "head"),
            head_lr=1e-3,
            head_epochs=1,
            frozen=(True, False, False),
            lrs=(0.0, 1e-4, 1e-3),
            finetune_epochs=2,
            warmup_epochs=1,
            augment="basic",
            bn_frozen_stats=True,
            batch_size=32,
            views=1,
        ),
    )
    return with_(plan, **fields)


def tiny_cfg(data, **kw):
    """A top-1 fine-tune of Lite0 on `data` small enough for a test: one head epoch, two fine-tuning epochs (one of
    warm-up), batches of 4, one basic view, a third held out for val. `kw` overrides any of it."""
    from engine.plan.config import TrainConfig

    base = dict(
        data=str(data),
        strategy="top-k",
        top_k=1,
        head_epochs=1,
        finetune_epochs=2,
        warmup_epochs=1,
        batch_size=4,
        views=1,
        augment="basic",
        val_fraction=0.34,
    )
    return TrainConfig.create(**{**base, **kw})


def with_(plan, **fields):
    """`plan` with fields of its parts replaced, named as `a_plan` names them."""
    from dataclasses import fields as of, replace

    from engine.plan.parts import Cost, DataPart, HeadPart, Phases, Plan, TargetPart

    parts = {"data": DataPart, "head": HeadPart, "phases": Phases, "target": TargetPart, "cost": Cost}
    for name, value in fields.items():
        part, _, field = name.rpartition("__")
        if not part and name in {f.name for f in of(Plan)}:
            plan = replace(plan, **{name: value})
            continue
        owners = [p for p, kind in parts.items() if (not part or p == part) and field in {f.name for f in of(kind)}]
        assert owners, f"with_: no part has a field {name}"
        plan = replace(plan, **{owners[0]: replace(getattr(plan, owners[0]), **{field: value})})
    return plan


def planned(cfg, run):
    """`run` with its plan for `cfg` stored in its folder, as the runner stores it before a Trainer runs it."""
    from engine.plan.make import get_plan
    from engine.plan.stored import save_run_plan

    save_run_plan(run, get_plan(cfg))
    return run


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory):
    """A store holding one real, tiny, finished run."""
    from engine.plan.config import TrainConfig
    from engine.runs.store import RunStore
    from engine.service.training import train

    root = tmp_path_factory.mktemp("pages")
    data = root / "tiny"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (data / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:6]:
            shutil.copy(f, data / cls.name / f.name)
    store = RunStore(root / "runs")
    cfg = TrainConfig.create(
        data=str(data),
        strategy="top-k",
        top_k=1,
        head_epochs=1,
        finetune_epochs=1,
        views=1,
        batch_size=4,
        val_fraction=0.34,
    )
    run = store.create(cfg.to_dict(), "tiny")
    assert train(cfg, run).status == "finished"
    return store


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """A linear head on Lite0 trained on 24 photos of each of the sample's 15 classes, a third held out as test."""
    from engine.plan.config import TrainConfig
    from engine.runs.store import RunStore
    from engine.service.training import train

    root = tmp_path_factory.mktemp("int8")
    for cls in sorted((SAMPLE / "train").iterdir()):
        (root / "data" / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:24]:
            shutil.copy(f, root / "data" / cls.name / f.name)
    cfg = TrainConfig.create(
        data=str(root / "data"),
        strategy="feature-extraction",
        head_epochs=8,
        views=1,
        batch_size=16,
        val_fraction=0.2,
        test_fraction=0.3,
    )
    run = RunStore(root / "runs").create(cfg.to_dict(), "int8")
    assert train(cfg, run).status == "finished"
    return run


class FakeClock:
    """A clock a test moves by hand (`clock.now = 8.0`): what the pace and time-left code reads instead of time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
