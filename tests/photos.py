"""Photo fixtures more than one test module builds: copies of a photo as collections make them, and a folder of the
sample's val photos (unlabelled, or in class subfolders)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from conftest import SAMPLE
from PIL import Image, ImageOps

from engine.data.lookalike import MAX_CROP


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """`img` saved as a JPEG at `quality` and read back."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def copies(img: Image.Image) -> dict[str, Image.Image]:
    """`img` copied each way a collection copies a photo: resized, re-encoded, mirrored, cropped by up to 10%."""
    w, h = img.size
    cut = round(MAX_CROP * w), round(MAX_CROP * h)
    return {
        **{f"resized {s}": img.resize((round(w * s), round(h * s))) for s in (0.5, 0.7, 0.9)},
        "jpeg 60": jpeg(img, 60),
        "mirrored": ImageOps.mirror(img),
        "cropped left and top": img.crop((cut[0], cut[1], w, h)),
        "cropped around": img.crop((cut[0] // 2, cut[1] // 3, w - cut[0] // 2, h - cut[1] // 2)),
    }


def val_folder(dst: Path, classes, per_class: int = 5, labelled=()) -> Path:
    """`per_class` val photos of the sample per class under `dst`: loose (named after their class), or in a class
    subfolder for the classes in `labelled`."""
    dst.mkdir(parents=True)
    for cls in classes:
        for f in sorted((SAMPLE / "val" / cls).iterdir())[:per_class]:
            target = dst / cls / f.name if cls in labelled else dst / f"{cls}-{f.name}"
            target.parent.mkdir(exist_ok=True)
            shutil.copy(f, target)
    return dst


def sample_cut(dst: Path, classes: int = 3, per_class: int = 14) -> Path:
    """The first `per_class` training photos of the sample's first `classes` classes, one folder per class."""
    for cls in sorted((SAMPLE / "train").iterdir())[:classes]:
        (dst / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            shutil.copy(f, dst / cls.name / f.name)
    return dst
