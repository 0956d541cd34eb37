import time

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from engine.errors import WeightsMismatch, WeightsUnavailable
from engine.model.weights import adapt_first_conv, availability, create_backbone, find_weights, map_in_order


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def _top(model, img, k=2):
    cfg = timm.data.resolve_model_data_config(model)
    x = timm.data.create_transform(**cfg)(Image.fromarray(img)).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    info = timm.data.ImageNetInfo()
    return [info.index_to_description(i) for i in probs.topk(k).indices.tolist()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_bundled_lite_weights_recognise_imagenet_photos(name):
    skimage_data = pytest.importorskip("skimage.data")
    model, info = create_backbone(name)
    model.eval()
    assert info.source == "bundled" and len(info.sha256) == 64
    assert _top(model, skimage_data.coffee())[0] == "espresso"
    cat = _top(model, skimage_data.chelsea())
    assert "Egyptian cat" in cat  # Lite0 splits 0.39/0.36 between tiger cat and Egyptian cat; Lite1/2 say Egyptian
    if name != "tf_efficientnet_lite0":
        assert cat[0] == "Egyptian cat"


def test_missing_weights_say_how_to_provide_them(empty_caches):
    t0 = time.perf_counter()
    avail = availability("convnext_tiny")
    assert time.perf_counter() - t0 < 0.5  # file-system look-ups only, never the network
    assert not avail["available"] and "--weights" in avail["how_to"]
    with pytest.raises(WeightsUnavailable, match="convnext_tiny.*--weights"):
        create_backbone("convnext_tiny")


def test_explicit_scratch_is_the_only_random_init():
    _, info = create_backbone("resnet18", weights="none")
    assert info.source == "scratch" and info.sha256 is None


def test_user_file_with_other_head_loads_and_drops_the_head(tmp_path):
    src = timm.create_model("resnet18", num_classes=7)
    save_file(src.state_dict(), str(tmp_path / "r18.safetensors"))
    model, info = create_backbone("resnet18", weights=tmp_path / "r18.safetensors")
    assert info.source == "file" and "fc.weight" in info.note
    assert torch.equal(model.conv1.weight, src.conv1.weight)


def test_user_file_that_does_not_fit_names_the_keys(tmp_path):
    sd = timm.create_model("resnet18").state_dict()
    sd["layer1.0.conv1.weight"] = torch.zeros(3, 3)
    del sd["layer4.1.bn2.bias"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatch, match=r"layer4\.1\.bn2\.bias \(missing\).*layer1\.0\.conv1\.weight \(shape"):
        create_backbone("resnet18", weights=tmp_path / "bad.pth")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    torch.save({"state_dict": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsMismatch, match="weights-only"):
        create_backbone("resnet18", weights=tmp_path / "evil.pth")


def test_hf_cache_is_found_and_used_offline(empty_caches):
    snap = empty_caches / "hf" / "hub" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    src = timm.create_model("resnet18")
    save_file(src.state_dict(), str(snap / "model.safetensors"))
    assert find_weights("resnet18")[0] == "hf-cache"
    model, info = create_backbone("resnet18")
    assert info.source == "hf-cache" and torch.equal(model.fc.weight, src.fc.weight)


def test_in_order_mapping_checks_shapes():
    with pytest.raises(WeightsMismatch, match="does not fit"):
        map_in_order({"a": torch.zeros(2), "b": torch.zeros(3)}, {"x": torch.zeros(2), "y": torch.zeros(4)})


@pytest.mark.parametrize("chans", [1, 2, 4, 5])
def test_first_conv_adaptation(chans):
    w = torch.randn(8, 3, 3, 3)
    a = adapt_first_conv(w, chans)
    assert a.shape == (8, chans, 3, 3)
    if chans == 1:  # a grey image gives the activations of its RGB copy
        x = torch.randn(1, 1, 5, 5)
        torch.testing.assert_close(torch.conv2d(x, a), torch.conv2d(x.repeat(1, 3, 1, 1), w))


def test_a_grey_image_gives_the_pretrained_rgb_models_logits_through_the_adapted_convolution():
    rgb, _ = create_backbone("tf_efficientnet_lite0")
    grey, info = create_backbone("tf_efficientnet_lite0", in_chans=1)
    assert grey.conv_stem.weight.shape[1] == 1 and "adapted from RGB to 1 channels" in info.note
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(grey.eval()(x), rgb.eval()(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)
    four, _ = create_backbone("tf_efficientnet_lite0", in_chans=4)
    assert four.conv_stem.weight.shape[1] == 4 and four.eval()(torch.randn(1, 4, 96, 96)).shape == (1, 1000)
