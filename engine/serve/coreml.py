"""Core ML export for iPhone and iPad apps: the model converted by Apple's `coremltools` (BSD-3, a 2.3 MB wheel with
no native converter dependency) from a `torch.export` program into an ML Program package (`model.mlpackage`, a
folder; iOS 16 and later, weights in float16).

The TorchScript route fails on the TF-ported backbones (their "same" padding is computed from the input's shape at
run time); the exported program has it folded. Core ML runs only on Apple's systems, so this machine can convert the
model but never run the file: it is written with its size and the shapes and names of its input and output read back
from the package, and said plainly to be unchecked. Its input is the normalised NCHW tensor of the model card's
contract, as ONNX's is, so the normalisation is applied once, by the app.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from engine.errors import DataError

PACKAGE = "coremltools==9.0"
UNCHECKED = (
    "Core ML runs only on Apple's systems, so its answers are not checked here: try the file on a device (its input "
    "is the normalised tensor of the model card's contract)"
)


def _coremltools():
    """coremltools, imported quietly (it logs that its Apple-only runtime is missing, which is expected here).

    Raises:
        DataError: It is not installed; the message names the package.
    """
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        import coremltools
    except ImportError:
        raise DataError(f"Core ML needs {PACKAGE}, which is not installed: `pip install {PACKAGE}`") from None
    return coremltools


def write_coreml(model: torch.nn.Module, example: torch.Tensor, path: Path, classes: list[str], contract: dict) -> dict:
    """Converts `model` (eval mode) at batch 1 and writes the package to `path`, with its `classes` and input
    `contract` (engine.data.spec.InputSpec.to_dict) in its metadata.

    Returns:
        What can be known here: the package's size in MB and its input and output shapes.

    Raises:
        DataError: coremltools is missing, or the model does not convert (the first line of the converter's error).
    """
    ct = _coremltools()
    x = example[:1]
    try:
        with torch.no_grad():
            program = torch.export.export(model.eval(), (x,)).run_decompositions({})
        ml = ct.convert(
            program,
            convert_to="mlprogram",
            minimum_deployment_target=ct.target.iOS16,
        )
    except Exception as e:  # noqa: BLE001 - the converter raises many kinds; the user gets its first line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"Core ML conversion failed ({first}); export the ONNX or TFLite file instead") from None
    ml.short_description = "TransferLab image classifier: logits, one per class in the order of 'classes'"
    ml.user_defined_metadata["classes"] = json.dumps(classes)
    ml.user_defined_metadata["input_contract"] = json.dumps(contract, default=float)
    ml.save(str(path))
    return described(path)


def described(path: Path) -> dict:
    """A written package's size and its input and output names and shapes, read back from its specification."""
    ct = _coremltools()
    spec = ct.utils.load_spec(str(path))
    shapes = {
        side: {f.name: list(f.type.multiArrayType.shape) for f in getattr(spec.description, side)}
        for side in ("input", "output")
    }
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"size_mb": size / 1e6, **shapes, "checked": UNCHECKED}
