"""Classify photos with the model exported beside this file; it needs only onnxruntime, numpy and pillow.

    pip install onnxruntime numpy pillow
    python predict.py PHOTO [PHOTO ...] [--model model.int8.onnx] [--top 3] [--json]

The input contract (size, resampling, crop, mean and std, classes) is read from model_card.json beside this file, the
same card TransferLab wrote with the model; the photo is prepared exactly as TransferLab prepares it before the model.
Written by TransferLab's export; it does not import TransferLab.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
MODES = {1: "L", 3: "RGB"}


def prepare(path: Path, card: dict) -> np.ndarray:
    """One photo as the model reads it: upright, its short side resized to size / crop_pct, centre-cropped to size,
    scaled to [0, 1], normalised by mean and std; a (1, C, size, size) float32 array."""
    channels, size = card["input_size"][0], card["input_size"][-1]
    img = ImageOps.exif_transpose(Image.open(path))
    if img.mode in ("P", "RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    img = img.convert("RGB").convert(MODES[channels])
    short = math.floor(size / card["crop_pct"])
    w, h = img.size
    new = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    img = img.resize(new, RESAMPLING.get(card["interpolation"], Image.Resampling.BILINEAR))
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32).reshape(size, size, channels) / 255.0
    x = (x - np.array(card["mean"], dtype=np.float32)) / np.array(card["std"], dtype=np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def classify(session: ort.InferenceSession, card: dict, path: Path, top: int) -> list[tuple[str, float]]:
    """The `top` likeliest classes of one photo with their probabilities, the likeliest first."""
    logits = session.run(None, {session.get_inputs()[0].name: prepare(path, card)})[0][0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs)[:top]
    return [(card["classes"][i], float(probs[i])) for i in order]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify photos with the exported model.")
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--model", default="", help="an .onnx file beside this script (default: the smallest one)")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object a photo, one per line")
    args = parser.parse_args(argv)
    card = json.loads((HERE / "model_card.json").read_text())
    models = sorted(HERE.glob("*.onnx"), key=lambda p: p.stat().st_size)
    model = HERE / args.model if args.model else (models[0] if models else None)
    if model is None or not model.is_file():
        name = args.model or "model"
        print(f"{name}: no such ONNX file beside predict.py; export with an ONNX format", file=sys.stderr)
        return 2
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    failed = 0
    for path in args.photos:
        try:
            ranked = classify(session, card, path, args.top)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            print(f"{path}: not a readable photo ({e}); skipped", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"photo": str(path), "top": [{"class": c, "probability": p} for c, p in ranked]}))
        else:
            print(f"{path}: " + ", ".join(f"{c} {p:.1%}" for c, p in ranked))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
