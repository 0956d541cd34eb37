"""The pixels' signature (engine.data.lookalike): copies of real sample photos agree, different photos do not, and
the pairs found a block at a time are the pairs computed at once."""

import numpy as np
import pytest
from conftest import SAMPLE
from photos import copies
from PIL import Image

from engine.data.lookalike import Signatures, signatures, similar_pairs
from engine.probe.check import COPY_SIGNATURE, CROP_SCORE, CROP_WEIGHT


def _photos(n: int) -> list:
    return sorted(p for cls in sorted((SAMPLE / "train").iterdir()) for p in sorted(cls.iterdir())[:2])[:n]


@pytest.mark.parametrize(
    "kind",
    ["resized 0.5", "resized 0.7", "resized 0.9", "jpeg 60", "mirrored", "cropped left and top", "cropped around"],
)
def test_a_copy_made_as_collections_make_them_agrees_with_its_photo(tmp_path, kind):
    src = _photos(1)[0]
    copies(Image.open(src).convert("RGB"))[kind].save(tmp_path / "copy.png")
    sig = signatures([str(src), str(tmp_path / "copy.png")])
    floor = CROP_SCORE - CROP_WEIGHT if kind.startswith("cropped") else COPY_SIGNATURE  # a crop: with its features
    assert sig.similarity(0, 1) >= floor, sig.similarity(0, 1)


def test_different_photos_of_the_sample_do_not_agree_as_copies_do():
    photos = _photos(16)
    sig = signatures([str(p) for p in photos])
    worst = max(sig.similarity(i, j) for i in range(len(photos)) for j in range(i + 1, len(photos)))
    assert worst < COPY_SIGNATURE


def test_pairs_found_a_block_at_a_time_are_every_pair_computed_at_once():
    rng = np.random.default_rng(0)
    n, k, d = 40, 36, 255
    crops = rng.normal(size=(n, k, d)).astype(np.float32)
    crops[5] = crops[3]  # a copy
    crops /= np.linalg.norm(crops, axis=2, keepdims=True)
    mirrored = rng.normal(size=(n, d)).astype(np.float32)
    mirrored /= np.linalg.norm(mirrored, axis=1, keepdims=True)
    sig = Signatures(crops.astype(np.float16), mirrored.astype(np.float16))
    every = sorted(
        ((sig.similarity(i, j), i, j) for i in range(n) for j in range(i + 1, n)), key=lambda t: (-t[0], t[1], t[2])
    )
    threshold = every[20][0]
    found = similar_pairs(sig, threshold, keep=10)
    assert [(i, j) for i, j, _ in found] == [(i, j) for _, i, j in every[:10]]
    assert found[0][:2] == (3, 5) and found[0][2] == pytest.approx(1.0, abs=1e-2)
    assert np.allclose([s for *_, s in found], [s for s, *_ in every[:10]], atol=1e-3)


def test_an_unreadable_file_is_listed_and_odd_photos_still_sign(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "dot.png")
    np.save(tmp_path / "bands.npy", np.random.default_rng(0).integers(0, 4000, (40, 50, 6)).astype(np.uint16))
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).save(tmp_path / "deep.png")
    names = [str(tmp_path / n) for n in ("broken.jpg", "dot.png", "bands.npy", "deep.png")]
    sig = signatures(names)
    assert sig.unreadable == (names[0],) and not sig.crops[0].any()
    assert all(np.isfinite(sig.crops[i].astype(np.float32)).all() for i in range(4))
    assert similar_pairs(sig, 0.99) == [] or all(0 not in p[:2] for p in similar_pairs(sig, 0.99))
