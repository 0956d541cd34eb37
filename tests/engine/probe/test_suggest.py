"""What to label next, on real photos and real weights: the pool ranked by the head fitted on the labelled photos,
each suggestion with the head's guess; the answers stored as decisions and used by the next plan; the CLI in one
line for a bad pool."""

import json
import shutil

import pytest
from conftest import SAMPLE
from engine_cli import engine_cli

from engine.data.dataset import load_dataset
from engine.data.decisions import decide_pool_photo
from engine.errors import DataError
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan
from engine.probe.suggest import suggest_photos

BACKBONE = "tf_efficientnet_lite0"
CLASSES = 4


def _data(tmp_path, per_class=8):
    data = tmp_path / "data"
    for cls in sorted((SAMPLE / "train").iterdir())[:CLASSES]:
        (data / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            shutil.copy(f, data / cls.name / f.name)
    return data


def _pool(tmp_path, per_class=5):
    """Photos of the sample's val split of the same classes, flat (no labels), named so the truth stays known."""
    pool = tmp_path / "pool"
    pool.mkdir()
    for cls in sorted((SAMPLE / "val").iterdir())[:CLASSES]:
        for f in sorted(cls.iterdir())[:per_class]:
            shutil.copy(f, pool / f"{cls.name}--{f.name}")
    return pool


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suggest")
    ds = load_dataset(_data(tmp), val_fraction=0.25)
    return ds, _pool(tmp), suggest_photos(ds, tmp / "pool", BACKBONE, n=6)


def test_the_pool_is_ranked_and_each_photo_carries_the_heads_guess(ranked):
    ds, pool, found = ranked
    assert len(found.photos) == 6 and found.ranked == 20 and found.labelled == len(ds.train) + len(ds.val)
    assert len({s.path for s in found.photos}) == 6 and all(s.path.startswith(str(pool)) for s in found.photos)
    assert all(s.guess in ds.classes and s.second in ds.classes and s.guess != s.second for s in found.photos)
    assert all(1.0 >= s.guess_p >= s.second_p >= 0.0 for s in found.photos)
    right = sum(s.guess == s.path.rsplit("/", 1)[1].split("--")[0] for s in found.photos)
    assert right >= 2  # real features: the guess is better than chance (1 in 4) even on the doubtful photos
    assert json.loads(json.dumps(found.to_dict()))["photos"][0]["margin"] == round(found.photos[0].margin, 4)


def test_the_answers_are_used_by_the_next_plan_and_not_suggested_again(tmp_path):
    data = _data(tmp_path, per_class=6)
    pool = _pool(tmp_path, per_class=2)
    ds = load_dataset(data, val_fraction=0.34)
    first = suggest_photos(ds, pool, BACKBONE, n=3)
    for s in first.photos[:2]:
        decide_pool_photo(ds, s.path, s.path.rsplit("/", 1)[1].split("--")[0])  # the person gives the truth
    decide_pool_photo(ds, first.photos[2].path, None)
    before = {p: p.read_bytes() for p in [*pool.iterdir(), *data.rglob("*.jpg")]}
    again = suggest_photos(ds, pool, BACKBONE, n=3)
    assert again.ranked == 5 and again.from_pool == 2 and again.labelled == first.labelled + 2
    assert not {s.path for s in again.photos} & {s.path for s in first.photos}
    assert any("3 photo(s) of the pool you labelled or skipped" in n for n in again.notes)
    cfg = TrainConfig.create(data=str(data), strategy="feature-extraction", val_fraction=0.34, views=1)
    assert "2 labelled from your pool and added to the training photos" in get_plan(cfg).plan.reason
    after = {p: p.read_bytes() for p in [*pool.iterdir(), *data.rglob("*")] if p.is_file()}
    assert after == before  # nothing written to the user's folders


def test_a_pool_that_is_all_decided_is_one_line(tmp_path):
    ds = load_dataset(_data(tmp_path, per_class=4), val_fraction=0.25)
    pool = _pool(tmp_path, per_class=1)
    for f in pool.iterdir():
        decide_pool_photo(ds, str(f), None)
    with pytest.raises(DataError, match="none of its 4 readable photo.s. is left to label"):
        suggest_photos(ds, pool, BACKBONE)


def test_the_cli_ranks_a_pool_and_refuses_an_empty_one_in_one_line(tmp_path):
    data = _data(tmp_path, per_class=4)
    pool = _pool(tmp_path, per_class=2)
    out = engine_cli("suggest", "--data", data, "--pool", pool, "--n", 3, "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["photos"]) == 3
    text = engine_cli("suggest", "--data", data, "--pool", pool, "--n", 2, "--quiet")
    assert "Label these 2 first, of 8 pool photo(s) ranked" in text.stdout and "looks like" in text.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = engine_cli("suggest", "--data", data, "--pool", empty)
    assert bad.returncode != 0 and "no readable photos" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
