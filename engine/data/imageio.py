"""Reading one image safely: EXIF orientation, any mode to RGB (or to 1, 2 or 4 channels), 16-bit scaled,
decompression bombs refused. Images of more than 4 channels (multispectral) are .npy arrays of shape (H, W, C).

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
MAX_ASPECT = 100  # longest side over shortest: a panorama is 4; at 100 the eval resize makes 22,400 x 224 (60 MB of
# floats), while a 500,000 x 128 strip within MAX_PIXELS would become 875,000 x 224 x 3 floats (2.4 GB)
MAX_FILE_BYTES = 2**30  # no image within MAX_PIXELS needs more (8 channels of 16 bits); a larger file is refused unread
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".npy"}
IMAGE_TYPES = tuple(sorted(e[1:] for e in IMAGE_EXTENSIONS))  # the same, as file uploaders name them
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # PIL mode for each channel count an image file can hold


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
        raise UnreadableImage(
            f"{path}: not an image file (content is not JPEG/PNG/...); remove it from the dataset"
        ) from e
    w, h = img.size
    if w * h > max_pixels:
        raise UnreadableImage(
            f"{path}: refused, header claims {w}x{h} pixels (limit {max_pixels:,}); resize the image if it is genuine"
        )
    _check_aspect(w, h, path)
    return img


def _check_aspect(w: int, h: int, path: Path) -> None:
    """Refuses an image far longer than wide (or the reverse): resized to the network's input it would not fit in
    memory."""
    if min(w, h) and max(w, h) / min(w, h) > MAX_ASPECT:
        raise UnreadableImage(
            f"{path}: refused, {w}x{h} pixels is a strip (sides more than {MAX_ASPECT}:1); crop it to the subject"
        )


def _array(data: bytes, path: Path, max_pixels: int) -> np.ndarray:
    """A .npy image as (H, W, C) uint8: integers above 255 scaled by their 16-bit range, floats taken as 0–1;
    pickles are refused."""
    if not data:
        raise UnreadableImage(f"{path}: empty file (0 bytes); delete it or replace it with the real array")
    _check_npy_header(data, path, max_pixels)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:
        raise UnreadableImage(f"{path}: not a readable .npy array ({e}); save it with numpy.save") from e
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.dtype.kind not in "uif" or arr.shape[0] * arr.shape[1] > max_pixels:
        raise UnreadableImage(
            f"{path}: a .npy image must be a numeric (H, W, C) array of at most {max_pixels:,} "
            f"pixels, got shape {arr.shape} {arr.dtype}"
        )
    if arr.dtype == np.uint8:
        return arr
    return to_u8(arr, 1.0 if arr.dtype.kind == "f" else 65535.0 if arr.max() > 255 else 255.0)


def _check_npy_header(data: bytes | io.BufferedIOBase, path: Path, max_pixels: int, size: int | None = None) -> None:
    """Refuses a .npy whose header claims more pixels than allowed (or more bytes than the file holds), before any
    array is allocated: from its bytes, or from an open file of `size` bytes (only the header is read)."""
    f = io.BytesIO(data) if isinstance(data, bytes) else data
    size = len(data) if isinstance(data, bytes) else size
    try:
        version = np.lib.format.read_magic(f)
        shape, _, dtype = (
            np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
        )
    except Exception as e:
        raise UnreadableImage(f"{path}: not a readable .npy array ({e}); save it with numpy.save") from e
    if dtype.hasobject:
        raise UnreadableImage(f"{path}: a .npy of Python objects (a pickle) is refused; save a numeric array")
    pixels = int(np.prod(shape[:2])) if len(shape) >= 2 else int(np.prod(shape))
    if pixels > max_pixels or len(shape) > 3:
        raise UnreadableImage(
            f"{path}: refused, the header claims shape {shape} (limit {max_pixels:,} pixels of "
            f"(H, W, C)); resize the array if it is genuine"
        )
    if len(shape) >= 2:
        _check_aspect(shape[1], shape[0], path)
    if int(np.prod(shape)) * dtype.itemsize > size:
        raise UnreadableImage(
            f"{path}: the header claims shape {shape} but the file is {size:,} bytes; the file is truncated, re-save it"
        )


def read_checked(path: Path, max_pixels: int = MAX_PIXELS) -> bytes:
    """The file's bytes, once its size (and a .npy's header) show that it can be an image within the limits: a file
    that claims a huge array is refused after reading its header, not all of it."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableImage(
            f"{path}: {size / 2**30:.1f} GiB, more than an image of {max_pixels:,} pixels can need "
            f"({MAX_FILE_BYTES / 2**30:.0f} GiB); resize it"
        )
    if path.suffix.lower() == ".npy" and size:
        with open(path, "rb") as f:
            _check_npy_header(f, path, max_pixels, size)
    return path.read_bytes()


