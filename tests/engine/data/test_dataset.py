import shutil
import zipfile
from pathlib import Path

import pytest

from engine.data.dataset import load_dataset
from engine.errors import DataError, UnsafeArchive


def test_class_folders_get_a_seeded_stratified_split(tiny_folder):
    a, b = load_dataset(tiny_folder, seed=1), load_dataset(tiny_folder, seed=1)
    assert [i.path for i in a.val] == [i.path for i in b.val]
    assert len(a.classes) == 3 and len(a.items) == 18
    assert {i.label for i in a.val} == {0, 1, 2}  # every class is represented in val
    assert "seed 1" in a.val_source
    assert [i.path for i in load_dataset(tiny_folder, seed=2).val] != [i.path for i in a.val]


def test_a_dataset_named_from_its_parent_folder_is_the_same_dataset_with_paths_that_hold_anywhere(
    tiny_folder, monkeypatch
):
    """`--data tiny` from its parent and the absolute path: one fingerprint (one feature cache, one plan), and the
    photos' paths stored with a run open from any working folder (the dashboard's is the repository's)."""
    monkeypatch.chdir(tiny_folder.parent)
    relative, absolute = load_dataset(tiny_folder.name), load_dataset(tiny_folder)
    assert relative.fingerprint() == absolute.fingerprint()
    assert all(Path(it.path).is_absolute() for it in relative.train + relative.val + relative.test)


def test_explicit_splits_and_separate_val_folder(tmp_path, tiny_folder):
    root = tmp_path / "split"
    shutil.copytree(tiny_folder, root / "train")
    shutil.copytree(tiny_folder, root / "Valid")
    ds = load_dataset(root)
    assert len(ds.train) == 18 and len(ds.val) == 18 and ds.val_source == "folder"
    ds2 = load_dataset(tiny_folder, val=root / "Valid")
    assert len(ds2.val) == 18


def test_bad_corpus_is_skipped_and_listed_never_raised(bad_corpus):
    ds = load_dataset(bad_corpus)
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in ds.skipped}
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty file" in reasons["zero.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "not an image (extension .txt)" in reasons["notes.txt"]
    assert "refused" in reasons["huge.png"]
    used = {i.path.rsplit("/", 1)[-1] for i in ds.items}
    assert {"rgba.png", "sixteen.png", "gray.png", "palette.gif", "only.jpg"} <= used
    assert "zz_single" in ds.classes
    assert [i.split for i in ds.items if i.path.endswith("only.jpg")] == ["train"]  # one image stays in train


def test_csv_with_missing_rows(tmp_path, tiny_folder):
    files = sorted(tiny_folder.rglob("*.jpg"))
    lines = ["path,label,split"] + [
        f"{f.relative_to(tmp_path)},{f.parent.name},{'val' if i % 3 == 0 else 'train'}" for i, f in enumerate(files)
    ]
    lines.append("tiny/missing.jpg,x,train")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path / "labels.csv")
    assert len(ds.items) == len(files) and ds.val
    assert any("does not exist" in s.reason for s in ds.skipped)
    (tmp_path / "bad.csv").write_text("file,class\na.jpg,x\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        load_dataset(tmp_path / "bad.csv")


def test_zip_of_a_dataset_folder(tmp_path, tiny_folder):
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for f in tiny_folder.rglob("*.jpg"):
            z.write(f, f"mydata/{f.relative_to(tiny_folder)}")
    ds = load_dataset(tmp_path / "d.zip")
    assert len(ds.classes) == 3 and len(ds.items) == 18


@pytest.mark.parametrize(
    "name,needle",
    [("../evil.jpg", "'..'"), ("/etc/evil.jpg", "absolute"), ("a/../../evil.jpg", "'..'"), ("C:/evil.jpg", "absolute")],
)
def test_zip_path_traversal_is_refused(tmp_path, name, needle):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("cls/ok.jpg", b"x")
        z.writestr(name, b"x")
    with pytest.raises(UnsafeArchive, match=needle):
        load_dataset(tmp_path / "evil.zip")
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_zip_size_and_count_limits(tmp_path):
    from engine.data.archive import extract_zip

    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("c/a.jpg", b"\0" * 10_000)
        z.writestr("c/b.jpg", b"\0" * 10_000)
    with pytest.raises(UnsafeArchive, match="bytes uncompressed"):
        extract_zip(tmp_path / "big.zip", tmp_path / "out1", max_bytes=5_000)
    with pytest.raises(UnsafeArchive, match="2 entries, more than the limit of 1"):
        extract_zip(tmp_path / "big.zip", tmp_path / "out2", max_files=1)


def test_missing_or_empty_paths_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable training images"):
        load_dataset(tmp_path / "empty")


def test_fingerprint_changes_with_the_data(tiny_folder):
    before = load_dataset(tiny_folder).fingerprint()
    f = next(tiny_folder.rglob("*.jpg"))
    f.unlink()
    assert load_dataset(tiny_folder).fingerprint() != before


def test_a_carved_test_split_is_stratified_seeded_and_disjoint(tmp_path):
    import shutil

    from conftest import SAMPLE

    root = tmp_path / "carve"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        shutil.copytree(cls, root / cls.name)
    a, b = load_dataset(root, seed=3), load_dataset(root, seed=3)
    test, val, train = ({it.path for it in a.split(s)} for s in ("test", "val", "train"))
    assert test and val and train and not (test & val) and not (test & train) and not (val & train)
    assert [it.path for it in a.test] == [it.path for it in b.test]  # seeded
    assert {it.label for it in a.test} == {0, 1, 2} and f"held out: {len(test)} images" in a.test_source
    assert [it.path for it in load_dataset(root, seed=4).test] != [it.path for it in a.test]
    assert not load_dataset(root, test_fraction=0).test


def test_split_counts_list_what_load_dataset_lists(tiny_folder):
    from engine.data.dataset import load_dataset, split_counts

    ds = load_dataset(tiny_folder, val_fraction=0.0)
    counts = split_counts(tiny_folder)
    assert counts.classes == len(ds.classes)
    assert counts.train + counts.val + counts.test == len(ds.items) + len(ds.skipped)
