"""Frozen features: the input contract, the bounded decode cache, every tap streamed to disk for both views."""

import numpy as np
import pytest
import torch

from engine.model.catalogue import input_spec
from engine.data.decode import DecodeCache, load_images
from engine.data.imageio import load_image
from engine.data.spec import InputSpec
from engine.model.taps import FINAL
from engine.model.weights import create_backbone
from engine.probe.features import compute_cached, extract, feature_key, load_cached

LITE0 = "tf_efficientnet_lite0"


def test_input_spec_from_the_backbone_config():
    spec = input_spec(LITE0)
    assert spec.input_size == (3, 224, 224) and spec.mean == (0.5, 0.5, 0.5) and spec.interpolation == "bicubic"
    assert spec.key() != input_spec("tf_efficientnet_lite1").key() != spec.whole_image().key()
    assert InputSpec.from_dict(spec.to_dict()) == spec


def test_geometry_and_normalize(tiny_folder):
    spec = input_spec(LITE0)
    img = spec.geometry()(load_image(next(tiny_folder.rglob("*.jpg"))))
    assert img.size == (224, 224)
    x = spec.normalize(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8))
    assert torch.allclose(x, torch.ones_like(x)) and x.is_contiguous(memory_format=torch.channels_last)


def test_decode_cache_decodes_once_and_stays_within_its_bytes(tiny_folder, monkeypatch):
    import engine.data.decode as d

    calls = []
    real = d.load_image
    monkeypatch.setattr(d, "load_image", lambda p, c: calls.append(p) or real(p, c))
    spec = input_spec(LITE0)
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:4]]
    cache = DecodeCache(max_bytes=10**9)
    cache.get_many(paths, spec.key(), spec.geometry())
    out = cache.get_many(paths, spec.key(), spec.geometry())
    assert len(calls) == 4 and out[0].dtype == torch.uint8 and out[0].shape == (3, 224, 224)
    small = DecodeCache(max_bytes=2 * 3 * 224 * 224)  # room for two images
    assert len(small.get_many(paths, spec.key(), spec.geometry())) == 4 and small.nbytes <= small.max_bytes


def test_extract_writes_every_tap_for_the_image_and_its_mirror(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")
    model, _ = create_backbone(LITE0)
    spec = input_spec(LITE0)
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:5]]
    taps = extract(model, spec, paths, tmp_path / "f", views=2, batch_size=2, device=torch.device("cpu"))
    assert taps == tuple(range(8)) + (FINAL,)
    final = np.load(tmp_path / "f" / "final.npy")
    assert final.shape == (5, 2, 1280) and np.load(tmp_path / "f" / "tap7.npy").shape == (5, 2, 320)
    x = spec.normalize(torch.stack(load_images(spec, paths[:1])))
    with torch.no_grad():
        image, mirror = model.forward_head(model.forward_features(torch.cat([x, x.flip(-1)])), pre_logits=True)
    assert np.allclose(final[0, 0], image.numpy(), atol=1e-4) and np.allclose(final[0, 1], mirror.numpy(), atol=1e-4)
    assert not np.allclose(final[0, 0], final[0, 1], atol=1e-2)


def test_the_cache_is_written_once_and_read_memory_mapped_beyond_its_budget(tiny_folder, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "64K")  # the features (4 images, every stage) are larger than their share
    spec = input_spec(LITE0)
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:4]]
    labels, splits = np.array([0, 1, 0, 1]), np.array(["train", "train", "val", "val"])
    key = feature_key(LITE0, "sha", "data-x", spec, "fp32", 2)
    assert (
        key
        != feature_key(LITE0, "sha", "data-y", spec, "fp32", 2)
        != feature_key(LITE0, "sha", "data-x", spec, "bfloat16", 2)
    )
    built = []
    fs = compute_cached(key, lambda: built.append(1) or create_backbone(LITE0)[0], spec, paths, labels, splits)
    again = compute_cached(key, lambda: built.append(1) or create_backbone(LITE0)[0], spec, paths, labels, splits)
    assert built == [1] and not fs.cached and again.cached
    assert isinstance(again.arrays[FINAL], np.memmap) and np.array_equal(again.arrays[FINAL], fs.arrays[FINAL])
    assert again.x("val", (5, FINAL), view=1).shape == (2, 112 + 1280) and list(again.y("train")) == [0, 1]
    assert load_cached("nope") is None


