"""A person's decisions about their photos: stored apart, applied by the next plan and run, said how many; a file
edited by hand with an unknown photo, action or class is refused in one line."""

import shutil

import pytest
from conftest import SAMPLE

from engine.data.dataset import Item, load_dataset
from engine.data.decisions import Decision, apply_decisions, decisions_file, save_decisions
from engine.errors import DataError
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, load_data


def test_decisions_are_applied_by_the_next_plan_and_leave_the_photos_alone(tiny_folder):
    cfg = TrainConfig.create(data=str(tiny_folder), strategy="feature-extraction", val_fraction=0.34, views=1)
    ds = load_data(cfg)
    before = {p.name: p.read_bytes() for p in tiny_folder.rglob("*.jpg")}
    first, second = ds.train[0], ds.train[1]
    other = ds.classes[(first.label + 1) % len(ds.classes)]
    save_decisions(ds, [Decision(first.path, "relabel", other), Decision(second.path, "exclude")])
    decided = load_data(cfg)
    assert next(it for it in decided.items if it.path == first.path).label == ds.classes.index(other)
    assert second.path not in {it.path for it in decided.items} and len(decided.items) == len(ds.items) - 1
    assert "1 photo(s) relabelled, 1 left out" in get_plan(cfg).plan.reason
    assert {p.name: p.read_bytes() for p in tiny_folder.rglob("*.jpg")} == before  # nothing written to the data


@pytest.mark.parametrize(
    "line,message",
    [
        ("nowhere/x.jpg,exclude,", "is not a photo of"),
        ("{path},delete,", "action 'delete' is not one of relabel, exclude"),
        ("{path},relabel,Cat", "'Cat' is not one of the classes"),
    ],
)
def test_a_decisions_file_edited_by_hand_is_refused_in_one_line(tiny_folder, line, message):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    path = decisions_file(ds.fingerprint())
    path.write_text("path,action,new_label\n" + line.format(path=ds.train[0].path) + "\n")
    try:
        with pytest.raises(DataError, match=message):
            apply_decisions(ds)
    finally:
        path.unlink()


def _photos(root, classes, splits=("",), n=4):
    """`n` small photos per class under `root/<split>/<class>` (`root/<class>` for the split "")."""
    from PIL import Image

    for split in splits:
        for c, cls in enumerate(classes):
            folder = root / split / cls if split else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (i * 40, 10, 60 * c)).save(folder / f"{i}.png")
    return root


def _write(ds, text: str):
    path = decisions_file(ds.fingerprint())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text,message",
    [
        ("{path},exclude,\n", "the first line must be the header path,action,new_label"),
        ("", "the first line must be the header"),
        ("path,action,new_label\n{path},exclude\n", "line 2: 2 values where 3 belong"),
        ("path,action,new_label\n{path}\x00,exclude,\n", "is not a photo of"),
        ("path,action,new_label\n{test},relabel,{other}\n{test},exclude,\n", "2 line(s) (the first: line 2) name"),
    ],
)
def test_a_decisions_file_without_its_header_or_touching_test_is_refused(tmp_path, text, message):
    ds = load_dataset(_photos(tmp_path / "d", ("a", "b"), splits=("train", "test")), val_fraction=0.25)
    test = next(it for it in ds.items if it.split == "test")
    path = _write(ds, text.format(path=ds.train[0].path, test=test.path, other=ds.classes[0]))
    try:
        with pytest.raises(DataError) as e:
            apply_decisions(ds)
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    finally:
        path.unlink()


def test_decisions_that_leave_one_class_are_refused_in_our_words(tiny_folder):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    everything = [Decision(it.path, "relabel", ds.classes[0]) for it in ds.items if it.split == "train"]
    with pytest.raises(DataError, match="leave 1 class with training photos, and a classifier needs two"):
        save_decisions(ds, everything)
    assert not decisions_file(ds.fingerprint()).exists()


def test_values_are_written_escaped_against_spreadsheet_formulas_and_read_back_as_they_were(tmp_path):
    from engine.data.decisions import read_decisions

    ds = load_dataset(_photos(tmp_path / "d", ("=HYPERLINK(1)", "plain")), val_fraction=0.25)
    plain = next(it for it in ds.train if ds.classes[it.label] == "plain")
    save_decisions(ds, [Decision(plain.path, "relabel", "=HYPERLINK(1)")])
    text = decisions_file(ds.fingerprint()).read_text()
    assert ",'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text
    assert read_decisions(ds) == [Decision(plain.path, "relabel", "=HYPERLINK(1)")]


def _pool_photo(tmp_path, name="pool.jpg"):
    pool = tmp_path / "pool"
    pool.mkdir(exist_ok=True)
    src = sorted((SAMPLE / "val").rglob("*.jpg"))[0]
    shutil.copy(src, pool / name)
    return str(pool / name)


def test_photos_labelled_from_a_pool_join_train_in_the_next_plan_and_skipped_ones_change_nothing(tiny_folder, tmp_path):
    from engine.data.decisions import decide_pool_photo

    cfg = TrainConfig.create(data=str(tiny_folder), strategy="feature-extraction", val_fraction=0.34, views=1)
    ds = load_data(cfg)
    labelled, skipped = _pool_photo(tmp_path, "a.jpg"), _pool_photo(tmp_path, "b.jpg")
    decide_pool_photo(ds, labelled, ds.classes[1])
    decide_pool_photo(ds, skipped, None)
    decided = load_data(cfg)
    added = [it for it in decided.items if it.path == labelled]
    assert added == [Item(labelled, 1, "train")] and skipped not in {it.path for it in decided.items}
    assert len(decided.items) == len(ds.items) + 1 and labelled in decided.digests
    assert "1 labelled from your pool and added to the training photos" in get_plan(cfg).plan.reason
    decide_pool_photo(ds, labelled, None)  # a second answer replaces the first
    assert len(load_data(cfg).items) == len(ds.items)


@pytest.mark.parametrize(
    "line,message",
    [
        ("{train},label,{cls}", "is a photo of the dataset, not of a pool; use relabel or exclude"),
        ("{pool},label,Cat", "'Cat' is not one of the classes"),
        ("pool.jpg,label,{cls}", "is not the full path of a photo"),
        ("{gone},label,{cls}", "put the photo back or delete the line"),
        ("{pool},skip,", None),
    ],
)
def test_pool_decisions_edited_by_hand_are_refused_in_one_line(tiny_folder, tmp_path, line, message):
    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = _pool_photo(tmp_path)
    text = line.format(train=ds.train[0].path, pool=pool, gone=str(tmp_path / "gone.jpg"), cls=ds.classes[0])
    path = _write(ds, "path,action,new_label\n" + text + "\n")
    try:
        if message is None:
            assert apply_decisions(ds)[0].items == ds.items
            return
        with pytest.raises(DataError) as e:
            apply_decisions(ds)
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    finally:
        path.unlink()


def test_a_pool_photo_outside_the_data_root_is_refused(tiny_folder, tmp_path):
    from engine.data.decisions import decide_pool_photo

    ds = load_dataset(tiny_folder, val_fraction=0.34)
    pool = _pool_photo(tmp_path)
    with pytest.raises(DataError, match="is outside the data root"):
        decide_pool_photo(ds, pool, ds.classes[0], root=tiny_folder)
    assert not decisions_file(ds.fingerprint()).exists()
