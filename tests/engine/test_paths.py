"""TransferLab's folders and memory budget: one table of shares that fits the budget, atomic writes, one builder."""

import pytest

from engine import paths


def test_the_memory_shares_fit_the_budget_and_follow_it(monkeypatch):
    assert sum(paths.MEMORY_SHARES.values()) <= 1.0
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "1G")
    assert sum(paths.memory_share(c) for c in paths.MEMORY_SHARES) <= 1024**3
    assert paths.memory_share("features") == int(paths.MEMORY_SHARES["features"] * 1024**3)
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "lots")
    with pytest.raises(ValueError, match="TRANSFERLAB_MEMORY='LOTS' is not a size"):
        paths.memory_budget()


def test_an_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "status.json"
    paths.atomic_write(target, b"old")
    paths.atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_builder_that_fails_leaves_no_temporary_folder(tmp_path):
    entry = tmp_path / "features-x"
    with pytest.raises(RuntimeError), paths.building(entry) as tmp:
        tmp.mkdir()
        (tmp / "half.npy").write_bytes(b"half")
        raise RuntimeError("the disk filled")
    assert not entry.exists() and not list(tmp_path.glob("*.partial"))


def test_a_chosen_name_must_exist_and_a_relative_one_is_taken_under_the_data_root(tmp_path):
    from engine.errors import TransferLabError

    (tmp_path / "leaves").mkdir()
    assert paths.existing_path("leaves", base=tmp_path) == (tmp_path / "leaves").resolve()
    assert paths.existing_path(str(tmp_path / "leaves")) == (tmp_path / "leaves").resolve()
    for name in ("missing", "x" * 5_000, "a\0b", "~nosuchuser9/x"):
        with pytest.raises(TransferLabError) as e:
            paths.existing_path(name, base=tmp_path)
        assert "\n" not in str(e.value) and len(str(e.value)) < 300
