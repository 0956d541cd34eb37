"""Safe zip extraction: what is refused, what is kept, and that a failure leaves nothing behind. (Traversal, limits
and clashes through `load_dataset` are in test_dataset and test_hardening.)"""

from __future__ import annotations

import stat
import zipfile

import pytest

from engine.data import archive
from engine.data.archive import entry_count, extract_zip
from engine.errors import UnsafeArchive


def _zip(path, entries: dict[str, bytes], method: int = zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_only_images_and_csv_files_are_extracted_and_one_wrapping_folder_is_the_root(tmp_path):
    path = _zip(
        tmp_path / "d.zip",
        {
            "data/cat/a.jpg": b"x",
            "data/labels.csv": b"path,label\n",
            "data/run.sh": b"rm -rf /",
            "data/.hidden.jpg": b"",
        },
    )
    root = extract_zip(path, tmp_path / "out")
    assert root == tmp_path / "out" / "data"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == ["cat/a.jpg", "labels.csv"]


def test_a_folder_of_loose_images_is_not_unwrapped(tmp_path):
    root = extract_zip(_zip(tmp_path / "d.zip", {"photos/a.jpg": b"x"}), tmp_path / "out")
    assert root == tmp_path / "out"


def test_a_symbolic_link_entry_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("cls/a.jpg", b"x")
        link = zipfile.ZipInfo("cls/b.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="'cls/b.jpg' is a symbolic link"):
        extract_zip(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_damaged_entry_is_one_line_and_leaves_no_half_written_folder(tmp_path):
    path = _zip(tmp_path / "d.zip", {"cls/a.jpg": b"photo bytes " * 2000}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    data[60:90] = b"\xff" * 30  # inside the compressed stream of the only entry
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchive, match="damaged or encrypted entry") as e:
        extract_zip(path, tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["d.zip"]  # no temporary folder either


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "d.zip").write_bytes(b"not a zip at all")
    assert entry_count(tmp_path / "d.zip") is None
    with pytest.raises(UnsafeArchive, match="not a valid zip file"):
        extract_zip(tmp_path / "d.zip", tmp_path / "out")


def test_an_archive_is_extracted_once_a_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    path = _zip(tmp_path / "d.zip", {"data/cat/a.jpg": b"x"})
    first = extract_zip(path)
    monkeypatch.setattr(archive, "_plan", lambda *a: pytest.fail("read again"))
    assert extract_zip(path) == first and (first / "cat" / "a.jpg").read_bytes() == b"x"
    assert first.parent.parent == tmp_path / "home" / "archives"  # keyed by the archive's content hash
