"""Check my photos: likely label errors (confident learning on out-of-fold probabilities), near-duplicates and leaks,
on real photos of the bundled sample; and every odd dataset in one line."""

import shutil

import numpy as np
import pytest
from conftest import SAMPLE
from PIL import Image

from engine.data.dataset import load_dataset
from engine.errors import DataError
from engine.probe.check import check_photos, confident_learning, out_of_fold

BACKBONE = "tf_efficientnet_lite0"


def _cut(dst, classes=6, per_class=30):
    for cls in sorted((SAMPLE / "train").iterdir())[:classes]:
        (dst / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            shutil.copy(f, dst / cls.name / f.name)
    return dst


def test_flipped_labels_rank_at_the_top(tmp_path):
    """5% of the labels of 180 real photos flipped to another class (fixed seed): most are in the ranking's top 5%."""
    data = _cut(tmp_path / "d")
    rng = np.random.default_rng(0)
    files = sorted(data.rglob("*.jpg"))
    classes = sorted(p.name for p in data.iterdir())
    flipped = set()
    for i in rng.choice(len(files), int(0.05 * len(files)), replace=False):
        f = files[i]
        other = rng.choice([c for c in classes if c != f.parent.name])
        moved = data / other / f"flipped-{f.name}"
        shutil.move(f, moved)
        flipped.add(str(moved))
    ds = load_dataset(data, val_fraction=0.2, test_fraction=0)
    report = check_photos(ds, BACKBONE)
    top = {i.path for i in report.label_issues[: len(flipped)]}
    recall = len(top & flipped) / len(flipped)
    assert recall >= 0.6, (recall, [i.path for i in report.label_issues[:12]])
    assert report.label_issues[0].flagged and report.label_issues[0].score > 0.5
    curve = report.learning_curve  # how many more photos, from the same features
    assert curve is not None and curve.n_now == len(files) and curve.sentence.startswith("A linear head")


def test_a_resized_copy_of_a_training_photo_in_test_is_a_leak_and_twins_with_two_labels_are_flagged(tmp_path):
    root = tmp_path / "d"
    _cut(root / "train", classes=3, per_class=15)
    classes = sorted(p.name for p in (root / "train").iterdir())
    for cls in classes:  # a test split of other photos
        (root / "test" / cls).mkdir(parents=True)
        for f in sorted((SAMPLE / "train" / cls).iterdir())[40:44]:
            shutil.copy(f, root / "test" / cls / f.name)
    src = sorted((root / "train" / classes[0]).iterdir())[0]
    Image.open(src).resize((224, 224)).save(root / "test" / classes[0] / "copy.jpg", quality=75)  # re-encoded
    twin = sorted((root / "train" / classes[1]).iterdir())[0]
    Image.open(twin).save(root / "train" / classes[2] / "twin.jpg", quality=95)  # the same photo, another label
    ds = load_dataset(root, val_fraction=0.2)
    report = check_photos(ds, BACKBONE)
    leak = [p for p in report.leaks if {p.a, p.b} == {str(src), str(root / "test" / classes[0] / "copy.jpg")}]
    assert leak and leak[0].cosine >= report.threshold and leak[0].kind == "leak"
    conflict = [
        p
        for p in report.near_duplicates + report.leaks
        if {p.a, p.b} == {str(twin), str(root / "train" / classes[2] / "twin.jpg")}
    ]
    assert conflict and conflict[0].label_a != conflict[0].label_b
    assert report.to_dict().keys() >= {"label_issues", "near_duplicates", "leaks", "learning_curve"}


def test_small_or_single_classes_and_shuffled_labels_are_said_in_one_line():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 4)), rng.normal(3, 1, (20, 4)), rng.normal(-3, 1, (1, 4))])
    y = np.r_[np.zeros(20, int), np.ones(20, int), [2]]
    probs, notes = out_of_fold(x, y, 3)
    assert np.isnan(probs[-1]).all() and "single photo" in notes[0]  # no fold can hold it out
    flagged, suggested = confident_learning(probs, y)
    assert not flagged[-1] and flagged[:40].sum() <= 2
    with pytest.raises(DataError, match="at least 2 classes"):
        out_of_fold(x[:20], y[:20], 3)
    probs, notes = out_of_fold(x[:21], np.r_[np.zeros(20, int), [1]], 2)  # a second class of one photo: skipped
    assert np.isnan(probs).all() and "single photo" in notes[0] and "no label is scored" in notes[1]
    two = np.r_[np.zeros(2, int), np.ones(2, int)]
    probs, _ = out_of_fold(np.r_[x[:2], x[20:22]], two, 2)  # two photos a class: two folds, every photo scored
    assert not np.isnan(probs).any()


