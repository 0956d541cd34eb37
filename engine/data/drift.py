"""What the training photos looked like (average colour, size), and warnings when a new photo is far from them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.data.dataset import Dataset
from engine.data.decode import load_images
from engine.data.spec import InputSpec, to_tensor


def data_stats(ds: Dataset, spec: InputSpec) -> dict:
    """Per-channel mean/std of the training images' average colour and their median size, for drift warnings."""
    paths = [it.path for it in ds.train]
    means = np.concatenate(
        [
            np.stack([t.float().mean(dim=(1, 2)).numpy() for t in load_images(spec, paths[b : b + 256])])
            for b in range(0, len(paths), 256)
        ]
    )
    sizes = np.array([[ds.meta[p].width, ds.meta[p].height] for p in paths])
    return {
        "colour_mean": means.mean(0).tolist(),
        "colour_std": (means.std(0) + 1e-3).tolist(),
        "median_size": np.median(sizes, 0).tolist(),
    }


def drift_warnings(img: Image.Image | np.ndarray, spec: InputSpec, stats: dict | None) -> list[str]:
    """Plain-language warnings when a photo's size or colour is far from the training data."""
    if not stats:
        return []
    out = []
    w, h = (img.shape[1], img.shape[0]) if isinstance(img, np.ndarray) else img.size
    mw, mh = stats["median_size"]
    if max(w / mw, h / mh) > 4 or min(w / mw, h / mh) < 0.25:
        out.append(
            f"This photo is {w}x{h} pixels; the training photos were about {mw:.0f}x{mh:.0f}. "
            f"Predictions may be less reliable."
        )
    x = to_tensor(img, spec.geometry()).float().mean(dim=(1, 2)).numpy()
    z = np.abs((x - np.array(stats["colour_mean"])) / np.array(stats["colour_std"]))
    if z.max() > 3:
        out.append(
            f"This photo's colours are far from the training photos' ({z.max():.1f} standard deviations): "
            f"it may show something the model has never seen."
        )
    return out
