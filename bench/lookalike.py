"""Copies of one photo, however they were made: the signature similarity (engine.data.lookalike) and the features'
cosine (engine.probe.check) of each copy with its original, and of distinct photos, on the shared training photos.

For each dataset: `--originals` training photos (fixed seed), each copied as a user's collection copies it
(resized to 50/70/90%, saved at JPEG quality 60, cropped by up to 10% of the width and of the height at random,
mirrored, mirrored + cropped + resized + JPEG 60, resized to 200 px at JPEG 80), and `--distinct` training photos for
the pairs that are not copies. The table gives, per kind of copy, the lowest and the median of both scores and the
share the check's rule calls a copy; and for the distinct pairs the highest scores and how many pairs the rule calls
copies, all of them and those the features alone call copies (as the check did before the signature).

Run by hand:  .venv/bin/python bench/lookalike.py [--datasets plant-leaves-15,eurosat-10]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-lookalike-"))

import numpy as np
from PIL import Image, ImageOps

from engine.data.lookalike import MAX_CROP, signatures
from engine.probe.check import DUPLICATE_COSINE, embedding, is_copy
from engine.probe.linear import photo_features

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _crop(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    fx, fy = rng.uniform(0, MAX_CROP), rng.uniform(0, MAX_CROP)  # the share of the width and the height cut off
    left, top = rng.uniform(0, fx), rng.uniform(0, fy)
    right, bottom = fx - left, fy - top
    return img.crop((round(left * w), round(top * h), round(w - right * w), round(h - bottom * h)))


def copies(img: Image.Image, rng: random.Random) -> dict[str, Image.Image]:
    """The kinds of copy the check must find, of one photo."""
    w, h = img.size
    out = {
        f"resized to {s:.0%}": img.resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR)
        for s in (0.5, 0.7, 0.9)
    }
    out["JPEG quality 60"] = _jpeg(img, 60)
    out["cropped (up to 10%)"] = _crop(img, rng)
    out["mirrored"] = ImageOps.mirror(img)
    cut = ImageOps.mirror(_crop(img, rng))
    out["mirrored+cropped+70%+JPEG 60"] = _jpeg(cut.resize((round(cut.width * 0.7), round(cut.height * 0.7))), 60)
    out["200 px, JPEG 80"] = _jpeg(img.resize((200, 200)), 80)
    return out


def measure(name: str, n_originals: int, n_distinct: int, work: Path) -> list[str]:
    files = sorted(str(p) for p in (SHARED / name / "train").glob("*/*"))
    random.Random(0).shuffle(files)
    distinct = files[:n_distinct]
    rng = random.Random(1)
    made, kinds, of = [], [], []
    for i, path in enumerate(distinct[:n_originals]):
        for kind, img in copies(Image.open(path).convert("RGB"), rng).items():
            made.append(str(work / f"{name}-{i}-{len(made)}.png"))
            img.convert("RGB").save(made[-1])
            kinds.append(kind)
            of.append(i)
    every = distinct + made
    sig = signatures(every)
    z = embedding(photo_features(every, BACKBONE), len(every))
    rows = []
    n = len(distinct)
    for kind in dict.fromkeys(kinds):
        pairs = [(o, n + j) for j, (k, o) in enumerate(zip(kinds, of)) if k == kind]
        s = np.array([sig.similarity(a, b) for a, b in pairs])
        c = np.array([float(z[a] @ z[b]) for a, b in pairs])
        found = np.mean([is_copy(a, b) for a, b in zip(c, s)])
        rows.append(
            f"{name:16s} {kind:30s} {s.min():6.3f} {np.median(s):6.3f} {c.min():6.3f} {np.median(c):6.3f} {found:7.0%}"
        )
    iu = np.triu_indices(n, 1)
    s = np.array([sig.similarity(a, b) for a, b in zip(*iu)])
    c = (z[:n] @ z[:n].T)[iu]
    called = sum(is_copy(a, b) for a, b in zip(c, s))
    alone = int((c >= DUPLICATE_COSINE).sum())
    rows.append(
        f"{name:16s} {'distinct pairs (' + str(len(s)) + ')':30s} {s.max():6.3f} {np.percentile(s, 99.9):6.3f} "
        f"{c.max():6.3f} {np.percentile(c, 99.9):6.3f} {called:7d} ({alone} by features alone)"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    parser.add_argument("--originals", type=int, default=60)
    parser.add_argument("--distinct", type=int, default=400)
    args = parser.parse_args()
    print("copy pairs: lowest and median signature similarity, lowest and median feature cosine, share called a copy")
    print("distinct pairs: highest and 99.9th percentile of each, pairs called a copy")
    print(f"{'dataset':16s} {'copy':30s} {'sig lo':>6s} {'sig md':>6s} {'cos lo':>6s} {'cos md':>6s} {'called':>7s}")
    with tempfile.TemporaryDirectory() as work:
        for name in args.datasets.split(","):
            for row in measure(name, args.originals, args.distinct, Path(work)):
                print(row, flush=True)


if __name__ == "__main__":
    main()
