"""RunResult: the metrics.json record, typed; read back whatever version wrote it."""

from engine.runs.result import RunResult
from engine.runs.store import RunStore


def test_a_result_round_trips_through_metrics_json_and_names_its_scored_split(tmp_path):
    run = RunStore(tmp_path).create({})
    result = RunResult(
        status="finished",
        best_epoch=2,
        best_val_acc=0.9,
        classes=["a", "b"],
        val_pred=[0, 1],
        val_labels=[0, 0],
        val_paths=["x", "y"],
        val_conf=[0.9, 0.8],
        per_class={"a": 0.5, "b": 1.0},
    )
    run.write_json("metrics.json", result.to_dict())
    back = RunResult.read(run)
    assert back == result and back.scored_split == "val"
    assert back.predictions() == (["x", "y"], [0, 0], [0, 1], [0.9, 0.8])
    tested = RunResult(test_pred=[1], test_labels=[1], test_paths=["z"], test_conf=[0.7], test_per_class={"b": 1.0})
    assert tested.scored_split == "test" and tested.class_scores() == ({"b": 1.0}, [])


def test_an_older_or_newer_record_reads_its_known_keys_and_a_missing_one_is_none(tmp_path):
    run = RunStore(tmp_path).create({})
    assert RunResult.read(run) is None  # no result while queued or training
    old = RunResult.from_dict({"status": "cancelled", "best_val_acc": 0.7, "a_key_from_elsewhere": 1})
    assert old.status == "cancelled" and old.test_accuracy is None and old.best_epoch == -1
