"""Where the model will run, and the budget it must meet there: latency, size, parameters and accuracy lost.

The latencies are measured on this machine's CPU at batch 1 with one thread, the closest stand-in it has for one
core of a phone; a real phone can be several times slower or faster, so a file near its limit should be tried there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from engine.errors import DataError
from engine.model.catalogue import list_entries
from engine.plan.param_budget import deepest_cut
from engine.serve.measure import FileMeasure


@dataclass(frozen=True)
class Target:
    """A place the model will run, with its budget (None: no limit).

    Attributes:
        name: "phone", "browser", "server" or "microcontroller".
        max_latency_ms: Median milliseconds per photo at batch 1 on one thread.
        max_size_mb: Size of the file on disk, in MB.
        max_params: Parameters of the model.
        max_drop: Test accuracy a file may lose against the PyTorch model, in points.
        formats: The files written for it (see engine.serve.export.EXPORT_FORMATS).
        means: What the place is, in words.
    """

    name: str
    max_latency_ms: float | None
    max_size_mb: float | None
    max_params: int | None
    max_drop: float
    formats: tuple[str, ...]
    means: str

    def with_limits(
        self, max_latency_ms: float | None = None, max_size_mb: float | None = None, max_drop: float | None = None
    ) -> Target:
        """The same target with the limits a user gave (None keeps the default)."""
        given = {"max_latency_ms": max_latency_ms, "max_size_mb": max_size_mb, "max_drop": max_drop}
        for field, value in given.items():
            if value is not None and value < 0:
                raise DataError(f"--{field.replace('_', '-')}: {value} is negative; give a limit of 0 or more")
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def broken(self, m: FileMeasure, reference: FileMeasure, params: int) -> list[str]:
        """The limits file `m` breaks, each in words with its numbers ([] when it meets the budget)."""
        out = []
        if self.max_latency_ms is not None and m.one_thread.p50 > self.max_latency_ms:
            out.append(f"{m.one_thread.p50:.1f} ms a photo on one thread (limit {self.max_latency_ms:g} ms)")
        if self.max_size_mb is not None and m.size_mb > self.max_size_mb:
            out.append(f"{m.size_mb:.1f} MB (limit {self.max_size_mb:g} MB)")
        if self.max_params is not None and params > self.max_params:
            out.append(f"{params / 1e6:.2f}M parameters (limit {self.max_params / 1e6:.2f}M)")
        drop = (reference.accuracy - m.accuracy) * 100
        if drop > self.max_drop:
            out.append(f"loses {drop:.1f} points on {m.split} against PyTorch (limit {self.max_drop:g})")
        return out

    def limits(self) -> str:
        """The budget in words."""
        parts = [
            f"{self.max_latency_ms:g} ms a photo" if self.max_latency_ms is not None else "",
            f"{self.max_size_mb:g} MB" if self.max_size_mb is not None else "",
            f"{self.max_params / 1e6:.2f}M parameters" if self.max_params is not None else "",
            f"at most {self.max_drop:g} point(s) of accuracy lost",
        ]
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return asdict(self)


TARGETS = {
    "phone": Target(
        "phone",
        50.0,
        20.0,
        None,
        1.0,
        ("onnx", "onnx-int8", "tflite", "coreml", "web"),
        "an app on a mid-range phone, one core per photo (or the browser bundle opened on it)",
    ),
    "browser": Target(
        "browser",
        100.0,
        10.0,
        None,
        1.0,
        ("onnx", "onnx-int8", "web"),
        "a web page running the model itself (onnxruntime-web); the file is downloaded by every visitor",
    ),
    "server": Target(
        "server",
        None,
        None,
        None,
        1.0,
        ("torchscript", "onnx", "onnx-int8", "safetensors"),
        "a machine of your own with Python; no limit but the accuracy",
    ),
    "microcontroller": Target(
        "microcontroller",
        None,
        None,
        500_000,
        1.0,
        ("onnx", "onnx-int8"),
        "a board with a few hundred KB of memory (some MCU targets): under 500K parameters",
    ),
}


def get_target(name: str) -> Target:
    """The target called `name`.

    Raises:
        DataError: No target has that name; the message lists them.
    """
    if name not in TARGETS:
        raise DataError(f"--target {name}: not a known target; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


# PLR0913: the run (id, data, size, backbone, classes) and the target
def student_advice(  # noqa: PLR0913
    run_id: str, data: str, params: int, target: Target, backbone: str, n_classes: int
) -> str:
    """What it would take to meet `target` with a smaller model than the run's (`params`, on `backbone`): a student
    distilled from the run (`engine.plan.distill`), with the command that trains it. Under a parameter budget, the
    run's backbone cut after an early stage (`engine.plan.param_budget`), when one fits; else the smallest catalogue
    backbone; or, when nothing is small enough, that plainly."""
    limit = target.max_params
    cut = deepest_cut(backbone, n_classes, limit) if limit is not None else None
    if cut is not None:
        stage, cut_size = cut
        return (
            f"It would take {backbone} cut after an early stage (at most {stage}: {cut_size / 1e6:.2f}M parameters "
            f"with {n_classes} classes): `python -m engine train --data {data} --backbone {backbone} --max-params "
            f"{limit} --distill-from {run_id}`, then export that run. Its fine-tuning also learns from this run's "
            f"answers (distillation), and it keeps whichever model validates best, its starting head included: a cut "
            f"often keeps that head, and then distillation changes nothing."
        )
    smaller = sorted((e for e in list_entries() if e.params_m * 1e6 < (limit or params)), key=lambda e: e.params_m)
    if not smaller:
        return (
            f"No backbone in the catalogue has fewer than {(limit or params) / 1e6:.2f}M parameters, so no student of "
            f"this run can be trained for it here; a network that small has to be designed for the board."
        )
    pick = smaller[0]
    return (
        f"It would take a smaller model trained from this run's answers (distillation), e.g. {pick.name} "
        f"({pick.params_m:g}M parameters with ImageNet's head): `python -m engine train --data {data} --backbone "
        f"{pick.name} --distill-from {run_id}`, then export that run."
    )
