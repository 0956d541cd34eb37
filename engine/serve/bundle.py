"""What goes beside the exported model so it runs without TransferLab: `predict.py` (onnxruntime, numpy, pillow) and a
browser bundle (`web/`: index.html, the ONNX model, its card and onnxruntime-web), and the whole export as one zip.

onnxruntime-web is fetched from the npm registry by `make vendor` (pinned by version and SHA-256, MIT licence) into
`.vendor/`; TRANSFERLAB_ORT_WEB points at another copy. It is never fetched at export time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

from engine.errors import DataError

ORT_WEB = "onnxruntime-web-1.31.1"
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "package.json")
STANDALONE = Path(__file__).parent / "standalone"
WEB_DIR = "web"
PREDICT_SCRIPT = "predict.py"
STORED_ABOVE = 1_000_000  # bytes: larger files go into the zip uncompressed
NOTICE = (
    f"{ORT_WEB.replace('-1', ' 1', 1)} (https://github.com/microsoft/onnxruntime), MIT licence, "
    "Copyright (c) Microsoft Corporation; vendored unchanged from the npm registry.\n"
)


def ort_web_dir() -> Path:
    """Where onnxruntime-web's files are: TRANSFERLAB_ORT_WEB, or what `make vendor` fetched."""
    return Path(os.environ.get("TRANSFERLAB_ORT_WEB") or Path(__file__).parents[2] / ".vendor" / ORT_WEB)


def web_missing() -> str:
    """Why the browser bundle cannot be built here, in one line ("" when it can)."""
    folder = ort_web_dir()
    missing = [f for f in ORT_WEB_FILES if not (folder / f).is_file()]
    if missing:
        return (
            f"the browser bundle needs onnxruntime-web ({', '.join(missing)} not in {folder}); run `make vendor` "
            f"(npm) or set TRANSFERLAB_ORT_WEB to a folder holding its dist files"
        )
    return ""


def write_predict_script(stage: Path) -> Path:
    """Copies `predict.py` into the export; it reads model_card.json beside it."""
    out = stage / PREDICT_SCRIPT
    shutil.copyfile(STANDALONE / PREDICT_SCRIPT, out)
    return out


def write_web_bundle(stage: Path, model: Path, card: dict) -> Path:
    """`web/` in `stage`: index.html, `model` (an ONNX file), the card naming it and onnxruntime-web.

    Raises:
        DataError: onnxruntime-web is not here.
    """
    missing = web_missing()
    if missing:
        raise DataError(missing)
    web = stage / WEB_DIR
    web.mkdir()
    shutil.copyfile(STANDALONE / "index.html", web / "index.html")
    shutil.copyfile(model, web / model.name)
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_web_dir() / name, web / name)
    (web / "NOTICE.txt").write_text(NOTICE)
    (web / "model_card.json").write_text(json.dumps({**card, "model": model.name}, indent=2, default=float))
    return web


def export_zip(folder: str | Path) -> bytes:
    """The export folder as one zip (its files and `web/`), for a single download."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():  # models and WebAssembly barely compress: stored as they are
                kind = zipfile.ZIP_STORED if path.stat().st_size > STORED_ABOVE else zipfile.ZIP_DEFLATED
                z.write(path, Path(folder.name) / path.relative_to(folder), compress_type=kind)
    return buffer.getvalue()
