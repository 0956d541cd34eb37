"""Every backbone family end to end, with random weights and a few photos (no network): probe, plan, one epoch, export
with ONNX checked against PyTorch, predict. ViT-B-sized models, DenseNet and ConvNeXt run under `make test-slow`; the
ViT code path runs here with DINOv2 ViT-S/14, and CLIP's own contract is checked without training."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import torch
from conftest import SAMPLE
from engine_cli import engine_cli, torchrun_cli

from engine.model.catalogue import build_model, get_entry, input_spec
from engine.model.profile import architecture
from engine.model.taps import FINAL, TapModel
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, save_planned
from engine.runs.store import RunStore
from engine.serve.export import export_run
from engine.serve.prediction import predict_image
from engine.train.loop import Trainer

FAMILIES = ["resnet18", "mobilenetv3_small_100", "efficientnet_b0", "vit_small_patch14_dinov2.lvd142m"]
LARGE = ["vit_base_patch16_224", "vit_base_patch16_clip_224.openai"]
HEAVY_CNN = ["densenet121", "convnext_tiny"]  # end to end under `make test-slow` with ViT-B (CI's 20 minutes)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("families") / "tiny"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (root / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:5]:
            shutil.copy(f, root / cls.name / f.name)
    return root


def _one_stage(name: str, data, finetune_epochs: int) -> TrainConfig:
    """A top-1 fine-tune of `name` from random weights on `data`: no head phase, one view, batches of 4."""
    return TrainConfig.create(
        data=str(data),
        backbone=name,
        weights="none",
        strategy="top-k",
        top_k=1,
        head_epochs=0,
        finetune_epochs=finetune_epochs,
        views=1,
        batch_size=4,
        val_fraction=0.34,
        test_fraction=0.0,
    )


def _end_to_end(name: str, data, tmp_path) -> None:
    cfg = _one_stage(name, data, finetune_epochs=1)
    planned = get_plan(cfg)
    plan = planned.plan
    spec, own = plan.input, input_spec(name)
    assert plan.backbone == name and (spec.input_size, spec.mean, spec.std) == (own.input_size, own.mean, own.std)
    store = RunStore(tmp_path / "runs")
    run = store.create(cfg.to_dict(), name)
    save_planned(run.path, planned)
    result = Trainer(cfg, run, planned=planned).fit()
    assert result.status == "finished", result
    trained = [e for e in run.events("epoch") if e.epoch >= 1]
    assert trained and trained[-1].grad_norm[-2] > 0  # the top group under the head trained
    out = export_run(run, tmp_path / "export")
    assert out.checks["onnx_same_top1"] and {"onnx", "torchscript"} <= set(out.files)
    top = predict_image(run, str(next((SAMPLE / "val").rglob("*.jpg"))), k=2).top
    assert len(top) == 2 and top[0][1] >= top[1][1]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_end_to_end(name, photos, tmp_path):
    _end_to_end(name, photos, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE + HEAVY_CNN)
def test_large_family_end_to_end(name, photos, tmp_path):
    _end_to_end(name, photos, tmp_path)


@pytest.mark.parametrize("name", LARGE)
def test_every_transformer_has_a_group_per_block(name):
    assert [g for g in architecture(name).backbone_groups if g.startswith("blocks.")] == [
        f"blocks.{i}" for i in range(11)
    ] + ["blocks.11+norm"]


def test_a_transformer_plan_decays_its_rates_gently_per_block(photos):
    cfg = TrainConfig.create(
        data=str(photos),
        backbone="vit_small_patch14_dinov2.lvd142m",
        weights="none",
        strategy="full",
        views=1,
        val_fraction=0.34,
        test_fraction=0.0,
    )
    plan = get_plan(cfg).plan
    assert len([g for g in plan.phases.groups if g.startswith("blocks.")]) == 12
    head = plan.phases.lrs[-1]
    assert plan.phases.lrs[-2] == pytest.approx(head * 0.75) and plan.phases.lrs[-3] == pytest.approx(head * 0.75**2)
    assert "BatchNorm" not in plan.reason


def test_lp_ft_wording_follows_the_normalisation(photos):
    def reason(name):
        cfg = TrainConfig.create(
            data=str(photos),
            backbone=name,
            weights="none",
            strategy="lp-ft",
            views=1,
            val_fraction=0.34,
            test_fraction=0.0,
        )
        return get_plan(cfg).plan.reason

    assert "BatchNorm statistics kept" in reason("resnet18")
    assert "no running statistics" in reason("convnext_tiny")


def test_clip_contract_is_clips_and_dinov2_runs_at_224():
    clip = input_spec("vit_base_patch16_clip_224.openai")
    assert clip.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert clip.std == pytest.approx((0.26862954, 0.26130258, 0.27577711))
    dino = get_entry("vit_small_patch14_dinov2.lvd142m")
    assert dino.input_size == (3, 224, 224) and input_spec(dino.name).input_size == (3, 224, 224)


def test_the_final_tap_reads_the_features_timm_gives_its_head():
    torch.manual_seed(0)
    backbone = build_model("vit_small_patch14_dinov2.lvd142m").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = backbone.forward_head(backbone.forward_features(x), pre_logits=True)
        model = TapModel(backbone, (FINAL,), 3).eval()
        torch.testing.assert_close(model.features(x), expected)


def test_dinov2_hub_weights_are_resampled_to_224(tmp_path):
    from engine.model.weights import load_pretrained

    with torch.random.fork_rng():
        torch.manual_seed(0)
        full = build_model("vit_small_patch14_dinov2.lvd142m", img_size=518).state_dict()  # as the hub file is
    model, dropped = load_pretrained("vit_small_patch14_dinov2.lvd142m", full)
    assert model.pos_embed.shape[1] == 1 + 16 * 16 and not dropped
    torch.testing.assert_close(model.blocks[5].attn.qkv.weight, full["blocks.5.attn.qkv.weight"])


@pytest.mark.parametrize("name", ["convnext_tiny", "vit_small_patch14_dinov2.lvd142m"])
def test_per_stage_probe_names_each_stage_or_block(name, photos):
    from engine.data.dataset import load_dataset
    from engine.probe.linear import probe

    r = probe(load_dataset(str(photos)), name, weights="none")
    names = [c["name"] for c in r.stage_curve]
    assert names[-1] == "final features" and len(names) >= 5
    assert all(n.startswith(("blocks.", "stages.", "stem", "patch_embed")) for n in names[:-1]), names


@pytest.mark.slow
def test_a_transformer_through_auto_evaluate_and_resume(tmp_path):
    """DINOv2 ViT-S/14 (random weights) through auto, evaluate on its test split, then a top-k run stopped after its
    first epoch and resumed (the CLI, as a person runs it)."""
    import json
    import os

    photos = tmp_path / "photos"  # 12 a class: enough for a held-out test split
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (photos / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:12]:
            shutil.copy(f, photos / cls.name / f.name)
    env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path / "home")}
    name = "vit_small_patch14_dinov2.lvd142m"

    def cli(*args):
        out = engine_cli(*args, "--json", env=env, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    auto = cli(
        "train",
        "--data",
        str(photos),
        "--backbone",
        name,
        "--weights",
        "none",
        "--budget",
        "60",
        "--test-fraction",
        "0.2",
        "--quiet",
    )
    assert auto["status"] == "finished" and auto["test_accuracy"] is not None
    scored = cli("evaluate", "--run", auto["run_id"], "--split", "test")
    assert scored["accuracy"] == pytest.approx(auto["test_accuracy"])
    store = RunStore(tmp_path / "home" / "runs")
    cfg = _one_stage(name, photos, finetune_epochs=2)
    planned = get_plan(cfg)
    run = store.create(cfg.to_dict(), "stopped")
    save_planned(run.path, planned)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(Trainer(cfg, run, planned=planned).fit()))
    worker.start()
    while worker.is_alive() and not [e for e in run.events("epoch") if e.epoch >= 1]:
        time.sleep(0.2)
    run.request_stop()
    worker.join()
    assert result["status"] == "cancelled"
    resumed = cli("resume", "--run", run.id, "--quiet")
    assert resumed["status"] == "finished"
    assert max(e.epoch for e in store.open(run.id).events("epoch")) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_tiny", "vit_small_patch14_dinov2.lvd142m"])
def test_torchrun_two_processes_train_a_family(name, photos, tmp_path):
    """torchrun --nproc_per_node=2 (gloo, CPU) with a ConvNeXt and a ViT: one run, recorded once, finished."""

    out = torchrun_cli(
        "train",
        "--data",
        str(photos),
        "--backbone",
        name,
        "--weights",
        "none",
        "--strategy",
        "full",
        "--head-epochs",
        "0",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--views",
        "1",
        "--quiet",
        "--json",
        home=tmp_path,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = RunStore(tmp_path / "runs").list()
    assert len(runs) == 1 and runs[0].status()["state"] == "finished"
    assert runs[0].events("run_started")[0].world_size == 2
