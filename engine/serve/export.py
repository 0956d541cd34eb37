"""Export for a target: TorchScript, ONNX fp32 (checked against PyTorch), ONNX int8, TFLite, Core ML (written, not
run: it runs only on Apple's systems), safetensors and a browser bundle, each file run on the test photos and timed,
refused when it breaks the budget; with the model card (engine.serve.card) and predict.py beside them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.errors import DataError
from engine.model.catalogue import catalogue_name
from engine.paths import building, usual_mode
from engine.plan.config import TrainConfig
from engine.plan.make import load_data
from engine.runs.store import LIVE, Run
from engine.serve import coreml, litert, ood
from engine.serve.bundle import PREDICT_SCRIPT, WEB_DIR, web_missing, write_predict_script, write_web_bundle
from engine.serve.card import model_card
from engine.plan.trained import load_run_model
from engine.serve.measure import FileMeasure, Runner, accuracies, measure, onnx_runner, torch_runner
from engine.serve.quantize import Int8Choice, calibration_photos, quantize_int8, quantize_on_val
from engine.serve.targets import student_advice, TARGETS, Target

EXPORT_FORMATS = ("torchscript", "onnx", "onnx-int8", "tflite", "coreml", "safetensors", "web")
FILE_NAMES = {
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "tflite": "model.tflite",
    "coreml": "model.mlpackage",  # a folder (an ML Program package)
    "safetensors": "model.safetensors",
    "web": WEB_DIR,  # a folder: the page, the smallest ONNX file written, its card and onnxruntime-web
    "predict": PREDICT_SCRIPT,  # written beside any ONNX file
}
FOLDERS = frozenset({"web", "coreml"})  # formats written as folders
ONNX_USERS = frozenset({"onnx", "onnx-int8", "web"})  # the formats made from the ONNX fp32 export
RUN_NAMES = {  # the formats measured by running them
    "torchscript": "TorchScript",
    "onnx": "ONNX fp32",
    "onnx-int8": "ONNX int8",
    "tflite": "TFLite fp32",
}


CHECKED_FORMATS = {"torchscript": "TorchScript", "onnx": "ONNX"}  # checked against PyTorch on val after export


def _check_batches(run: Run, spec, example: torch.Tensor, check_images: int) -> tuple[list[torch.Tensor], int]:
    """The inputs every exported file is checked on: up to `check_images` of the run's val photos as the model reads
    them (random inputs when the photos are gone), in batches; and how many photos that is."""
    photos = [
        p for p in ((run.read_json("metrics.json") or {}).get("val_paths") or [])[:check_images] if Path(p).exists()
    ]
    batches = [
        spec.normalize(torch.stack(load_images(spec, photos[b : b + 32]))).contiguous()
        for b in range(0, len(photos), 32)
    ]
    return batches or [example], len(photos) or len(example)


def _agreement(name: str, ref: np.ndarray, got: np.ndarray, n: int) -> dict:
    """The check line of one exported file against PyTorch on the same inputs."""
    return {
        f"{name}_images": n,
        f"{name}_max_abs_diff": float(np.abs(ref - got).max()),
        f"{name}_same_top1": bool((ref.argmax(1) == got.argmax(1)).all()),
        f"{name}_top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }


@dataclass(frozen=True)
class Export:
    """What an export wrote and how each file measured.

    Attributes:
        dir: The export folder.
        files: Format -> path of each file written (refused files are not among them).
        checks: Each run file against PyTorch on up to `check_images` val photos (max |difference|, same top-1).
        measures: PyTorch first, then each file run, on the test photos (val when the run has none).
        refused: Format -> why it was not written, with its numbers.
        broken: Measured name -> the target's limits it breaks, in words ([] when it meets the budget).
        target: The place and budget it was exported for.
        params: Parameters of the model.
        card: The model card written beside the files.
    """

    dir: str
    files: dict[str, str]
    checks: dict
    measures: list[FileMeasure]
    refused: dict[str, str]
    broken: dict[str, list[str]]
    target: Target
    params: int
    card: dict
    unchecked: dict = field(default_factory=dict)  # format -> what is known of a file this machine cannot run (Core ML)
    student: str = ""  # what it would take to meet the budget with a smaller model, in words (`targets.student_advice`)
    int8: dict = field(default_factory=dict)  # the int8 recipe chosen on val, with its sentence (`quantize.Int8Choice`)

    def single_files(self) -> dict[str, str]:
        """Format -> path of each single file written (the browser bundle and Core ML's package are folders,
        downloaded in the zip)."""
        return {k: v for k, v in self.files.items() if k not in FOLDERS}

    def how_to_run(self) -> str:
        """How to use what was written, in words."""
        lines = []
        if "predict" in self.files:
            lines.append("`pip install onnxruntime numpy pillow`, then `python predict.py PHOTO` in the folder")
        if "web" in self.files:
            lines.append(
                "the `web` folder classifies a photo in the browser with no server of ours: serve it with any static "
                "server (`python -m http.server` inside it) and open it on the phone"
            )
        if "coreml" in self.files:
            lines.append(
                f"`model.mlpackage` goes into an Xcode project ({self.unchecked['coreml']['size_mb']:.1f} MB; "
                f"{coreml.UNCHECKED})"
            )
        return ("To run it: " + "; ".join(lines) + ".") if lines else "No runnable file was written."

    def meeting(self) -> list[str]:
        """The written files that meet the target's budget."""
        return [m.name for m in self.measures[1:] if not m.refused and not self.broken[m.name]]

    def sentence(self) -> str:
        """Which files meet the budget, or what it would take, in one sentence."""
        if not self.measures:
            return "Nothing was measured."
        meet = self.meeting()
        if meet:
            verb = "meets" if len(meet) == 1 else "meet"
            return f"{', '.join(meet)} {verb} the {self.target.name} budget ({self.target.limits()})."
        closest = min(self.measures[1:] or self.measures, key=lambda m: len(self.broken[m.name]))
        return (
            f"No file meets the {self.target.name} budget ({self.target.limits()}); the closest, {closest.name}, "
            f"breaks it by {'; '.join(self.broken[closest.name])}. {self._what_it_would_take(closest)}"
        )

    def _what_it_would_take(self, closest: FileMeasure) -> str:
        if "onnx-int8" not in self.files and "onnx-int8" not in self.refused and not self.target.max_params:
            return f"Try the int8 file. {self.student}"
        return self.student

    def rows(self) -> list[dict]:
        """One row a file, as the page and the model card show them (numbers as measured, words where it failed)."""
        return [
            {
                "file": m.name,
                "photos": f"{m.n} {m.split}",
                "accuracy": m.accuracy,
                "95% interval": f"{m.interval[0]:.1%}–{m.interval[1]:.1%}",
                "same top-1 as PyTorch": m.agreement,
                "MB": m.size_mb,
                "ms, 1 thread (p50 / p95)": f"{m.one_thread.p50:.1f} / {m.one_thread.p95:.1f}",
                "ms, all threads (p50 / p95)": f"{m.all_threads.p50:.1f} / {m.all_threads.p95:.1f}",
                "budget": "refused" if m.refused else "; ".join(self.broken[m.name]) or "meets it",
            }
            for m in self.measures
        ]

    def to_dict(self) -> dict:
        return {
            "dir": self.dir,
            "files": self.files,
            "checks": self.checks,
            "measures": [m.to_dict() for m in self.measures],
            "refused": self.refused,
            "broken": self.broken,
            "target": self.target.to_dict(),
            "meeting": self.meeting(),
            "sentence": self.sentence(),
            "params": self.params,
            "unchecked": self.unchecked,
            "student": self.student,
            "int8": self.int8,
        }