def test_the_command_line_lists_the_three_kinds_and_a_checked_leak_warns_before_a_run(tmp_path, capsys, monkeypatch):
    import json

    from engine.cli import main
    from engine.plan.config import TrainConfig
    from engine.plan.make import get_plan
    from engine.plan.preflight import preflight
    from engine.probe.check import check_dataset

    root = tmp_path / "d"
    _cut(root / "train", classes=3, per_class=12)
    for cls in sorted((root / "train").iterdir()):
        (root / "test" / cls.name).mkdir(parents=True)
        for f in sorted((SAMPLE / "train" / cls.name).iterdir())[40:43]:
            shutil.copy(f, root / "test" / cls.name / f.name)
    first = sorted(sorted((root / "train").iterdir())[0].iterdir())[0]
    Image.open(first).resize((224, 224)).save(root / "test" / first.parent.name / "copy.jpg", quality=80)
    assert main(["check", "--data", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"label_issues", "near_duplicates", "leaks", "learning_curve"} <= set(out) and out["leaks"]
    assert {"path", "label", "suggested", "score"} <= set(
        (out["label_issues"] or [{"path": 0, "label": 0, "suggested": 0, "score": 0}])[0]
    )
    check_dataset(str(root), BACKBONE)  # the Data page's check: its leaks are kept for the plans
    plan = get_plan(TrainConfig.create(data=str(root), strategy="feature-extraction", views=1)).plan
    assert plan.data.leaks == 1 and "leak" in {f.code for f in preflight(plan)}


def test_near_pairs_keeps_only_the_best_pairs_and_matches_every_pair_computed_at_once():
    from engine.probe.check import near_pairs

    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 16))
    z = np.repeat(base, 30, axis=0) + rng.normal(scale=0.05, size=(180, 16))  # 6 groups of 30 near copies
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sims = z @ z.T
    every = sorted(
        ((float(sims[i, j]), i, j) for i in range(180) for j in range(i + 1, 180) if sims[i, j] >= 0.9),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    assert len(every) > 2_000
    found = near_pairs(z, 0.9, keep=50, block=16)
    assert [(a, b) for a, b, _ in found] == [(i, j) for _, i, j in every[:50]]
    assert len(near_pairs(z, 0.9, keep=10_000, block=7)) == len(every)


def test_a_check_of_data_whose_other_classes_hold_one_photo_each_still_finds_leaks_and_names_the_classes(
    tiny_folder, tmp_path, capsys, monkeypatch
):
    import json

    from engine.cli import main

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    classes = sorted(p for p in tiny_folder.iterdir())
    for cls in classes[1:]:
        for f in sorted(cls.iterdir())[1:]:
            f.unlink()
    code = main(["check", "--data", str(tiny_folder), "--json", "--quiet", "--test-fraction", "0"])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out)
    assert any("single photo" in n for n in report["notes"]) and any("no label is scored" in n for n in report["notes"])


def test_copies_resized_re_encoded_cropped_or_mirrored_into_test_are_leaks_and_different_photos_are_not(tmp_path):
    """Each kind of copy a collection makes, of a different training photo, planted in test/: every one is a leak,
    and the other test photos (different photos of the same classes) are not."""
    from photos import copies

    root = tmp_path / "d"
    _cut(root / "train", classes=3, per_class=12)
    classes = sorted(p.name for p in (root / "train").iterdir())
    for cls in classes:
        (root / "test" / cls).mkdir(parents=True)
        for f in sorted((SAMPLE / "train" / cls).iterdir())[40:43]:
            shutil.copy(f, root / "test" / cls / f.name)
    planted = {}
    for i, kind in enumerate(
        ["resized 0.5", "resized 0.7", "resized 0.9", "jpeg 60", "mirrored", "cropped left and top"]
    ):
        cls = classes[i % 3]
        src = sorted((root / "train" / cls).iterdir())[i]
        copy = root / "test" / cls / f"copy-{i}.png"
        copies(Image.open(src).convert("RGB"))[kind].save(copy)
        planted[str(copy)] = (str(src), kind)
    report = check_photos(load_dataset(root, val_fraction=0.2), BACKBONE)
    found = {frozenset((p.a, p.b)) for p in report.leaks}
    missed = [kind for copy, (src, kind) in planted.items() if frozenset((copy, src)) not in found]
    assert not missed, (missed, report.leaks)
    others = [p for p in report.leaks if p.a not in planted and p.b not in planted]
    assert not others, others
    assert "cropped" in report.rule and report.to_dict()["rule"] == report.rule
