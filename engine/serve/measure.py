"""Every exported file measured as it will run: its accuracy on the run's test photos (by running that file, not the
PyTorch model), its top-1 agreement with PyTorch on the same photos, its size on disk and its latency on this CPU at
batch 1, with one thread and with all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.metrics import wilson

Forward = Callable[[np.ndarray], np.ndarray]  # a batch of prepared photos (N, C, H, W) float32 -> logits (N, classes)
REPEATS = 30  # timed calls per latency, after WARMUP untimed ones
WARMUP = 5
BATCH = 32


@dataclass(frozen=True)
class Latency:
    """Milliseconds per photo at batch 1.

    Attributes:
        p50: The median of the timed calls.
        p95: Their 95th percentile.
        threads: CPU threads the runtime was given.
    """

    p50: float
    p95: float
    threads: int


@dataclass(frozen=True)
class Runner:
    """One file as it runs: a forward for batches, and one made for a given number of threads.

    Attributes:
        name: What the file is, in words ("ONNX int8").
        path: The file (for its size on disk).
        forward: The forward used for accuracy.
        with_threads: A forward limited to that many threads (its latency is measured at batch 1).
    """

    name: str
    path: Path
    forward: Forward
    with_threads: Callable[[int], Forward]


@dataclass(frozen=True)
class FileMeasure:
    """One exported file, measured.

    Attributes:
        name: What the file is ("PyTorch", "ONNX fp32", "ONNX int8", "TorchScript").
        file: Its name in the export folder.
        size_mb: Its size on disk, in MB (10**6 bytes).
        accuracy: Share of the photos it classifies right, running this file.
        interval: The 95% Wilson interval of that share.
        n: Photos it was measured on.
        split: Which photos: "test", or "val" when the run has no test split.
        agreement: Share of those photos on which its top-1 is PyTorch's.
        one_thread: Latency at batch 1 on one CPU thread.
        all_threads: Latency at batch 1 on every thread of this CPU.
        refused: Why the file was not written ("" when it was).
    """

    name: str
    file: str
    size_mb: float
    accuracy: float
    interval: tuple[float, float]
    n: int
    split: str
    agreement: float
    one_thread: Latency
    all_threads: Latency
    refused: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def torch_runner(name: str, model: torch.nn.Module, path: Path) -> Runner:
    """A PyTorch module (eager or TorchScript) as a runner; `path` is the file it was loaded from."""

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().numpy()

    def with_threads(n: int) -> Forward:
        def limited(x: np.ndarray) -> np.ndarray:
            before = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                return forward(x)
            finally:
                torch.set_num_threads(before)

        return limited

    return Runner(name, path, forward, with_threads)


def onnx_runner(name: str, path: Path) -> Runner:
    """An ONNX file run by onnxruntime on the CPU."""
    import onnxruntime as ort

    def session(threads: int) -> Forward:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default, every core
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name, batch = sess.get_inputs()[0].name, sess.get_inputs()[0].shape[0]
        if batch == 1:  # a graph made for one photo at a time (int8) is given them one by one
            return lambda x: np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
        return lambda x: sess.run(None, {name: x})[0]

    return Runner(name, path, session(0), session)


def latency(forward: Forward, photo: np.ndarray, threads: int) -> Latency:
    """Milliseconds of `forward` on one photo: WARMUP untimed calls, then the median and 95th percentile of REPEATS."""
    for _ in range(WARMUP):
        forward(photo)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        forward(photo)
        times.append((time.perf_counter() - start) * 1e3)
    return Latency(float(np.median(times)), float(np.percentile(times, 95)), threads)


def measure(
    runners: list[Runner], spec: InputSpec, photos: list[str], labels: np.ndarray, split: str
) -> list[FileMeasure]:
    """Runs every file on the same photos, batch by batch (each batch decoded once), and times each at batch 1.

    The first runner is the reference the others' agreement is counted against (PyTorch).
    """
    answers, first = _answers(runners, spec, photos)
    ref = answers[runners[0].name]
    cores = os.cpu_count() or 1
    out = []
    for r in runners:
        pred = answers[r.name]
        correct = int((pred == labels).sum())
        out.append(
            FileMeasure(
                name=r.name,
                file=r.path.name,
                size_mb=r.path.stat().st_size / 1e6,
                accuracy=correct / len(labels),
                interval=wilson(correct, len(labels)),
                n=len(labels),
                split=split,
                agreement=float((pred == ref).mean()),
                one_thread=latency(r.with_threads(1), first, 1),
                all_threads=latency(r.with_threads(cores), first, cores),
            )
        )
    return out


def _answers(runners: list[Runner], spec: InputSpec, photos: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each runner's top-1 on `photos` (every batch decoded once for all of them), and the first photo prepared."""
    logits: dict[str, list[np.ndarray]] = {r.name: [] for r in runners}
    first = None
    for b in range(0, len(photos), BATCH):
        x = spec.normalize(torch.stack(load_images(spec, photos[b : b + BATCH]))).contiguous().numpy()
        first = x[:1] if first is None else first
        for r in runners:
            logits[r.name].append(r.forward(x))
    return {name: np.concatenate(parts).argmax(1) for name, parts in logits.items()}, first


def accuracies(runners: list[Runner], spec: InputSpec, photos: list[str], labels: np.ndarray) -> list[float]:
    """Each runner's accuracy on the same photos (no timing): what a choice on val reads."""
    answers, _ = _answers(runners, spec, photos)
    return [float((answers[r.name] == labels).mean()) for r in runners]
