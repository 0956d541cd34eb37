"""Features of augmented photos: the head's input for one seeded augmented view of each photo."""

import numpy as np

from engine.model.taps import FINAL
from engine.probe.augmented import augmented_features
from engine.probe.linear import photo_features


def test_one_seeded_view_each_and_the_eval_crop_reads_as_the_probe_does(tiny_folder):
    paths = sorted(str(p) for p in tiny_folder.rglob("*.jpg"))
    plain = augmented_features(paths, "resnet18", (FINAL,), "none", weights="none")
    probed = photo_features(paths, "resnet18", weights="none").x("photo", (FINAL,))
    assert plain.shape == probed.shape == (len(paths), 512)
    assert np.allclose(plain, probed, atol=1e-4)  # "none" is the eval crop: the same features as the probe's
    strong = augmented_features(paths, "resnet18", (FINAL,), "randaugment", weights="none")
    assert np.array_equal(strong, augmented_features(paths, "resnet18", (FINAL,), "randaugment", weights="none"))
    assert not np.allclose(strong, plain, atol=1e-3)  # the augmentation changed what the backbone sees
    other = augmented_features(paths, "resnet18", (FINAL,), "randaugment", weights="none", seed=1)
    assert not np.array_equal(strong, other)