def _write_torch_formats(model, example: torch.Tensor, stage: Path, formats: set[str]) -> None:
    """safetensors, TorchScript and ONNX fp32 (the file int8 is made from and measured against)."""
    if "safetensors" in formats:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(stage / FILE_NAMES["safetensors"]))
        usual_mode(stage / FILE_NAMES["safetensors"])
    with torch.no_grad():
        if "torchscript" in formats:
            torch.jit.trace(model, example).save(str(stage / FILE_NAMES["torchscript"]))
        if formats & ONNX_USERS:
            torch.onnx.export(
                model,
                (example,),
                str(stage / FILE_NAMES["onnx"]),
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )


def _runners(model, stage: Path, formats: set[str], reference: Path) -> list[Runner]:
    """PyTorch (the reference, sized by its weights file), then each file written, as it will run."""
    runners = [torch_runner("PyTorch", model, reference)]
    if "torchscript" in formats:
        path = stage / FILE_NAMES["torchscript"]
        runners.append(torch_runner(RUN_NAMES["torchscript"], torch.jit.load(str(path)), path))
    for kind in ("onnx", "onnx-int8"):
        if kind in formats:
            runners.append(onnx_runner(RUN_NAMES[kind], stage / FILE_NAMES[kind]))
    if "tflite" in formats and (stage / FILE_NAMES["tflite"]).is_file():
        runners.append(litert.tflite_runner(RUN_NAMES["tflite"], stage / FILE_NAMES["tflite"]))
    return runners


