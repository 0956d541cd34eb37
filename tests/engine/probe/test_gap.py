"""The domain-gap report: a shifted copy of a set is further from the training photos than a re-split of them."""

import pytest
from PIL import Image, ImageFilter, ImageOps

from conftest import SAMPLE
from engine.data.dataset import load_dataset
from engine.data.target import load_target
from engine.probe.gap import domain_gap


def _copy(src_files, dst, change=None):
    dst.mkdir(parents=True)
    for i, f in enumerate(src_files):
        img = Image.open(f).convert("RGB")
        (change(img) if change else img).save(dst / f"p{i:03d}.jpg", quality=92)
    return dst


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Training photos (4 classes x 12) and 48 other photos of the same classes: as they are, colour-inverted and
    blurred."""
    root = tmp_path_factory.mktemp("gap")
    classes = sorted(p for p in (SAMPLE / "train").iterdir())[:4]
    for cls in classes:
        files = sorted(cls.iterdir())
        _copy(files[:12], root / "data" / cls.name)
    others = [f for cls in classes for f in sorted(cls.iterdir())[12:24]]
    return {
        "data": root / "data",
        "resplit": _copy(others, root / "resplit"),
        "inverted": _copy(others, root / "inverted", ImageOps.invert),
        "blurred": _copy(others, root / "blurred", lambda im: im.filter(ImageFilter.GaussianBlur(6))),
    }


def test_a_shifted_copy_is_further_than_a_re_split_of_the_same_photos(photos):
    ds = load_dataset(photos["data"], val_fraction=0.25, test_fraction=0)
    gaps = {k: domain_gap(ds, "tf_efficientnet_lite0", load_target(photos[k], ds)) for k in photos if k != "data"}
    far = {k: g.furthest.domain_acc for k, g in gaps.items()}
    mmd = {k: max(s.mmd for s in g.stages) for k, g in gaps.items()}
    assert far["inverted"] > far["resplit"] and far["blurred"] > far["resplit"], far
    assert mmd["inverted"] > mmd["resplit"] and mmd["blurred"] > mmd["resplit"], mmd
    inverted = gaps["inverted"]
    assert len(inverted.stages) >= 5 and "differ" in inverted.sentence and inverted.furthest.name in inverted.sentence
    assert inverted.target.n == 48 and inverted.source.n == len(ds.train)


def test_without_target_photos_the_training_photos_are_compared_with_the_pretraining(photos, tmp_path):
    ds = load_dataset(photos["data"], val_fraction=0.25, test_fraction=0)
    gap = domain_gap(ds, "tf_efficientnet_lite0")
    assert gap.stages == [] and "pretrained" in gap.sentence and gap.target.median_size == (224, 224)
    grey = tmp_path / "grey"
    for cls in sorted(photos["data"].iterdir()):
        _copy(sorted(cls.iterdir()), grey / cls.name, lambda im: ImageOps.grayscale(im).convert("RGB"))
    gray_gap = domain_gap(load_dataset(grey, val_fraction=0.25, test_fraction=0), "tf_efficientnet_lite0")
    assert gray_gap.source.grey_share == 1.0 and "grey" in gray_gap.sentence
