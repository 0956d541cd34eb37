import pytest
import numpy as np
import torch

from engine.features import DecodeCache, FeatureSet, InputSpec, extract, feature_key, load_cached, save_cached
from engine.weights import create_backbone


def test_input_spec_from_the_backbone_config():
    spec = InputSpec.for_backbone("tf_efficientnet_lite0")
    assert spec.input_size == (3, 224, 224) and spec.mean == (0.5, 0.5, 0.5) and spec.interpolation == "bicubic"
    assert spec.key() != InputSpec.for_backbone("tf_efficientnet_lite1").key()


def test_geometry_and_normalize(tiny_folder):
    spec = InputSpec.for_backbone("tf_efficientnet_lite0")
    from engine.imageio import load_rgb
    img = spec.geometry()(load_rgb(next(tiny_folder.rglob("*.jpg"))))
    assert img.size == (224, 224)
    x = spec.normalize(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8))
    assert torch.allclose(x, torch.ones_like(x)) and x.is_contiguous(memory_format=torch.channels_last)


def test_decode_cache_decodes_once(tiny_folder, monkeypatch):
    import engine.features as f
    calls = []
    real = f.load_image
    monkeypatch.setattr(f, "load_image", lambda p, c: calls.append(p) or real(p, c))
    cache, spec = DecodeCache(), InputSpec.for_backbone("tf_efficientnet_lite0")
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:4]]
    cache.get_many(paths, spec.key(), spec.geometry())
    out = cache.get_many(paths, spec.key(), spec.geometry())
    assert len(calls) == 4 and out[0].dtype == torch.uint8 and out[0].shape == (3, 224, 224)


def test_extract_gives_final_and_stage_features(tiny_folder):
    model, _ = create_backbone("tf_efficientnet_lite0")
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:5]]
    final, stages, names = extract(model, InputSpec.for_backbone("tf_efficientnet_lite0"), paths, batch_size=2)
    assert final.shape == (5, 1280) and len(stages) == len(names) == 8
    assert [s.shape[1] for s in stages] == [32, 16, 24, 40, 80, 112, 192, 1280]


def test_cache_round_trip_and_key_sensitivity():
    spec = InputSpec.for_backbone("tf_efficientnet_lite0")
    k = feature_key("a", "sha", "data", spec, "fp32")
    assert k != feature_key("a", "sha", "data2", spec, "fp32") != feature_key("a", "sha", "data", spec, "bfloat16")
    fs = FeatureSet(np.ones((3, 4), np.float32), [np.zeros((3, 2), np.float32)], ["s0"], np.array([0, 1, 0]),
                    np.array(["train", "val", "train"]), cached=False)
    save_cached(k, fs)
    back = load_cached(k)
    assert back.cached and np.array_equal(back.final, fs.final) and back.stage_names == ["s0"]
    assert load_cached("nope") is None


def test_other_channel_counts_keep_the_rgb_contract():
    rgb = InputSpec.for_backbone("resnet18")
    grey, two, five = rgb.with_chans(1), rgb.with_chans(2), rgb.with_chans(5)
    assert grey.input_size == (1, 224, 224) and grey.mean == pytest.approx((sum(rgb.mean) / 3,))
    assert two.mean == rgb.mean[:2] and five.std[:3] == rgb.std and len(five.std) == 5
    assert len({rgb.key(), grey.key(), two.key(), five.key()}) == 4  # cached features never mix channel counts


def test_grey_images_through_the_adapted_model_give_the_features_of_their_rgb_copies(tiny_folder, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")  # the comparison is exact up to fp32 rounding
    from PIL import Image
    paths = []
    for i, src in enumerate(sorted(tiny_folder.rglob("*.jpg"))[:3]):
        paths.append(str(tmp_path / f"g{i}.png"))
        Image.open(src).convert("L").save(paths[-1])
    rgb_model, _ = create_backbone("tf_efficientnet_lite0")
    grey_model, _ = create_backbone("tf_efficientnet_lite0", in_chans=1)
    spec = InputSpec.for_backbone("tf_efficientnet_lite0")
    rgb_final, _, _ = extract(rgb_model, spec, paths, batch_size=3, device=torch.device("cpu"))
    grey_final, _, _ = extract(grey_model, spec.with_chans(1), paths, batch_size=3, device=torch.device("cpu"))
    assert np.allclose(rgb_final, grey_final, atol=1e-4)
