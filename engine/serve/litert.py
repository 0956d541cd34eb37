"""TFLite (LiteRT) export: the model converted by Google's `litert-torch` and run by the `ai-edge-litert` interpreter.

`litert-torch` pins dependencies this project cannot share (an older typing_extensions, JAX, transformers), so it lives
in a virtual environment of its own, `.venv-edge` (made by `make edge`, optional), which sees this project's packages
through a .pth file. The model goes there as a `torch.export` program (no code, no pickle of Python objects); the
conversion runs as a child process. The interpreter that measures the file (`ai-edge-litert`, Apache-2.0, 21 MB) is a
dependency of this project. The file takes the same NCHW float input as ONNX, normalised as the model card says.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from engine.errors import DataError
from engine.paths import REPO
from engine.serve.measure import Forward, Runner

CONVERTER = "litert-torch==0.10.0"
TIMEOUT_S = 900


def edge_python() -> Path:
    """The interpreter that has `litert-torch`: TRANSFERLAB_EDGE_PYTHON, or `.venv-edge` made by `make edge`."""
    return Path(os.environ.get("TRANSFERLAB_EDGE_PYTHON") or REPO / ".venv-edge" / "bin" / "python")


def converter_missing() -> str:
    """Why a TFLite file cannot be made here, in one line ("" when it can)."""
    if not edge_python().is_file():
        return (
            f"TFLite needs the converter {CONVERTER}, which is not installed: run `make edge` (a separate environment, "
            "about 1 GB), or set TRANSFERLAB_EDGE_PYTHON to a Python that has it"
        )
    return ""


def convert(model: torch.nn.Module, example: torch.Tensor, out: Path) -> Path:
    """Writes `out` (.tflite) from `model` at batch 1.

    Raises:
        DataError: The converter is missing or failed; the message says which and what to do.
    """
    missing = converter_missing()
    if missing:
        raise DataError(missing)
    program = out.with_suffix(".pt2")
    with torch.no_grad():
        torch.export.save(torch.export.export(model, (example[:1],)), str(program))
    try:
        done = subprocess.run(
            [str(edge_python()), "-m", "engine.serve.litert", str(program), str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"TFLite conversion did not finish in {TIMEOUT_S} s; export without tflite") from None
    finally:
        program.unlink(missing_ok=True)
    if done.returncode != 0 or not out.is_file():
        lines = done.stderr.strip().splitlines() or ["no message"]
        last = next((line for line in reversed(lines) if re.match(r"\w+(Error|Exception)\b", line)), lines[-1])
        raise DataError(f"TFLite conversion failed ({last}); export without tflite, or report the model")
    return out


def tflite_runner(name: str, path: Path) -> Runner:
    """A .tflite file run by the LiteRT interpreter on the CPU, photo by photo (the file is made for batch 1)."""
    from ai_edge_litert.interpreter import Interpreter

    def session(threads: int) -> Forward:
        interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        interpreter.allocate_tensors()
        (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()

        def one(x: np.ndarray) -> np.ndarray:
            interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(outp["index"]).copy()

        return lambda x: np.concatenate([one(x[i : i + 1]) for i in range(len(x))])

    return Runner(name, path, session(0), session)


def _main(program: str, out: str) -> int:
    """In `.venv-edge`: the exported program to a .tflite file."""
    import litert_torch

    exported = torch.export.load(program)
    example = tuple(
        torch.zeros(node.meta["val"].shape, dtype=node.meta["val"].dtype)
        for node in exported.graph.nodes
        if node.op == "placeholder" and node.name in exported.graph_signature.user_inputs
    )
    litert_torch.convert(exported.module(), example).export(out)
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:3]))
