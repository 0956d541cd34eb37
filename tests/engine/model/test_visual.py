"""The first layer's filters as an image: found in any model, drawn with their sign."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.model.catalogue import build_model
from engine.model.visual import filter_grid, first_conv_weight


def test_the_first_convolution_is_found_by_the_config_or_as_the_first_conv2d():
    model = build_model("tf_efficientnet_lite0", pretrained=False)
    assert torch.equal(first_conv_weight(model), model.conv_stem.weight.detach())
    plain = nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 5), nn.Conv2d(4, 8, 3))
    assert first_conv_weight(plain).shape == (4, 3, 5, 5)


def test_filters_are_drawn_around_grey_with_their_sign_on_a_white_grid():
    w = torch.zeros(5, 3, 2, 2)
    w[1] = 1.0  # all positive: white
    w[2] = -1.0  # all negative: black
    w[3, 0] = 1.0  # red only: a red blob on grey
    img = filter_grid(w, cell=4, pad=1)
    cols, cell = 3, 2 * 2 + 1  # ceil(sqrt(5)) columns; 2x2 filters enlarged 2x, and the padding
    assert img.shape == (2 * cell + 1, cols * cell + 1, 3) and img.dtype == np.uint8

    def at(i):
        r, c = divmod(i, cols)
        return img[1 + r * cell, 1 + c * cell]

    assert list(at(0)) == [127, 127, 127]  # zero is grey (no division by zero)
    assert list(at(1)) == [255, 255, 255] and list(at(2)) == [0, 0, 0]
    assert list(at(3)) == [255, 127, 127]
    assert list(img[0, 0]) == [255, 255, 255]  # the grid between filters


def test_a_one_channel_filter_is_drawn_grey():
    img = filter_grid(torch.randn(4, 1, 3, 3), cell=3, pad=1)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
