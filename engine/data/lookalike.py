"""Photos that are one photo: a perceptual signature that survives resizing, re-encoding, a slight crop and a mirror.

A photo's signature is the low-frequency content of its grey picture: shrunk to `SIZE` x `SIZE` pixels, its 2-D
cosine transform (DCT), the `KEEP` x `KEEP` lowest frequencies without the mean, centred and scaled to unit length.
That is the perceptual hash of imagehash's `phash` (BSD) before it is cut to bits: kept as numbers, two copies of one
photo score near 1 (the dot product of their signatures) whatever size or JPEG quality each was saved at, where the
bits of a flat picture flip on noise.

A crop moves everything, so each photo also keeps the signatures of `len(BOXES)` crops of itself (up to `MAX_CROP` of
each side, in steps of half of it), and a mirrored copy of its whole. Two photos' similarity is the best dot product
of one's crops with the other's whole, either way round and either way mirrored: a copy cut from a photo matches the
crop of the photo that kept the same part.

Measured by bench/lookalike.py (results-lookalike-cpu.txt: 60 training photos of each shared set copied 8 ways, and
400 distinct ones): plant copies resized to 50-90%, saved at JPEG quality 60 or mirrored score at least 0.999, crops
of up to 10% at least 0.913 (median 0.980); two different plant photos at most 0.945. Flat 64-pixel satellite tiles
(a sea, a field) have little low frequency to tell them apart (a copy at JPEG quality 60: median 0.998, as low as
0.473): the check weighs this similarity with the features' (`engine.probe.check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn

from engine.data.imageio import MAX_PIXELS, UnreadableImage, array_of, load_image
from engine.progress import QUIET_STEP, Step

SIZE = 32  # the grey picture the transform reads
KEEP = 16  # the lowest frequencies kept along each side (KEEP * KEEP - 1 numbers; the mean is dropped)
WORK = 128  # photos are first shrunk to at most this many pixels a side (box filter): crops are cut from it
MAX_CROP = 0.1  # the share of a side a copy may have lost
_SIDES = ((0.0, 0.0), (MAX_CROP / 2, 0.0), (0.0, MAX_CROP / 2), (MAX_CROP, 0.0), (0.0, MAX_CROP), (MAX_CROP / 2,) * 2)
BOXES = tuple((left, top, right, bottom) for left, right in _SIDES for top, bottom in _SIDES)  # shares cut off


@dataclass(frozen=True)
class Signatures:
    """The signatures of a list of photos: `crops[i, k]` photo i cut by `BOXES[k]` (`BOXES[0]` is the whole),
    `mirrored[i]` its mirror image whole; rows of a photo that could not be read are zero (similar to nothing)."""

    crops: np.ndarray  # (n, len(BOXES), KEEP * KEEP - 1) float16
    mirrored: np.ndarray  # (n, KEEP * KEEP - 1) float16
    unreadable: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.crops)

    def wholes(self) -> np.ndarray:
        """(n, 2, d): each photo whole and mirrored."""
        return np.stack([self.crops[:, 0], self.mirrored], 1)

    def similarity(self, i: int, j: int) -> float:
        """The similarity of photos i and j (as `similar_pairs` computes it)."""
        whole_i = np.stack([self.crops[i, 0], self.mirrored[i]]).astype(np.float32)
        whole_j = np.stack([self.crops[j, 0], self.mirrored[j]]).astype(np.float32)
        a = self.crops[i].astype(np.float32) @ whole_j.T
        b = self.crops[j].astype(np.float32) @ whole_i.T
        return float(max(a.max(), b.max()))


def _vector(grey: np.ndarray) -> np.ndarray:
    c = dctn(grey, norm="ortho")[:KEEP, :KEEP].ravel()[1:]
    c = c - c.mean()
    return c / max(float(np.linalg.norm(c)), 1e-6)


def _grey(path: str | Path) -> Image.Image:
    """The photo as a grey picture of at most `WORK` pixels a side (a .npy array: the mean of its channels), read
    under the same size checks as every photo."""
    if Path(path).suffix.lower() != ".npy":
        found = load_image(path, chans=1, max_pixels=MAX_PIXELS)
    else:
        arr = array_of(Path(path)).astype(np.float32).mean(2)
        span = float(arr.max() - arr.min()) or 1.0
        found = Image.fromarray(((arr - arr.min()) / span * 255).astype(np.uint8), "L")
    found.thumbnail((WORK, WORK), Image.Resampling.BOX)
    return found


def signature(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(crops, mirrored) of one grey picture: one signature per box of `BOXES`, and the whole mirrored."""
    w, h = img.size
    crops = []
    for left, top, right, bottom in BOXES:
        box = (round(left * w), round(top * h), max(round(w - right * w), 1), max(round(h - bottom * h), 1))
        crops.append(_vector(np.asarray(img.crop(box).resize((SIZE, SIZE), Image.Resampling.BOX), np.float32)))
    whole = np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BOX), np.float32)
    return np.stack(crops), _vector(whole[:, ::-1])


def signatures(paths: list[str], progress: Step = QUIET_STEP) -> Signatures:
    """The signatures of `paths`, read one photo at a time (a photo that cannot be read is listed, not raised)."""
    d = KEEP * KEEP - 1
    crops = np.zeros((len(paths), len(BOXES), d), np.float16)
    mirrored = np.zeros((len(paths), d), np.float16)
    unreadable = []
    for i, path in enumerate(paths):
        try:
            crops[i], mirrored[i] = signature(_grey(path))
        except (UnreadableImage, OSError, ValueError):
            unreadable.append(str(path))
        if i % 64 == 0:
            progress(i / max(len(paths), 1))
    progress(1.0)
    return Signatures(crops, mirrored, tuple(unreadable))


def similar_pairs(sig: Signatures, threshold: float, keep: int = 2000) -> list[tuple[int, int, float]]:
    """(i, j, similarity) of the `keep` most similar pairs of photos (i < j) whose similarity is at least
    `threshold`, the most similar first. Each block of photos' crops is compared with every photo whole (memory
    linear in their number); a pair is found from whichever of its two photos holds the matching crop."""
    n, k, d = sig.crops.shape
    if n < 2:
        return []
    wholes = sig.wholes().astype(np.float32).reshape(-1, d)  # (2n, d)
    block = max(1, 2**24 // (n * k * 2))
    found: dict[tuple[int, int], float] = {}
    for s in range(0, n, block):
        e = min(s + block, n)
        best = (sig.crops[s:e].astype(np.float32).reshape(-1, d) @ wholes.T).reshape(e - s, k, n, 2).max((1, 3))
        best[np.arange(e - s), np.arange(s, e)] = -1.0  # a photo and itself
        for r, c in zip(*np.nonzero(best >= threshold)):
            pair = (min(s + int(r), int(c)), max(s + int(r), int(c)))
            found[pair] = max(found.get(pair, -1.0), float(best[r, c]))
        if len(found) > 4 * keep:
            found = dict(sorted(found.items(), key=lambda t: -t[1])[:keep])
    pairs = [(i, j, sig.similarity(i, j)) for i, j in found]  # exact: a pair kept from one side has its best
    return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))[:keep]