def test_two_probes_of_the_same_photos_at_once_build_the_cache_once(tiny_folder):
    """The dashboard can probe a dataset while a run on it plans: the second waits for the first and reads its cache
    (before, each cleared the other's half-written folder and one of them failed)."""
    import threading

    spec = input_spec(LITE0)
    paths = [str(p) for p in sorted(tiny_folder.rglob("*.jpg"))[:4]]
    labels, splits = np.array([0, 1, 0, 1]), np.array(["train", "train", "val", "val"])
    key = feature_key(LITE0, "sha", "data-concurrent", spec, "fp32", 1)
    built, results, errors = [], [], []

    def probe() -> None:
        try:
            results.append(
                compute_cached(
                    key, lambda: built.append(1) or create_backbone(LITE0)[0], spec, paths, labels, splits, views=1
                )
            )
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=probe) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and built == [1] and sorted(r.cached for r in results) == [False, True]
    assert np.array_equal(results[0].arrays[FINAL], results[1].arrays[FINAL])
    from engine import paths as tl_paths

    assert not list(tl_paths.cache_dir().glob("*.partial"))


def test_other_channel_counts_keep_the_rgb_contract():
    rgb = input_spec("resnet18")
    grey, two, five = rgb.with_chans(1), rgb.with_chans(2), rgb.with_chans(5)
    assert grey.input_size == (1, 224, 224) and grey.mean == pytest.approx((sum(rgb.mean) / 3,))
    assert two.mean == rgb.mean[:2] and five.std[:3] == rgb.std and len(five.std) == 5
    assert len({rgb.key(), grey.key(), two.key(), five.key()}) == 4  # cached features never mix channel counts


def test_grey_images_through_the_adapted_model_give_the_features_of_their_rgb_copies(
    tiny_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")  # the comparison is exact up to fp32 rounding
    from PIL import Image

    paths = []
    for i, src in enumerate(sorted(tiny_folder.rglob("*.jpg"))[:3]):
        paths.append(str(tmp_path / f"g{i}.png"))
        Image.open(src).convert("L").save(paths[-1])
    spec = input_spec(LITE0)
    cpu = torch.device("cpu")
    extract(create_backbone(LITE0)[0], spec, paths, tmp_path / "rgb", views=1, device=cpu)
    extract(create_backbone(LITE0, in_chans=1)[0], spec.with_chans(1), paths, tmp_path / "grey", views=1, device=cpu)
    for name in ("final.npy", "tap5.npy"):
        assert np.allclose(np.load(tmp_path / "rgb" / name), np.load(tmp_path / "grey" / name), atol=1e-4)


def test_a_feature_cache_over_the_memory_budget_streams_from_disk_with_the_same_probe(tiny_folder, monkeypatch):
    """The same probe from features read into memory and from features memory-mapped because they exceed a tiny
    budget: identical accuracy and predictions."""
    from engine.data.dataset import load_dataset
    from engine.probe.linear import probe

    ds = load_dataset(tiny_folder, val_fraction=0.34)
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "2G")
    in_memory = probe(ds, LITE0)
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "64K")
    streamed = probe(ds, LITE0)
    assert streamed.cached and not isinstance(in_memory.features.arrays[FINAL], np.memmap)
    assert all(isinstance(a, np.memmap) for a in streamed.features.arrays.values())
    assert streamed.accuracy == in_memory.accuracy and streamed.val_predictions == in_memory.val_predictions
    assert [c["accuracy"] for c in streamed.stage_curve] == [c["accuracy"] for c in in_memory.stage_curve]


def test_fits_use_a_budget_sized_stratified_sample(monkeypatch):
    from engine.probe.features import MIN_FIT_ROWS, cap_rows, fit_rows

    monkeypatch.setenv("TRANSFERLAB_MEMORY", "64K")
    assert fit_rows(1280, 2) == MIN_FIT_ROWS  # never fewer, whatever the budget
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "8G")
    assert fit_rows(1280, 2) > fit_rows(2560, 2) > MIN_FIT_ROWS
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    index = np.arange(1000)
    kept = cap_rows(index, labels, 100)
    assert len(kept) == 100 and np.array_equal(kept, cap_rows(index, labels, 100)) and np.all(np.diff(kept) > 0)
    assert list(np.bincount(labels[kept])) == [90, 9, 1]  # every class in proportion
    assert cap_rows(index, labels, 5000) is index
