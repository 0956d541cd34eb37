import shutil

from engine.data.dataset import load_dataset
from engine.data.report import build_report


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
    assert sum(r.counts["train"].values()) + sum(r.counts["test"].values()) == 800
    assert sum(r.counts["val"].values()) == 300 and r.test_source.startswith("held out: 161 images")
    assert not r.unreadable and not r.leakage and r.imbalance_ratio > 5


def test_photos_far_smaller_than_the_model_s_input_get_a_note(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (64, 64), (40 * i, 90, 10)).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(tmp_path)
    note = [w for w in build_report(ds, input_size=224).warnings if "enlarged" in w]
    assert note == [
        "The photos are small (median short side 64 px): each is enlarged 3.5x to the 224 px the backbone "
        "reads, in training and in prediction alike. That adds no detail; pretrained features still work "
        "well on such tiles."
    ]
    assert not [w for w in build_report(ds, input_size=80).warnings if "enlarged" in w]  # close enough: no note
    assert not [w for w in build_report(ds).warnings if "enlarged" in w]  # no backbone given


def test_channel_count_suggested_for_npy_arrays_only(tmp_path, tiny_folder):
    import numpy as np

    assert build_report(load_dataset(str(tiny_folder), val_fraction=0.0)).in_chans == 3
    for cls in ("a", "b"):
        (tmp_path / "ms" / cls).mkdir(parents=True)
        for i in range(2):
            np.save(tmp_path / "ms" / cls / f"{i}.npy", np.full((8, 8, 5), i + (cls == "b") * 7, np.uint8))
    report = build_report(load_dataset(str(tmp_path / "ms"), val_fraction=0.0))
    assert report.in_chans == 5 and report.modes == {"5ch": 4}
    np.save(tmp_path / "ms" / "a" / "odd.npy", np.zeros((8, 8, 4), np.uint8))
    report = build_report(load_dataset(str(tmp_path / "ms"), val_fraction=0.0))
    assert report.in_chans == 3 and any("one channel count" in w for w in report.warnings)