def labelled_photos(ds, classes: list[str], split: str) -> tuple[list[str], np.ndarray]:
    """A split's photos with their labels in the model's output order."""
    items = ds.split(split)
    return [it.path for it in items], np.array([classes.index(ds.classes[it.label]) for it in items], dtype=int)


def _refusal(m: FileMeasure, reference: FileMeasure, replaced: FileMeasure | None, target: Target) -> str:
    """Why a file may not be written: it loses more than the allowed drop, or is no faster than the file it
    replaces ("" when it may)."""
    drop = (reference.accuracy - m.accuracy) * 100
    if drop > target.max_drop:
        return (
            f"{m.name} refused: {m.accuracy:.1%} on {m.n} {m.split} photos against PyTorch's {reference.accuracy:.1%} "
            f"loses {drop:.1f} points (allowed {target.max_drop:g})"
        )
    if replaced is not None and m.one_thread.p50 >= replaced.one_thread.p50:
        return (
            f"{m.name} refused: {m.one_thread.p50:.1f} ms a photo on one thread, no faster than {replaced.name}'s "
            f"{replaced.one_thread.p50:.1f} ms"
        )
    return ""


@dataclass(frozen=True)
class _Job:
    """One export being built in `stage`, a folder of its own."""

    run: Run
    model: torch.nn.Module
    spec: InputSpec
    classes: list[str]
    stage: Path
    formats: frozenset[str]
    target: Target

    def checks(self, example: torch.Tensor, check_images: int) -> dict:
        """The check line of each run file against PyTorch on the same val photos."""
        kinds = [k for k in CHECKED_FORMATS if k in self.formats]
        if not kinds:
            return {}
        batches, n = _check_batches(self.run, self.spec, example, check_images)
        forwards = {r.name: r.forward for r in _runners(self.model, self.stage, set(kinds), self.stage)}
        ref = np.concatenate([forwards["PyTorch"](x.numpy()) for x in batches])
        checks = {}
        for kind in kinds:
            got = np.concatenate([forwards[RUN_NAMES[kind]](x.numpy()) for x in batches])
            checks.update(_agreement(kind, ref, got, n))
        return checks

    def measures(self, ds) -> list[FileMeasure]:
        """PyTorch, then each file (and the fp32 file int8 replaces), on the test photos (val when there are none)."""
        split = "test" if ds.test else "val"
        photos, labels = labelled_photos(ds, self.classes, split)
        if not photos:
            raise DataError(f"run {self.run.id}: its data has neither test nor val photos to measure the files on")
        weights = self.stage / FILE_NAMES["safetensors"]
        weights = weights if weights.exists() else self.run.path / "model.safetensors"
        reference = weights if weights.exists() else self.run.path / "best.pt"
        ran = set(self.formats & set(RUN_NAMES)) | ({"onnx"} if self.formats & ONNX_USERS else set())
        return measure(_runners(self.model, self.stage, ran, reference), self.spec, photos, labels, split)

    def refusals(self, measures: list[FileMeasure]) -> dict[str, str]:
        """Format -> why its file may not be written, for the formats asked for."""
        by_name = {m.name: m for m in measures}
        refused = {}
        for kind, name in RUN_NAMES.items():
            if name in by_name and kind in self.formats:
                replaced = by_name.get(RUN_NAMES["onnx"]) if kind == "onnx-int8" else None
                why = _refusal(by_name[name], measures[0], replaced, self.target)
                if why:
                    refused[kind] = why
        return refused

    def build(self, check_images: int) -> Export:
        """Writes, checks and measures every file, and writes the model card; refused files stay in the stage."""
        size = self.spec.input_size[-1]
        example = torch.randn(2, self.spec.in_chans, size, size, generator=torch.Generator().manual_seed(0))
        _write_torch_formats(self.model, example, self.stage, self.formats)
        checks = self.checks(example, check_images)
        cfg = TrainConfig.from_dict(self.run.config)
        ds = load_data(cfg)
        int8 = self.quantize(ds) if "onnx-int8" in self.formats else None
        unconverted = self.tflite(example)
        unchecked, unconverted_coreml = self.coreml(example)
        unconverted.update(unconverted_coreml)
        measures = self.measures(ds)
        refused = {**unconverted, **self.refusals(measures)}
        names = {RUN_NAMES.get(k, k): why for k, why in refused.items()}
        measures = [replace(m, refused=names.get(m.name, "")) for m in measures]
        params = sum(p.numel() for p in self.model.parameters())
        refused.update(self.web_refusal(refused))
        written = sorted(k for k in self.formats if k not in refused)
        if set(written) & {"onnx", "onnx-int8"}:
            write_predict_script(self.stage)
            written.append("predict")
        export = Export(
            dir="",
            files={k: FILE_NAMES[k] for k in written},
            checks=checks,
            measures=[m for m in measures if m.name != RUN_NAMES["onnx"] or self.formats & {"onnx", "web"}],
            refused=refused,
            broken={m.name: self.target.broken(m, measures[0], params) for m in measures},
            target=self.target,
            params=params,
            card={},
            unchecked=unchecked,
            student=student_advice(
                self.run.id, cfg.data.path, params, self.target, catalogue_name(self.model), len(self.classes)
            ),
            int8=int8.to_dict() if int8 is not None else {},
        )
        try:
            ood.run_rule(self.run, self.model, self.spec)  # fitted once, so the card carries it
        except DataError:
            pass  # the card says the rule was not fitted ({}), as for a run whose photos are gone
        measured = {k: v for k, v in export.to_dict().items() if k != "dir"}  # the card names no folder of this server
        card = {**model_card(self.run).to_dict(), "files": export.files, "checks": checks, "export": measured}
        (self.stage / "model_card.json").write_text(json.dumps(card, indent=2, default=float))
        if "web" in export.files:
            write_web_bundle(self.stage, self.stage / FILE_NAMES[self.web_model(refused)], card)
        return replace(export, card=card)

    def quantize(self, ds) -> Int8Choice | None:
        """Writes the int8 file, calibrated on training photos, its recipe chosen on the val photos against PyTorch
        (`quantize.quantize_on_val`); by the shipped recipe, unchosen (None), when the run has no val photos."""
        calibration = calibration_photos(*labelled_photos(ds, self.classes, "train"))
        out = self.stage / FILE_NAMES["onnx-int8"]
        photos, labels = labelled_photos(ds, self.classes, "val")
        if not photos:
            quantize_int8(self.model, self.spec, out, calibration)
            return None
        reference = torch_runner("PyTorch", self.model, self.run.path / "model.safetensors")
        pytorch = accuracies([reference], self.spec, photos, labels)[0]

        def val_drop(path: Path) -> float:
            return (pytorch - accuracies([onnx_runner("ONNX int8", path)], self.spec, photos, labels)[0]) * 100

        return quantize_on_val(self.model, self.spec, out, calibration, val_drop, len(photos), self.target.max_drop)

    def tflite(self, example: torch.Tensor) -> dict[str, str]:
        """Converts the model to TFLite when asked; {"tflite": why} when the converter is missing or fails."""
        if "tflite" not in self.formats:
            return {}
        try:
            litert.convert(self.model, example, self.stage / FILE_NAMES["tflite"])
        except DataError as e:
            return {"tflite": f"tflite refused: {e}"}
        return {}

    def coreml(self, example: torch.Tensor) -> tuple[dict, dict[str, str]]:
        """Core ML's package written, with what can be known of it here ({"coreml": ...}), and {"coreml": why} when
        it could not be made (({}, {}) when it was not asked for)."""
        if "coreml" not in self.formats:
            return {}, {}
        path = self.stage / FILE_NAMES["coreml"]
        try:
            return {"coreml": coreml.write_coreml(self.model, example, path, self.classes, self.spec.to_dict())}, {}
        except DataError as e:
            return {}, {"coreml": f"coreml refused: {e}"}

    def web_model(self, refused: dict[str, str]) -> str:
        """The format the browser bundle carries: int8 when it was written, else fp32."""
        return "onnx-int8" if "onnx-int8" in self.formats and "onnx-int8" not in refused else "onnx"

    def web_refusal(self, refused: dict[str, str]) -> dict[str, str]:
        """{"web": why} when the browser bundle cannot be built: onnxruntime-web is not here, the model reads other
        channels than a photo has, or its ONNX file was refused ({} when it can, or was not asked for)."""
        if "web" not in self.formats:
            return {}
        why = web_missing()
        if self.spec.in_chans not in (1, 3):
            why = "the browser bundle reads photos as grey or RGB; this model takes other channels"
        if self.web_model(refused) in refused:
            why = "its ONNX file was refused"
        return {"web": f"web refused: {why}"} if why else {}


