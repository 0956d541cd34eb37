"""Photos from where the model will be used: unlabelled, a few labelled, and every bad folder in one line."""

import shutil

import pytest
from PIL import Image, ImageOps

from engine.data.dataset import load_dataset
from engine.data.target import MIN_TARGET_CAP, load_target
from engine.errors import DataError


def _photos(src, dst, n, invert=False):
    dst.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(src.rglob("*.jpg"))[:n]):
        img = Image.open(f).convert("RGB")
        (ImageOps.invert(img) if invert else img).save(dst / f"t{i:04d}.jpg", quality=90)
    return dst


def test_unlabelled_photos_and_a_few_labelled_ones_in_class_subfolders(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    target = tmp_path / "field"
    _photos(tiny_folder, target, 6, invert=True)
    cls = ds.classes[1]
    _photos(tiny_folder / cls, target / cls, 2, invert=True)
    (target / "notes.txt").write_text("where we took them\n")
    t = load_target(target, ds)
    assert len(t.unlabelled) == 6 and [it.label for it in t.labelled] == [1, 1]
    assert len(t.paths) == 8 and any("notes.txt" in s.path for s in t.skipped)


def test_a_folder_with_no_readable_photo_is_one_line(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="no readable photos"):
        load_target(tmp_path / "empty", ds)
    with pytest.raises(DataError, match="not a folder"):
        load_target(tmp_path / "missing", ds)


def test_class_subfolders_the_training_data_does_not_have_are_refused(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    target = tmp_path / "field"
    _photos(tiny_folder, target / ds.classes[0], 2, invert=True)
    _photos(tiny_folder, target / "Cat", 2, invert=True)
    with pytest.raises(DataError, match="Cat look like classes, and they are not classes of the training data"):
        load_target(target, ds)


def test_a_folder_of_other_classes_subfolders_is_refused_and_one_subfolder_of_any_name_is_unlabelled(
    tiny_folder, tmp_path
):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    other = tmp_path / "other"
    _photos(tiny_folder, other / "Cat", 2, invert=True)
    _photos(tiny_folder, other / "Dog", 2, invert=True)
    with pytest.raises(DataError, match="Cat, Dog look like classes") as e:
        load_target(other, ds)
    assert "\n" not in str(e.value)
    one = tmp_path / "one"
    _photos(tiny_folder, one / "2024-05", 3, invert=True)
    assert len(load_target(one, ds).unlabelled) == 3


def test_a_name_longer_than_the_system_allows_is_skipped_and_the_rest_is_used(tiny_folder, tmp_path):
    import os

    ds = load_dataset(tiny_folder, val_fraction=0.34)
    target = _photos(tiny_folder, tmp_path / "field", 4, invert=True)
    deep = target / "a"
    deep.mkdir()
    d = os.open(deep, os.O_RDONLY)
    try:  # a path past PATH_MAX, made one folder at a time (each name within NAME_MAX)
        for _ in range(30):
            os.mkdir("x" * 200, dir_fd=d)
            d2 = os.open("x" * 200, os.O_RDONLY, dir_fd=d)
            os.close(d)
            d = d2
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=d), "wb") as f:
            f.write((target / "t0000.jpg").read_bytes())
    finally:
        os.close(d)
    t = load_target(target, ds)
    assert len(t.unlabelled) == 4 and t.skipped and "cannot be listed" in t.skipped[0].reason


def test_the_training_photos_themselves_are_refused_and_a_few_copies_left_out(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    same = tmp_path / "same"
    same.mkdir()
    for f in sorted(tiny_folder.rglob("*.jpg"))[:8]:
        shutil.copy(f, same / f.name)
    with pytest.raises(DataError, match="are photos of the training data"):
        load_target(same, ds)
    _photos(tiny_folder, same, 12, invert=True)  # now 8 copies among 20
    t = load_target(same, ds)
    assert len(t.unlabelled) == 12 and "8 target photo(s) identical to training photos" in t.notes[0]


def test_a_folder_much_larger_than_the_training_photos_is_sampled_and_says_so(tiny_folder, tmp_path, monkeypatch):
    import engine.data.target as target_mod

    ds = load_dataset(tiny_folder, val_fraction=0.34)
    monkeypatch.setattr(target_mod, "MIN_TARGET_CAP", 10)
    monkeypatch.setattr(target_mod, "MAX_TARGET_RATIO", 1)
    t = load_target(_photos(tiny_folder, tmp_path / "many", 18, invert=True), ds)
    assert len(t.unlabelled) == max(10, len(ds.train)) < 18 and "a random" in t.notes[0]
    assert MIN_TARGET_CAP >= 100  # the real cap never samples a few hundred photos
