"""Augmentation presets: shapes and types, refusals, seeded reproducibility, and no blur that val images never see."""

import dataclasses
import statistics

import pytest
import torch
from conftest import SAMPLE

from engine.model.catalogue import input_spec
from engine.data import augment as aug
from engine.data.batches import AugmentedImages
from engine.data.decode import DECODED

SPEC = input_spec("tf_efficientnet_lite0")


def _sample_images(n: int = 30) -> list[torch.Tensor]:
    key, geom = aug.working_geometry(SPEC)
    paths = sorted(str(p) for p in (SAMPLE / "train").glob("*/*"))[::7][:n]
    return DECODED.get_many(paths, key, geom)


def _detail(x: torch.Tensor) -> float:
    """Mean absolute Laplacian of the grey image: the energy of its finest detail."""
    g = x.float().mean(0)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.abs().mean())


@pytest.mark.parametrize("preset", aug.PRESETS)
def test_presets_give_uint8_crops_of_the_input_size(preset):
    img = _sample_images(1)[0]
    out = aug.train_transform(SPEC, preset, random_erasing=0.5)(img)
    assert out.dtype == torch.uint8 and tuple(out.shape) == SPEC.input_size


def test_basic_keeps_the_fine_detail_of_the_eval_crop():
    """Val images are only resized and cropped; training views that are blurred on top (bilinear rotation halved
    the detail, median 0.65) train a head on features val never has: it lost 4-5 points on plant-leaves-15."""
    images = _sample_images()
    crop = aug.train_transform(SPEC, "none")
    basic = aug.train_transform(SPEC, "basic")
    torch.manual_seed(0)
    ratios = [_detail(basic(img)) / _detail(crop(img)) for img in images]
    assert statistics.median(ratios) > 0.85, ratios


def test_seeded_images_repeat_and_differ_between_seeds():
    key, geom = aug.working_geometry(SPEC)
    paths = sorted(str(p) for p in (SAMPLE / "train").glob("*/*"))[:4]
    images = AugmentedImages(paths, key, geom, aug.train_transform(SPEC, "basic"))
    a, b, c = ([images[(i, seed)] for i in range(4)] for seed in (1, 1, 2))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not all(torch.equal(x, z) for x, z in zip(a, c))


def test_unknown_preset_and_colour_policies_on_other_channel_counts_are_refused():
    with pytest.raises(ValueError, match="unknown augmentation preset 'strong'.*basic"):
        aug.train_transform(SPEC, "strong")
    four = dataclasses.replace(SPEC, input_size=(4, 224, 224), mean=SPEC.mean + (0.5,), std=SPEC.std + (0.5,))
    with pytest.raises(ValueError, match="needs 1- or 3-channel images, these have 4"):
        aug.train_transform(four, "randaugment")
    steps = aug.train_transform(four, "basic").transforms
    assert not any(type(s).__name__ == "ColorJitter" for s in steps)
