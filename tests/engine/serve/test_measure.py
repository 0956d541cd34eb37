"""engine.serve.measure: every file run on the same photos, its accuracy, agreement with the reference and latency."""

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.spec import InputSpec
from engine.serve import measure as measure_module
from engine.serve.measure import Runner, latency, measure

SPEC = InputSpec((3, 16, 16), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _runner(name: str, path: Path, answer) -> Runner:
    def forward(x: np.ndarray) -> np.ndarray:
        return np.stack([np.eye(3)[answer(float(v))] for v in x.mean(axis=(1, 2, 3))])

    return Runner(name, path, forward, lambda threads: forward)


def test_accuracy_and_agreement_are_counted_on_the_same_photos(tmp_path, monkeypatch):
    monkeypatch.setattr(measure_module, "REPEATS", 3)
    paths, labels = [], []
    for i, grey in enumerate([20, 120, 230, 30, 140, 250]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.full((20, 20, 3), grey, dtype=np.uint8)).save(paths[-1])
        labels.append(0 if grey < 100 else 1 if grey < 200 else 2)
    files = []
    for name in ("reference", "copy", "coarse"):
        files.append(tmp_path / f"{name}.bin")
        files[-1].write_bytes(b"x" * 1000)
    right = _runner("reference", files[0], lambda m: 0 if m < -0.5 else 1 if m < 1.0 else 2)
    same = _runner("copy", files[1], lambda m: 0 if m < -0.5 else 1 if m < 1.0 else 2)
    coarse = _runner("coarse", files[2], lambda m: 0 if m < 0 else 2)  # never answers class 1
    got = measure([right, same, coarse], SPEC, paths, np.array(labels), "test")
    assert [m.accuracy for m in got] == [1.0, 1.0, 4 / 6]
    assert [m.agreement for m in got] == [1.0, 1.0, 4 / 6]
    assert got[2].interval[0] < 4 / 6 < got[2].interval[1] and got[2].n == 6 and got[2].split == "test"
    assert got[0].size_mb == 0.001 and got[0].one_thread.threads == 1


def test_latency_reports_the_median_and_95th_percentile(monkeypatch):
    monkeypatch.setattr(measure_module, "REPEATS", 5)
    calls = []
    got = latency(lambda x: calls.append(x), np.zeros((1, 3, 4, 4), dtype=np.float32), 1)
    assert len(calls) == measure_module.WARMUP + 5
    assert 0 <= got.p50 <= got.p95 and got.threads == 1
