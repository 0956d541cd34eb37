"""TransferLab's engine: transfer learning for image classification, with no user interface.

The public API below is what the dashboard and other programs use; everything else is internal and may move. Names are
imported on first use (PEP 562), so `import engine` stays cheap and does not load torch.

    from engine import load_dataset, get_plan, Runner, TrainConfig
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it. The import direction inside the engine is one way:
# service -> serve/train -> plan -> probe -> model/data -> runs/paths/errors.
_API: dict[str, str] = {
    # errors and places
    "TransferLabError": "engine.errors",
    "DataError": "engine.errors",
    "SAMPLE": "engine.paths",
    "home": "engine.paths",
    "sub": "engine.paths",
    "user_path": "engine.paths",
    "existing_path": "engine.paths",
    # data
    "load_dataset": "engine.data.dataset",
    "build_report": "engine.data.report",
    "viewable": "engine.data.imageio",
    "split_counts": "engine.data.dataset",
    "SplitCounts": "engine.data.dataset",
    "IMAGE_TYPES": "engine.data.imageio",
    "PRESETS": "engine.data.augment",
    # models
    "get_entry": "engine.model.catalogue",
    "input_spec": "engine.model.catalogue",
    "catalogue_rows": "engine.model.weights",
    "CatalogueRow": "engine.model.weights",
    "MISSING": "engine.model.weights",
    "create_backbone": "engine.model.weights",
    "layer_groups": "engine.model.groups",
    "pretrained_head_note": "engine.model.groups",
    "install_weights": "engine.model.weights",
    "fetch_weights": "engine.model.fetch",
    "remote_file": "engine.model.fetch",
    "FAMILIES": "engine.model.catalogue",
    "filter_grid": "engine.model.visual",
    "first_conv_weight": "engine.model.visual",
    # probe and plan
    "probe": "engine.probe.linear",
    "shootout": "engine.probe.shootout",
    "Shootout": "engine.probe.shootout",
    "ShootoutRow": "engine.probe.shootout",
    "measure_gap": "engine.probe.gap",
    "check_dataset": "engine.probe.check",
    "Decision": "engine.data.decisions",
    "save_decisions": "engine.data.decisions",
    "read_decisions": "engine.data.decisions",
    "DECISION_ACTIONS": "engine.data.decisions",
    "decide_pool_photo": "engine.data.decisions",
    "suggest_for": "engine.probe.suggest",
    "Suggestions": "engine.probe.suggest",
    "ADAPT_METHODS": "engine.model.adapt",
    "TrainConfig": "engine.plan.config",
    "STRATEGIES": "engine.plan.config",
    "BUDGETED": "engine.plan.phases",
    "BALANCE": "engine.plan.config",
    "TARGET_NORM": "engine.plan.config",
    "TARGET_HEAD": "engine.plan.config",
    "ADAPT_CHOICES": "engine.plan.config",
    "DEFAULT_BUDGET_S": "engine.plan.config",
    "MAX_PARAMS": "engine.plan.config",
    "DEFAULT_BACKBONE": "engine.plan.config",
    "demo_config": "engine.plan.config",
    "ConfigError": "engine.plan.config",
    "Plan": "engine.plan.parts",
    "BANDS": "engine.plan.rules",
    "band": "engine.plan.rules",
    "group_labels": "engine.plan.rules",
    "get_plan": "engine.plan.make",
    "teachers_for": "engine.plan.distill",
    "Planned": "engine.plan.stored",
    "plan_with_probe": "engine.plan.make",
    "load_data": "engine.plan.make",
    "finetune_anyway": "engine.plan.anyway",
    "kept_the_head": "engine.plan.anyway",
    "why_kept": "engine.plan.anyway",
    "edit_plan": "engine.plan.cost",
    "preflight": "engine.plan.preflight",
    "blocking": "engine.plan.preflight",
    # training, runs, serving
    "Trainer": "engine.train.loop",
    "lr_find": "engine.train.lrfind",
    "stories": "engine.serve.story",
    "literal": "engine.text",
    "Story": "engine.serve.story",
    "LrRange": "engine.train.lrfind",
    "rates_for": "engine.train.lrfind",
    "RunStore": "engine.runs.store",
    "TERMINAL": "engine.runs.store",
    "time_left": "engine.runs.events",
    "EpochEnded": "engine.runs.events",
    "PhaseStarted": "engine.runs.events",
    "SetupStep": "engine.runs.events",
    "StepEnded": "engine.runs.events",
    "RunView": "engine.serve.view",
    "RunResult": "engine.runs.result",
    "has_model": "engine.plan.trained",
    "evaluate": "engine.serve.evaluate",
    "Evaluation": "engine.serve.evaluate",
    "compare_row": "engine.serve.compare",
    "gap_sentence": "engine.serve.compare",
    "VAL_COLUMN_HELP": "engine.serve.compare",
    "paired_test": "engine.serve.compare",
    "LearningCurve": "engine.probe.curve",
    "dataset_labels": "engine.serve.compare",
    "estimate_accuracy": "engine.serve.estimate",
    "Estimate": "engine.serve.estimate",
    "runs_on": "engine.plan.trained",
    "CompareRow": "engine.serve.compare",
    "PairedTest": "engine.serve.compare",
    "export_run": "engine.serve.export",
    "model_card": "engine.serve.card",
    "ModelCard": "engine.serve.card",
    "EXPORT_FORMATS": "engine.serve.export",
    "CHECKED_FORMATS": "engine.serve.export",
    "Export": "engine.serve.export",
    "TARGETS": "engine.serve.targets",
    "Target": "engine.serve.targets",
    "FileMeasure": "engine.serve.measure",
    "export_zip": "engine.serve.bundle",
    "web_missing": "engine.serve.bundle",
    "LIVE": "engine.runs.store",
    "RESUMABLE": "engine.runs.store",
    "model_card_markdown": "engine.serve.card",
    "predict_image": "engine.serve.prediction",
    "Prediction": "engine.serve.prediction",
    "explain_run": "engine.serve.explain",
    "Unsure": "engine.calibration",
    "run_summary": "engine.serve.summary",
    "run_header": "engine.serve.summary",
    "no_epoch_sentence": "engine.serve.summary",
    "worst_mistakes": "engine.serve.summary",
    "Mistake": "engine.serve.summary",
    "Runner": "engine.service.runner",
    "ARM_TEXT": "engine.service.experiment",
    "LESSON_TEXT": "engine.service.experiment",
    "lesson_configs": "engine.service.experiment",
    "lesson_estimate": "engine.service.experiment",
    "lesson_progress": "engine.service.experiment",
    "LessonEstimate": "engine.service.experiment",
    "lesson_rows": "engine.service.experiment",
    "LessonRow": "engine.service.experiment",
    "lesson_sentence": "engine.service.experiment",
    "Job": "engine.service.jobs",
    "Jobs": "engine.service.jobs",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from engine.data.augment import PRESETS
    from engine.data.dataset import SplitCounts, load_dataset, split_counts
    from engine.data.imageio import IMAGE_TYPES, viewable
    from engine.data.report import build_report
    from engine.errors import DataError, TransferLabError
    from engine.model.catalogue import FAMILIES, get_entry, input_spec
    from engine.model.fetch import fetch_weights, remote_file
    from engine.model.adapt import ADAPT_METHODS
    from engine.model.groups import layer_groups, pretrained_head_note
    from engine.model.visual import filter_grid, first_conv_weight
    from engine.model.weights import MISSING, CatalogueRow, catalogue_rows, create_backbone, install_weights
    from engine.paths import SAMPLE, existing_path, home, sub, user_path
    from engine.plan.config import (
        ADAPT_CHOICES,
        BALANCE,
        DEFAULT_BACKBONE,
        DEFAULT_BUDGET_S,
        MAX_PARAMS,
        STRATEGIES,
        TARGET_HEAD,
        TARGET_NORM,
        ConfigError,
        TrainConfig,
        demo_config,
    )
    from engine.plan.anyway import finetune_anyway, kept_the_head, why_kept
    from engine.plan.cost import edit_plan
    from engine.plan.phases import BUDGETED
    from engine.plan.make import get_plan, load_data, plan_with_probe
    from engine.plan.stored import Planned
    from engine.plan.preflight import blocking, preflight
    from engine.plan.parts import Plan
    from engine.plan.rules import BANDS, band, group_labels
    from engine.probe.linear import probe
    from engine.data.decisions import DECISION_ACTIONS, Decision, decide_pool_photo, read_decisions, save_decisions
    from engine.probe.suggest import Suggestions, suggest_for
    from engine.probe.check import check_dataset
    from engine.probe.curve import LearningCurve
    from engine.probe.gap import measure_gap
    from engine.probe.shootout import Shootout, ShootoutRow, shootout
    from engine.runs.events import EpochEnded, PhaseStarted, SetupStep, StepEnded, time_left
    from engine.runs.store import LIVE, RESUMABLE, TERMINAL, RunStore
    from engine.runs.result import RunResult
    from engine.serve.view import RunView
    from engine.serve.compare import (
        VAL_COLUMN_HELP,
        CompareRow,
        PairedTest,
        compare_row,
        dataset_labels,
        gap_sentence,
        paired_test,
    )
    from engine.serve.estimate import Estimate, estimate_accuracy
    from engine.plan.trained import has_model, runs_on
    from engine.plan.distill import teachers_for
    from engine.serve.evaluate import Evaluation, evaluate
    from engine.calibration import Unsure
    from engine.serve.explain import explain_run
    from engine.serve.card import ModelCard, model_card, model_card_markdown
    from engine.serve.export import CHECKED_FORMATS, Export, EXPORT_FORMATS, export_run
    from engine.serve.prediction import Prediction, predict_image
    from engine.serve.bundle import export_zip, web_missing
    from engine.serve.measure import FileMeasure
    from engine.serve.story import Story, stories
    from engine.serve.targets import TARGETS, Target
    from engine.text import literal
    from engine.serve.summary import Mistake, no_epoch_sentence, run_header, run_summary, worst_mistakes
    from engine.service.experiment import (
        ARM_TEXT,
        LESSON_TEXT,
        LessonEstimate,
        LessonRow,
        lesson_configs,
        lesson_estimate,
        lesson_progress,
        lesson_rows,
        lesson_sentence,
    )
    from engine.service.jobs import Job, Jobs
    from engine.service.runner import Runner
    from engine.train.loop import Trainer
    from engine.train.lrfind import LrRange, lr_find, rates_for
