"""A pool of unlabelled photos: checked as training photos are, the dataset's own photos and decided ones left out
and counted, and every bad pool refused in one line."""

import shutil

import pytest
from conftest import SAMPLE, huge_header_png, jpeg_bytes

from engine.data.dataset import load_dataset
from engine.data.pool import load_pool
from engine.errors import DataError


def _pool(tmp_path, n=5):
    """`n` photos of the sample's val split, none of them in `tiny_folder`."""
    pool = tmp_path / "pool"
    pool.mkdir()
    for f in sorted((SAMPLE / "val").rglob("*.jpg"))[:n]:
        shutil.copy(f, pool / f"{f.parent.name}-{f.name}")
    return pool


def test_the_dataset_photos_and_decided_ones_are_left_out_and_counted(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = _pool(tmp_path)
    shutil.copy(ds.train[0].path, pool / "again.jpg")  # a training photo under another name
    shutil.copy(ds.test[0].path if ds.test else ds.val[0].path, pool / "sub-again.jpg")
    decided = {str(sorted(pool.glob("*.jpg"))[0])}
    found = load_pool(pool, ds, decided)
    assert len(found.paths) == 4 and not set(found.paths) & decided
    assert all(p.startswith(str(pool)) for p in found.paths)
    assert any("2 photo(s) of the pool are photos of your dataset" in n for n in found.notes)
    assert any("1 photo(s) of the pool you labelled or skipped before" in n for n in found.notes)


def test_photos_over_the_limits_and_files_that_are_no_photos_are_skipped_and_listed(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = _pool(tmp_path, 2)
    (pool / "huge.png").write_bytes(huge_header_png())
    (pool / "notes.txt").write_text("not a photo")
    (pool / "broken.jpg").write_bytes(jpeg_bytes()[:40])
    found = load_pool(pool, ds)
    assert len(found.paths) == 2
    reasons = " ".join(s.reason for s in found.skipped)
    assert "limit" in reasons and "not an image" in reasons and "broken.jpg" in reasons


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda pool: pool / "missing", "not a folder; give a folder of unlabelled photos"),
        (lambda pool: pool, "no readable photos"),
    ],
)
def test_a_missing_or_empty_pool_is_one_line(tiny_folder, tmp_path, make, message):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = tmp_path / "empty"
    pool.mkdir()
    (pool / "readme.txt").write_text("no photos here")
    with pytest.raises(DataError, match=message) as e:
        load_pool(make(pool), ds)
    assert "\n" not in str(e.value)


def test_a_pool_of_the_dataset_photos_only_is_refused(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = tmp_path / "pool"
    shutil.copytree(tiny_folder, pool)
    with pytest.raises(DataError, match="none of its 18 readable photo.s. is left to label .18 are photos of your"):
        load_pool(pool, ds)


def test_a_pool_outside_the_root_and_a_link_out_of_it_are_refused(tiny_folder, tmp_path):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    root = tmp_path / "root"
    root.mkdir()
    pool = _pool(tmp_path, 2)
    with pytest.raises(DataError, match="outside"):
        load_pool(pool, ds, root=root)
    inside = root / "pool"
    inside.mkdir()
    shutil.copy(next(pool.glob("*.jpg")), inside / "mine.jpg")
    (inside / "elsewhere.jpg").symlink_to(sorted(pool.glob("*.jpg"))[1])
    found = load_pool(inside, ds, root=root)
    assert [p.rsplit("/", 1)[1] for p in found.paths] == ["mine.jpg"]
    assert any("outside" in s.reason for s in found.skipped)