def to_u8(arr: np.ndarray, hi: float) -> np.ndarray:
    """Values in [0, hi] scaled to uint8, rounded and clipped."""
    return np.clip(arr.astype(np.float32) / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)


def check_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[ImageMeta, bytes]:
    """Opens and fully decodes an image (at reduced scale for JPEG), returning its metadata and raw bytes.

    Raises:
        UnreadableImage: Empty, not an image, truncated/corrupt, or too large.
    """
    data = read_checked(path, max_pixels)
    if path.suffix.lower() == ".npy":
        arr = _array(data, path, max_pixels)
        return ImageMeta(arr.shape[1], arr.shape[0], f"{arr.shape[2]}ch", "NPY"), data
    img = _open(data, path, max_pixels)
    meta = ImageMeta(img.width, img.height, img.mode, img.format or "")
    try:
        if img.format == "JPEG":
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
    except Exception as e:
        raise UnreadableImage(f"{path}: corrupt or truncated image ({e}); re-export or remove it") from e
    return meta, data


def to_rgb(img: Image.Image) -> Image.Image:
    """Converts any PIL mode to 8-bit RGB: 16/32-bit scaled by their range, alpha composited over white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(to_u8(arr, hi), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def to_mode(img: Image.Image, chans: int) -> Image.Image:
    """`img` with `chans` channels: RGB as `to_rgb`; 1 = luminance, 2 = luminance + alpha, 4 = RGB + alpha."""
    if chans == 3:
        return to_rgb(img)
    if chans not in MODES:
        raise UnreadableImage(
            f"{getattr(img, 'filename', 'image')}: an image file holds at most 4 channels; save "
            f"{chans}-channel images as .npy arrays of shape (H, W, {chans})"
        )
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = to_rgb(img)
    return img.convert(MODES[chans])


def load_image(source: str | Path | bytes, chans: int = 3, max_pixels: int = MAX_PIXELS) -> Image.Image | np.ndarray:
    """An image file (or its bytes) with `chans` channels: a PIL image, or an (H, W, C) uint8 array for .npy.

    Raises:
        UnreadableImage: As `check_image`, or a .npy array whose channel count is not `chans`.
    """
    path = Path("upload") if isinstance(source, bytes) else Path(source)
    data = source if isinstance(source, bytes) else read_checked(path, max_pixels)
    if path.suffix.lower() == ".npy" or data[:6] == b"\x93NUMPY":
        arr = _array(data, path, max_pixels)
        if arr.shape[2] != chans:
            raise UnreadableImage(
                f"{path}: {arr.shape[2]} channels, the model takes {chans}; set in_chans to match or remove the file"
            )
        return arr
    img = _open(data, path, max_pixels)
    try:
        img.load()
        return to_mode(img, chans)
    except UnreadableImage:
        raise
    except Exception as e:
        raise UnreadableImage(f"{path}: corrupt or truncated image ({e}); re-export or remove it") from e


def array_of(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A .npy image as its (H, W, C) array, read under the size and header checks every photo gets.

    Raises:
        UnreadableImage: As `check_image`.
    """
    return _array(read_checked(path, max_pixels), path, max_pixels)


def viewable(path: str | Path) -> str | Image.Image:
    """Something a browser can show for an image file: the path itself, or for a .npy array an RGB picture of its
    first three channels (its first channel as grey when it has fewer)."""
    if Path(path).suffix.lower() != ".npy":
        return str(path)
    arr = array_of(Path(path))
    return Image.fromarray(arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2), "RGB")
