"""The model card: the input contract, honest metrics and rules of a run's model, naming no folder of this server."""

from __future__ import annotations

import json

from engine.plan.stored import read_plan
from engine.runs.result import RunResult
from engine.serve.card import FORMAT, METRICS, model_card, model_card_markdown


def _run(store):
    return store.list()[0]


def test_the_card_is_the_runs_own_contract_and_metrics(finished_store):
    run = _run(finished_store)
    card, plan, result = model_card(run), read_plan(run.path), RunResult.read(run)
    assert card.to_dict()["format"] == FORMAT
    assert card.backbone == plan.backbone and card.strategy == plan.strategy
    assert card.input_size == plan.input.to_dict()["input_size"] and card.mean == plan.input.to_dict()["mean"]
    assert card.classes == run.read_json("run_info.json")["classes"]
    assert card.metrics == {k: getattr(result, k) for k in METRICS}
    assert card.status == "finished" and card.in_chans == 3 and "RGB" in card.preprocessing


def test_the_card_names_no_folder_of_this_server(finished_store):
    run = _run(finished_store)
    written = json.dumps(model_card(run).to_dict()) + model_card_markdown(run)
    data = run.config["data"]["path"]
    assert data not in written and str(finished_store.root) not in written and "path" not in model_card(run).weights


def test_the_markdown_states_the_accuracy_chosen_on_val_and_every_class_in_output_order(finished_store):
    run = _run(finished_store)
    card, said = model_card(run), model_card_markdown(run)
    assert f"{card.metrics['best_val_acc']:.1%} on the validation photos it was chosen on" in said
    assert "in output order:** " + ", ".join(f"{i} `{c}`" for i, c in enumerate(card.classes)) in said
    assert f"{card.input_size[-1]}×{card.input_size[-1]} px" in said