def _remove(path: Path) -> None:
    """Removes an earlier export's file or folder (nothing when there is none)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def export_run(
    run: Run,
    out_dir: str | Path | None = None,
    formats: tuple[str, ...] | None = None,
    target: Target = TARGETS["server"],
    check_images: int = 300,
) -> Export:
    """Writes the chosen formats (the target's when none are given) and model_card.json, each file measured.

    Everything is built in a folder of its own beside the export folder and moved in at the end, so a failure (a full
    disk, a refused file) leaves nothing half-written there. TorchScript and ONNX are checked against PyTorch on up to
    `check_images` val photos; every file is then run on the test photos (val when the run has none) for its accuracy,
    agreement and latency. A file that loses more than the target's drop, or int8 no faster than fp32, is refused.

    Raises:
        DataError: The run is still training, a format is unknown, or the folder cannot be written.
    """
    formats = frozenset(formats or target.formats)
    unknown = sorted(formats - set(EXPORT_FORMATS))
    if unknown:
        raise DataError(f"formats {', '.join(unknown)}: not known; choose among {', '.join(EXPORT_FORMATS)}")
    if run.status().get("state") in LIVE:
        raise DataError(f"run {run.id} is still training; export it once it finishes, or stop it first")
    model, spec, classes = load_run_model(run)
    out = Path(out_dir or run.path / "export")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with building(out) as stage:
            stage.mkdir()
            export = _Job(run, model, spec, classes, stage, formats, target).build(check_images)
            for name in [*export.files.values(), "model_card.json"]:
                _remove(out / name)
                os.replace(stage / name, out / name)
            for kind in export.refused:
                _remove(out / FILE_NAMES[kind])  # an earlier export's file is not this one's
    except OSError as e:
        raise DataError(f"{out}: could not write the export ({e.strerror or e}); free space or choose --out") from None
    return replace(export, dir=str(out), files={k: str(out / v) for k, v in export.files.items()})
