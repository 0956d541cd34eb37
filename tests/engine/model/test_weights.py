import hashlib
import json
import time

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save, save_file

from engine import cli
from engine.errors import WeightsMismatch, WeightsUnavailable
from engine.model.weights import (
    adapt_first_conv,
    availability,
    create_backbone,
    find_weights,
    install_weights,
    map_in_order,
)


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
    with pytest.raises(WeightsMismatch, match="holds Python objects"):
        create_backbone("resnet18", weights=tmp_path / "evil.pth")


def _hub_client_cache(root, repo: str, data: bytes, filename: str = "model.safetensors"):
    """A hub cache folder as huggingface_hub writes it: the file as a blob named by its SHA-256, a snapshot link to it
    under the commit, and refs/main naming the commit."""
    folder = root / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    sha, commit = hashlib.sha256(data).hexdigest(), "a" * 40
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / sha).write_bytes(data)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / filename).symlink_to(f"../../blobs/{sha}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return sha


def test_hf_cache_is_found_and_used_offline(empty_caches, monkeypatch, capsys):
    src = timm.create_model("resnet18")
    sha = _hub_client_cache(empty_caches, "timm/resnet18.a1_in1k", save(src.state_dict()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main(["backbones", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "resnet18")
    assert row["available"] and row["source"] == "hf-cache"
    model, info = create_backbone("resnet18")
    assert info.source == "hf-cache" and info.sha256 == sha and torch.equal(model.fc.weight, src.fc.weight)


def test_a_snapshot_without_refs_is_not_taken_for_the_current_weights(empty_caches):
    snap = empty_caches / "hf" / "hub" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file(timm.create_model("resnet18").state_dict(), str(snap / "model.safetensors"))
    assert find_weights("resnet18") is None


def test_installed_file_is_checked_stored_and_then_found(empty_caches, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(empty_caches / "tl"))
    src = timm.create_model("resnet18")
    torch.save(src.state_dict(), empty_caches / "r18.pth")
    info = install_weights("resnet18", empty_caches / "r18.pth")
    assert info.path.endswith("resnet18.safetensors") and len(info.sha256) == 64
    model, used = create_backbone("resnet18")
    assert used.source == "weights-dir" and torch.equal(model.conv1.weight, src.conv1.weight)


@pytest.mark.parametrize("case", ["other-architecture", "pickle", "truncated"])
def test_a_bad_upload_is_refused_in_one_line_and_stays_missing(empty_caches, monkeypatch, case):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(empty_caches / "tl"))
    path = empty_caches / "w.pth"
    if case == "other-architecture":
        torch.save(timm.create_model("mobilenetv3_small_100").state_dict(), path)
    elif case == "pickle":
        torch.save({"state_dict": Evil()}, path)
    else:
        path = empty_caches / "w.safetensors"
        path.write_bytes(save(timm.create_model("resnet18").state_dict())[:5000])
    with pytest.raises(WeightsMismatch) as e:
        install_weights("resnet18", path)
    assert "\n" not in str(e.value) and ("(missing)" in str(e.value) or str(path) in str(e.value))
    assert not availability("resnet18")["available"]
    assert not list((empty_caches / "tl").rglob("*.safetensors")) if (empty_caches / "tl").exists() else True


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


def _resnet18_keys(keep) -> dict:
    return {k: v for k, v in timm.create_model("resnet18").state_dict().items() if keep(k)}


@pytest.mark.parametrize(
    "case, says",
    [
        ("first-keys-only", "(missing)"),
        ("first-keys-no-head", "(missing)"),
        ("head-only", "but its classifier"),
        ("no-tensors", "holds no tensors"),
        ("nan", "not finite"),
        ("complex", "complex"),
        ("integer-keys", "not names"),
    ],
)
def test_weights_that_do_not_fit_are_refused_before_any_tensor_is_random(empty_caches, monkeypatch, case, says):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(empty_caches / "tl"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    full = timm.create_model("resnet18").state_dict()
    first = set(list(full)[:20])
    sd = {
        "first-keys-only": lambda: {k: v for k, v in full.items() if k in first or k.startswith("fc.")},
        "first-keys-no-head": lambda: {k: v for k, v in full.items() if k in first},
        "head-only": lambda: {"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)},  # timm: empty = hub
        "no-tensors": lambda: {},
        "nan": lambda: {**full, "layer1.0.conv1.weight": torch.full_like(full["layer1.0.conv1.weight"], float("nan"))},
        "complex": lambda: {**full, "conv1.weight": full["conv1.weight"].to(torch.complex64)},
        "integer-keys": lambda: {0: full["conv1.weight"], 1: full["fc.bias"]},
    }[case]()
    path = empty_caches / "w.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsMismatch) as e:
        install_weights("resnet18", path)
    assert "\n" not in str(e.value) and says in str(e.value), str(e.value)
    assert not availability("resnet18")["available"]


def test_a_file_without_the_classifier_installs_and_says_the_head_is_new(empty_caches, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(empty_caches / "tl"))
    path = empty_caches / "w.safetensors"
    save_file(_resnet18_keys(lambda k: not k.startswith("fc.")), path)
    info = install_weights("resnet18", path)
    assert "the head is new" in info.note
    model, _ = create_backbone("resnet18")
    assert model.num_classes == 0
