import shutil

from engine.data import load_dataset
from engine.report import build_report


def test_report_counts_imbalance_and_bad_files(bad_corpus):
    r = build_report(load_dataset(bad_corpus))
    assert r.counts["train"]["zz_single"] == 1 and r.tiny_classes == ["zz_single"]
    assert len(r.unreadable) == 5
    assert r.imbalance_ratio > 1
    assert {"RGB", "RGBA", "I;16", "L", "P"} <= set(r.modes)
    assert any("fewer than 2" in w for w in r.warnings)
    assert any("skipped" in w for w in r.warnings)


def test_duplicates_leakage_and_conflicting_labels(tmp_path, tiny_folder):
    root = tmp_path / "d"
    shutil.copytree(tiny_folder, root / "train")
    shutil.copytree(tiny_folder, root / "val")
    classes = sorted(p.name for p in (root / "train").iterdir())
    src = next((root / "train" / classes[0]).iterdir())
    shutil.copy(src, root / "train" / classes[1] / "copy.jpg")
    r = build_report(load_dataset(root))
    assert len(r.leakage) == 18  # every val image is also in train
    assert len(r.conflicting_labels) == 1
    assert any("both training and validation" in w for w in r.warnings)


def test_sample_report_is_clean():
    from engine.paths import SAMPLE
    r = build_report(load_dataset(SAMPLE))
    assert sum(r.counts["train"].values()) == 800 and sum(r.counts["val"].values()) == 300
    assert not r.unreadable and not r.leakage and r.imbalance_ratio > 5
