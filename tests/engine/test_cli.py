import json
import os
from pathlib import Path

import pytest

from engine.cli import main
from engine_cli import engine_cli
from engine.paths import REPO


def run(*args, env=None):
    return engine_cli(*args, env=env)


def test_backbones_json_lists_availability():
    out = run("backbones", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["tf_efficientnet_lite0"]["available"] and rows["tf_efficientnet_lite0"]["source"] == "bundled"


def test_inspect_data_reports_bad_files(bad_corpus, capsys):
    assert main(["inspect-data", str(bad_corpus)]) == 0
    out = capsys.readouterr().out
    assert "skipped:" in out and "truncated.jpg" in out and "WARNING" in out
    assert main(["inspect-data", "--data", str(bad_corpus)]) == 0  # as every other command takes a dataset
    assert capsys.readouterr().out == out
    assert main(["inspect-data"]) == 2
    assert "inspect-data needs one dataset: give it as FOLDER or as --data FOLDER" in capsys.readouterr().err


def test_probe_json_has_the_contract(tiny_folder, capsys):
    assert main(["probe", "--data", str(tiny_folder), "--json", "--quiet", "--per-stage", "--budget", "30"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"accuracy", "per_class", "plan", "seconds", "weights", "stage_curve"} <= set(d)
    plan = d["plan"]
    assert {"strategy", "decisions", "head", "phases", "cost", "version"} <= set(plan)
    assert {"frozen", "lrs"} <= set(plan["phases"]) and {"taps", "candidates"} <= set(plan["head"])
    assert d["weights"]["source"] == "bundled" and len(d["weights"]["sha256"]) == 64
    rec = d["recommendation"]  # what the Probe page shows, from the same plan
    said = " ".join(d["sentence"] for d in plan["decisions"] if d["about"] == "plan")
    assert rec["reason"] == said and rec["head"] == plan["head"]["label"]
    assert rec["rule_of_thumb"]["probe_accuracy"] == d["accuracy"] and rec["rule_of_thumb"]["suggests"]


@pytest.mark.parametrize(
    "strategy",
    ["auto", "top-k", pytest.param("lp-ft", marks=pytest.mark.slow)],  # lp-ft: in `make test-slow`
)
def test_plan_json_equals_the_plan_the_run_executes(tiny_folder, tmp_path, strategy):
    env = {"TRANSFERLAB_HOME": str(tmp_path)}
    args = [
        "--data",
        str(tiny_folder),
        "--strategy",
        strategy,
        "--epochs",
        "1",
        "--head-epochs",
        "1",
        "--batch-size",
        "4",
        "--views",
        "1",
        "--budget",
        "40",
        "--json",
        "--quiet",
    ]
    plan = run("plan", *args, env=env)
    assert plan.returncode == 0, plan.stderr
    train = run("train", *args, env=env)
    assert train.returncode == 0, train.stderr
    result = json.loads(train.stdout)
    stored = json.loads((Path(result["run_dir"]) / "plan.json").read_text())
    assert json.loads(plan.stdout) == stored
    assert {"test_accuracy", "test_interval", "test_n", "best_val_acc", "chosen_on"} <= set(result)


def test_errors_are_one_clear_line_and_exit_2(tmp_path, capsys):
    env = {"HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "t")}
    out = run("probe", "--data", str(REPO / "samples" / "plant-leaves-15"), "--backbone", "convnext_tiny", env=env)
    assert out.returncode == 2 and "No pretrained weights for convnext_tiny" in out.stderr
    assert "Traceback" not in out.stderr
    assert main(["inspect-data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    sample = str(REPO / "samples" / "plant-leaves-15")
    assert main(["plan", "--data", sample, "--target", sample, "--target-bn", "on", "--target-norm", "off"]) == 2
    assert "target_bn" in capsys.readouterr().err  # AdaBN's features are read on their own statistics
    assert main(["plan", "--data", sample, "--distill-from", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert "error: distill_from no-such-run: no such run" in err and sum("error" in x for x in err.splitlines()) == 1


def test_weights_commands_refuse_bad_input_in_one_line(tmp_path, capsys):
    assert main(["weights", "fetch", "resnet19"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown backbone 'resnet19'") and "\n" not in err
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main(["weights", "install", "resnet18", str(tmp_path / "junk.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "junk.pth could not be read as a weights-only PyTorch checkpoint" in err and "\n" not in err
    assert main(["weights", "install", "resnet18"]) == 2
    assert "needs the file" in capsys.readouterr().err


def test_export_for_a_target_prints_the_measured_table_and_json(finished_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(finished_store.root.parent))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    run_id = finished_store.list()[0].id
    args = ["export", "--run", run_id, "--target", "phone", "--formats", "onnx", "--out", str(tmp_path / "a")]
    assert main([*args, "--max-latency-ms", "0.01"]) == 0
    assert os.environ["TQDM_DISABLE"] == "1"  # a converter's progress bars (Core ML's) stay out of the command's lines
    out = capsys.readouterr().out
    assert "ONNX fp32" in out and "No file meets the phone budget" in out and "python predict.py PHOTO" in out
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in d["measures"]] == ["PyTorch", "ONNX fp32"] and d["target"]["max_latency_ms"] == 50
    assert set(d["files"]) == {"onnx", "predict"} and d["measures"][1]["agreement"] == 1.0
    assert main([*args[:3], "--target", "watch"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_export_help_names_every_format():
    from engine.serve.export import EXPORT_FORMATS

    out = run("export", "--help")
    assert out.returncode == 0 and all(f in out.stdout for f in EXPORT_FORMATS)
