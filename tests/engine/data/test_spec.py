"""The input contract: from timm's config, for any channel count, stored and keyed, and applied as it says."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from engine.data.spec import InputSpec, to_tensor
from engine.model.catalogue import input_spec

RGB = input_spec("tf_efficientnet_lite0")


def test_the_contract_survives_its_dict_and_its_key_names_it():
    assert InputSpec.from_dict(RGB.to_dict()) == RGB
    assert RGB.key() == InputSpec.from_dict(RGB.to_dict()).key()
    assert RGB.whole_image().crop_pct == 1.0 and RGB.whole_image().key() != RGB.key()


def test_other_channel_counts_take_statistics_matching_the_adapted_first_convolution():
    mean, std = RGB.mean, RGB.std
    grey = RGB.with_chans(1)
    assert grey.input_size == (1, *RGB.input_size[1:]) and grey.in_chans == 1
    assert grey.mean == pytest.approx((sum(mean) / 3,)) and grey.std == pytest.approx((sum(std) / 3,))
    assert RGB.with_chans(2).mean == mean[:2]
    assert RGB.with_chans(5).mean == pytest.approx(mean + (sum(mean) / 3,) * 2)
    assert RGB.with_chans(3) is RGB
    with pytest.raises(ValueError, match="in_chans must be at least 1"):
        RGB.with_chans(0)
    with pytest.raises(ValueError, match="adapted from a 3-channel contract"):
        grey.with_chans(4)


def test_normalize_maps_the_mean_to_zero_and_keeps_channels_last():
    pixel = torch.tensor([round(m * 255) for m in RGB.mean], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    out = RGB.normalize(pixel.contiguous())
    assert out.abs().max() < 0.02 and out.is_contiguous(memory_format=torch.channels_last)
    white = RGB.normalize(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8))
    assert white.flatten().tolist() == pytest.approx([(1 - m) / s for m, s in zip(RGB.mean, RGB.std)], rel=1e-5)


def test_the_geometry_resizes_and_crops_to_the_input_size_for_images_and_arrays():
    size = RGB.input_size[-1]
    img = Image.new("RGB", (400, 300), (10, 200, 30))
    out = to_tensor(img, RGB.geometry())
    assert out.shape == (3, size, size) and out.dtype == torch.uint8 and out[:, 0, 0].tolist() == [10, 200, 30]
    array = to_tensor(torch.zeros(300, 400, 3, dtype=torch.uint8).numpy(), RGB.geometry())
    assert array.shape == (3, size, size)
