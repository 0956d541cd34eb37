"""A second domain pair for bench/domain.py, made from a shared labelled set: its train and val photos as the source,
its test photos split in two and shifted the same way as the target (one half unlabelled, to adapt to; the other
labelled, scored once). The shifts stand for kinds of data the shared pair does not hold:

* `grey`: grayscale (a scanner, an X-ray, a night camera);
* `field`: a phone in a field: warmer and flatter colour, a little blur, half the resolution, heavy JPEG.

Nothing of the target test is read to choose anything; the split of test/ in two is fixed (every other photo of each
class, sorted by name).

Run by hand:  .venv/bin/python bench/shifted_pair.py --data ../shared/datasets/plant-leaves-15 --shift field OUT
              .venv/bin/python bench/domain.py --pair OUT --rows probe,norm,pseudo,auto,auto-target
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def grey(im: Image.Image) -> Image.Image:
    return ImageOps.grayscale(im).convert("RGB")


def field(im: Image.Image) -> Image.Image:
    r, g, b = im.convert("RGB").split()
    im = Image.merge("RGB", (r.point(lambda v: min(255, int(v * 1.12 + 8))), g, b.point(lambda v: int(v * 0.85))))
    im = ImageEnhance.Contrast(im).enhance(0.7).filter(ImageFilter.GaussianBlur(1.2))
    return im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.BILINEAR)


SHIFTS = {"grey": grey, "field": field}


def make_pair(data: Path, shift: str, out: Path) -> None:
    """`out/source/{train,val}` copied from `data`, `out/target/{unlabelled,test}` from `data/test`, shifted."""
    for split in ("train", "val"):
        shutil.copytree(data / split, out / "source" / split)
    n = 0
    for cls in sorted(p for p in (data / "test").iterdir() if p.is_dir()):
        for i, f in enumerate(sorted(cls.iterdir())):
            if i % 2:  # labelled, scored once
                dst = out / "target" / "test" / cls.name / f"{f.stem}.jpg"
            else:  # unlabelled: a name that says nothing of the class
                dst, n = out / "target" / "unlabelled" / f"{n:05d}.jpg", n + 1
            dst.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(f) as im:
                SHIFTS[shift](im).save(dst, quality=35 if shift == "field" else 90)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="a labelled set with train/, val/ and test/")
    ap.add_argument("--shift", choices=sorted(SHIFTS), required=True)
    ap.add_argument("out", help="a folder that does not exist yet")
    args = ap.parse_args()
    make_pair(Path(args.data), args.shift, Path(args.out))
    print(f"{args.out}: source from {args.data}, target = its test photos, shifted ({args.shift})")


if __name__ == "__main__":
    main()
