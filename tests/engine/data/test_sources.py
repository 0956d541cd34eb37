"""Where a dataset's files come from: class folders, split folders and CSVs under one containment rule. Rows are
listed, never decoded, so the fixtures are a few bytes named like images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.data.sources import Rows, read_source
from engine.errors import DataError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _classes(root: Path, names=("cat", "dog"), per_class: int = 2) -> Path:
    for name in names:
        for i in range(per_class):
            _touch(root / name / f"{i}.jpg")
    return root


def _names(rows: Rows) -> list[tuple[str, str, str]]:
    return [(f.name, label, split) for f, label, split in rows.rows]


def test_a_folder_without_split_folders_is_all_train_and_valid_is_read_as_val(tmp_path):
    flat = read_source(_classes(tmp_path / "flat"), None, None, None, False)
    assert {split for *_, split in flat.rows} == {"train"} and len(flat.rows) == 4

    split = tmp_path / "split"
    _classes(split / "train")
    _classes(split / "Valid", per_class=1)
    rows = read_source(split, None, None, None, False)
    assert sorted(s for *_, s in rows.rows) == ["train"] * 4 + ["val"] * 2


def test_loose_files_and_non_images_are_skipped_with_the_reason_and_hidden_files_are_ignored(tmp_path):
    root = _classes(tmp_path / "data")
    _touch(root / "loose.jpg")
    _touch(root / "cat" / "notes.txt")
    _touch(root / "cat" / ".DS_Store")
    rows = read_source(root, None, None, None, False)
    reasons = {Path(s.path).name: s.reason for s in rows.skipped}
    assert "not inside a class folder" in reasons["loose.jpg"]
    assert "not an image (extension .txt)" in reasons["notes.txt"]
    assert ".DS_Store" not in reasons and len(rows.rows) == 4


def test_a_link_out_of_the_root_is_refused_unless_outside_paths_are_allowed(tmp_path):
    root = _classes(tmp_path / "data")
    os.symlink(_touch(tmp_path / "elsewhere" / "secret.jpg"), root / "cat" / "link.jpg")
    rows = read_source(root, None, None, None, False)
    assert "link.jpg" not in {n for n, *_ in _names(rows)}
    assert rows.outside == [str(root / "cat" / "link.jpg")]
    assert "--allow-outside-root" in rows.skipped[0].reason and "--allow-outside-root" in rows.why_empty()

    allowed = read_source(root, None, None, None, True)
    assert ("link.jpg", "cat", "train") in _names(allowed) and not allowed.outside


def test_a_folder_linked_into_itself_is_walked_once(tmp_path):
    root = _classes(tmp_path / "data")
    os.symlink(root / "cat", root / "cat" / "again")
    rows = read_source(root, None, None, None, False)
    assert sorted(n for n, label, _ in _names(rows) if label == "cat") == ["0.jpg", "1.jpg"]


def test_a_separate_val_folder_is_contained_in_its_own_folder(tmp_path):
    root = _classes(tmp_path / "data")
    val = _classes(tmp_path / "val", per_class=1)
    os.symlink(_touch(tmp_path / "data" / "cat" / "0.jpg"), val / "cat" / "from-train.jpg")
    rows = read_source(root, val, None, None, False)
    assert sorted(n for n, _, s in _names(rows) if s == "val") == ["0.jpg", "0.jpg"]
    assert any("from-train.jpg" in s.path for s in rows.skipped)  # outside the val folder given


def test_csv_rows_repeated_leaked_or_relabelled_are_collapsed_each_said_once(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        _touch(tmp_path / name)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "\ufeffpath,label,split\n"  # Excel's byte-order mark before the header
        "a.jpg,cat,train\n"
        "a.jpg,cat,train\n"  # a repeat
        "b.jpg,dog,test\n"
        "b.jpg,dog,train\n"  # a leak: stays in train
        "c.jpg,cat,val\n"
        "c.jpg,dog,val\n"  # relabelled: the first label is kept
        "d.jpg,,train\n",  # no label
        encoding="utf-8",
    )
    rows = read_source(csv_file, None, None, None, False)
    assert _names(rows) == [("a.jpg", "cat", "train"), ("b.jpg", "dog", "train"), ("c.jpg", "cat", "val")]
    said = " | ".join(s.reason for s in rows.skipped)
    assert "1 row(s) repeat an earlier row" in said
    assert "1 row(s) list a file already listed under another split" in said
    assert "1 row(s) give a file another label" in said
    assert "line 8: empty label" in said


def test_csv_rows_that_leave_the_folder_or_name_no_file_are_skipped(tmp_path):
    _touch(tmp_path / "outside.jpg")
    data = tmp_path / "data"
    _touch(data / "in.jpg")
    (data / "labels.csv").write_text("path,label\nin.jpg,cat\n../outside.jpg,cat\nmissing.jpg,cat\n")
    rows = read_source(data / "labels.csv", None, None, None, False)
    assert _names(rows) == [("in.jpg", "cat", "train")]
    assert rows.outside == [str(data / "../outside.jpg")]
    assert any("missing.jpg does not exist" in s.reason for s in rows.skipped)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"file,class\na.jpg,cat\n", "needs a header with 'path' and 'label'"),
        (b"path,label,split\na.jpg,cat,holdout\n", "'holdout'; use train, val or test"),
        (b"path,label\n\xff\xfe.jpg,cat\n", "not UTF-8 text"),
    ],
)
def test_a_csv_that_cannot_be_used_is_one_line_naming_the_file_and_the_fix(tmp_path, content, needle):
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match="labels.csv") as e:
        read_source(tmp_path / "labels.csv", None, None, None, False)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_file_that_is_neither_folder_nor_csv_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a folder, .zip or .csv"):
        read_source(_touch(tmp_path / "photo.jpg"), None, None, None, False)


def test_why_empty_names_the_first_reason(tmp_path):
    rows = Rows(tmp_path)
    assert rows.why_empty() == "expected one subfolder per class with images"
    rows.add_folder(_touch(tmp_path / "train" / "loose.jpg").parent, "train")
    assert "the first because" in rows.why_empty() and "not inside a class folder" in rows.why_empty()


def test_a_folder_linked_into_another_class_keeps_that_class_and_is_listed(tmp_path):
    root = _classes(tmp_path / "data")
    os.symlink(root / "dog", root / "cat" / "dogs")
    rows = read_source(root, None, None, None, False)
    assert sorted(_names(rows)) == sorted((n, c, "train") for c in ("cat", "dog") for n in ("0.jpg", "1.jpg"))
    assert any("a link into another class folder" in s.reason and s.path.endswith("cat/dogs") for s in rows.skipped)
