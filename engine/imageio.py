"""Reading one image safely: EXIF orientation, any mode to RGB, 16-bit scaled, decompression bombs refused.

Every failure becomes an `UnreadableImage` whose message names the file and says what is wrong, so callers can skip
and list it instead of crashing.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import UnreadableImage

MAX_PIXELS = 64_000_000  # a 8000 x 8000 photo; anything bigger is refused before decoding
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class ImageMeta:
    """What a cheap check of one image found."""

    width: int
    height: int
    mode: str
    format: str


def _open(data: bytes, path: Path, max_pixels: int) -> Image.Image:
    if not data:
        raise UnreadableImage(f"{path}: empty file (0 bytes); delete it or replace it with the real image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"{path}: refused, the header claims too many pixels ({e})") from e
    except UnidentifiedImageError as e:
        raise UnreadableImage(f"{path}: not an image file (content is not JPEG/PNG/...); "
                              f"remove it from the dataset") from e
    w, h = img.size
    if w * h > max_pixels:
        raise UnreadableImage(f"{path}: refused, header claims {w}x{h} pixels (limit {max_pixels:,}); "
                              f"resize the image if it is genuine")
    return img


def check_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[ImageMeta, bytes]:
    """Opens and fully decodes an image (at reduced scale for JPEG), returning its metadata and raw bytes.

    Raises:
        UnreadableImage: Empty, not an image, truncated/corrupt, or too large.
    """
    data = path.read_bytes()
    img = _open(data, path, max_pixels)
    meta = ImageMeta(img.width, img.height, img.mode, img.format or "")
    try:
        if img.format == "JPEG":
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise UnreadableImage(f"{path}: corrupt or truncated image ({e}); re-export or remove it") from e
    return meta, data


def to_rgb(img: Image.Image) -> Image.Image:
    """Converts any PIL mode to 8-bit RGB: 16/32-bit scaled by their range, alpha composited over white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decodes an image to RGB with EXIF orientation applied.

    Raises:
        UnreadableImage: As `check_image`.
    """
    path = Path(path)
    img = _open(path.read_bytes(), path, max_pixels)
    try:
        img.load()
        return to_rgb(img)
    except UnreadableImage:
        raise
    except Exception as e:  # noqa: BLE001
        raise UnreadableImage(f"{path}: corrupt or truncated image ({e}); re-export or remove it") from e
