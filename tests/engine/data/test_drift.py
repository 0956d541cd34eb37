"""engine.data.drift: plain warnings when a photo is far from the training photos in size or colour."""

import numpy as np

from engine.data.drift import drift_warnings
from engine.data.spec import InputSpec

SPEC = InputSpec((3, 32, 32), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
STATS = {"colour_mean": [120.0, 120.0, 120.0], "colour_std": [10.0, 10.0, 10.0], "median_size": [256, 256]}


def test_a_photo_like_the_training_photos_gets_no_warning():
    assert drift_warnings(np.full((256, 256, 3), 125, dtype=np.uint8), SPEC, STATS) == []
    assert drift_warnings(np.zeros((8, 8, 3), dtype=np.uint8), SPEC, None) == []  # no statistics: nothing to say


def test_a_tiny_dark_photo_is_warned_about_its_size_and_its_colours():
    warnings = drift_warnings(np.full((40, 50, 3), 10, dtype=np.uint8), SPEC, STATS)
    assert warnings[0].startswith("This photo is 50x40 pixels; the training photos were about 256x256.")
    assert "11.0 standard deviations" in warnings[1]
