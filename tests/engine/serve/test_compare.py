"""Is run A really better than run B: McNemar's exact test on the photos only one of them got right, paired by the
test photos both scored (engine.serve.compare, engine.metrics)."""

import pytest

from engine.metrics import mcnemar
from engine.runs.result import RunResult
from engine.runs.store import RunStore
from engine.serve.compare import CompareRow, gap_sentence, paired_test


def test_mcnemar_gives_the_exact_binomial_p_value_of_known_tables():
    assert mcnemar(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 * P(X <= 1), X ~ Binomial(10, 1/2)
    assert mcnemar(7, 3) == pytest.approx(2 * 176 / 1024)
    assert mcnemar(5, 5) == 1.0 and mcnemar(0, 0) == 1.0
    assert mcnemar(0, 6) == pytest.approx(2 / 64)


def _run(store: RunStore, name: str, labels: list[int], pred: list[int], paths: list[str] | None = None):
    run = store.create({}, name=name)
    paths = paths or [f"/data/test/{i}.jpg" for i in range(len(labels))]
    result = RunResult(status="finished", run_id=run.id, test_paths=paths, test_labels=labels, test_pred=pred)
    run.write_json("metrics.json", result.to_dict())
    return RunResult.read(run)


def test_a_run_is_better_only_when_the_photos_it_alone_got_right_are_too_many_for_chance(tmp_path):
    store = RunStore(tmp_path)
    labels = [0, 1] * 20
    a = _run(store, "a", labels, labels)  # right on all 40
    b = _run(store, "b", labels, [1 - y if i < 10 else y for i, y in enumerate(labels)])  # wrong on 10
    c = _run(store, "c", labels, [1 - y if i < 2 else y for i, y in enumerate(labels)])  # wrong on 2
    ab = paired_test(a, b)
    assert (ab.n, ab.only_a, ab.only_b) == (40, 10, 0) and ab.p_value == pytest.approx(2 / 1024)
    assert ab.better == a.run_id and ab.difference == pytest.approx(0.25) and "beyond chance" in ab.sentence
    ac = paired_test(a, c)
    assert ac.better is None and ac.verdict == "may be chance" and "may be chance" in ac.sentence
    assert paired_test(b, a).better == a.run_id


def test_runs_on_other_test_photos_or_labels_are_not_paired(tmp_path):
    store = RunStore(tmp_path)
    a = _run(store, "a", [0, 1, 0], [0, 1, 0])
    other_photos = _run(store, "b", [0, 1, 0], [0, 1, 0], paths=["/x/1.jpg", "/x/2.jpg", "/x/3.jpg"])
    other_labels = _run(store, "c", [1, 1, 0], [0, 1, 0])
    unscored = RunResult.read(store.create({}, name="d"))
    assert paired_test(a, other_photos) is None and paired_test(a, other_labels) is None
    assert paired_test(a, unscored) is None


def test_two_datasets_of_one_name_get_two_labels_and_one_of_a_name_keeps_its_own():
    from types import SimpleNamespace

    from engine.serve.compare import dataset_labels

    paths = ["/srv/shared/plant-leaves-15", "/home/me/samples/plant-leaves-15", "/srv/shared/plant-leaves-15"]
    paths += ["/data/a/x/eurosat", "/data/b/x/eurosat", "/data/tiny"]
    rows = [SimpleNamespace(dataset_path=p) for p in paths]
    labels = dataset_labels(rows)
    assert labels == {
        "/srv/shared/plant-leaves-15": "plant-leaves-15 (shared)",
        "/home/me/samples/plant-leaves-15": "plant-leaves-15 (samples)",
        "/data/a/x/eurosat": "eurosat (a/x)",
        "/data/b/x/eurosat": "eurosat (b/x)",
        "/data/tiny": "tiny",
    }


def _row(epochs_trained: int, best_epoch: int, test: float) -> CompareRow:
    return CompareRow(
        *("r1", "plants", "/d/plants", "tf_efficientnet_lite0", "feature-extraction", "finished"),
        *(0.86, 0.87, test, (0.8, 0.9), 161, 0.85, (0.8, 0.9), best_epoch, epochs_trained, 8.0, 13.0),
    )


def test_the_gap_sentence_tells_a_run_that_trained_nothing_from_one_whose_epochs_lost():
    assert gap_sentence([_row(0, 0, 0.85)]).startswith("No run here trained an epoch")
    assert gap_sentence([_row(3, 0, 0.85)]).startswith("No trained epoch beat the probe's head")
    assert gap_sentence([_row(3, 2, 0.90)]).startswith("Run r1 (feature-extraction) went from 85% with the probe's")
