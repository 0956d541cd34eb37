"""The teacher of a distilled run, decided: refused in one line when it cannot teach, listed for the Train page when
it can, and its pass counted in the plan's cost."""

import os
import shutil

import pytest

from engine.plan.config import TrainConfig
from engine.plan.distill import teachers_for
from engine.runs.store import RunStore


def test_a_teacher_of_other_classes_or_none_at_all_is_refused_in_one_line(finished_store, sample_run, tmp_path):
    from engine.errors import DataError
    from engine.plan.make import make_plan, load_data

    teacher = finished_store.list()[0]
    cfg = TrainConfig.from_dict(teacher.config)
    ds = load_data(cfg)
    with pytest.raises(DataError, match="the teacher knows the classes"):
        make_plan(cfg.with_(distill_from=str(sample_run.path)), ds)
    with pytest.raises(DataError, match="no such run"):
        make_plan(cfg.with_(distill_from="no-such-run"), ds)
    untrained = tmp_path / "untrained"
    shutil.copytree(teacher.path, untrained, ignore=shutil.ignore_patterns("*.safetensors", "*.pt"))
    with pytest.raises(DataError, match="has no model yet"):
        make_plan(cfg.with_(distill_from=str(untrained)), ds)
    live = tmp_path / "live"
    shutil.copytree(teacher.path, live)
    RunStore(tmp_path).open("live").set_status(state="running", pid=os.getpid())
    with pytest.raises(DataError, match="is still training"):
        make_plan(cfg.with_(distill_from=str(live)), ds)


def test_the_runs_of_the_same_folder_are_offered_as_teachers_and_their_pass_is_costed(finished_store, tmp_path):
    from engine.plan.make import make_plan, load_data

    teacher = finished_store.list()[0]
    cfg = TrainConfig.from_dict(teacher.config)
    offered = teachers_for(cfg.data.path, finished_store)
    assert list(offered) == [str(teacher.path)] and offered[str(teacher.path)].startswith(teacher.id)
    assert teachers_for(str(tmp_path), finished_store) == {}  # another folder: nothing to learn from
    ds = load_data(cfg)
    plain = make_plan(cfg, ds).plan
    taught = make_plan(cfg.with_(distill_from=str(teacher.path)), ds).plan
    assert plain.cost.teach_s == 0 and taught.cost.teach_s > 0 and taught.distill.backbone == teacher.config["backbone"]
    assert [d.kind for d in taught.decisions if d.kind == "distill"] == ["distill"]


def test_the_decision_counts_the_models_that_run_not_the_catalogue_with_imagenet_head(finished_store):
    from engine.model.catalogue import get_entry
    from engine.plan.make import load_data, make_plan
    from engine.plan.trained import load_run_model

    teacher = finished_store.list()[0]
    cfg = TrainConfig.from_dict(teacher.config)
    ds = load_data(cfg)
    plan = make_plan(cfg.with_(distill_from=str(teacher.path)), ds).plan
    said = next(d for d in plan.decisions if d.kind == "distill").evidence
    model, _, _ = load_run_model(teacher)
    assert said["teacher_params"] == sum(p.numel() for p in model.parameters())  # its 3-class head, as it runs
    assert said["teacher_params"] < get_entry(teacher.config["backbone"]).params_m * 1e6  # not ImageNet's 1000
    assert said["student_backbone"] == plan.backbone
    assert said["student_params"] == said["teacher_params"]  # the same backbone and head taps as its teacher here
