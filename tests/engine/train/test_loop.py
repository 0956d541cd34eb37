"""The training loop on a tiny dataset: rates follow the plan, frozen groups stay bit-identical, cancel, failure."""

import time

import numpy as np
import pytest
import torch

from engine.model.groups import layer_groups
from engine.model.weights import create_backbone
from engine.plan.config import TrainConfig
from engine.plan.stored import read_plan
from engine.runs.events import CancelToken, StepEnded
from engine.runs.store import RunStore
from conftest import planned, tiny_cfg
from engine.service.training import train
from engine.train.loop import Trainer
from engine.train.optim import Schedule


def test_rates_follow_the_plan_at_every_step_and_frozen_groups_are_untouched(tiny_folder, tmp_path):
    cfg = tiny_cfg(tiny_folder, cache_activations=False)
    run = planned(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    trainer = Trainer(cfg, run)
    held: list[list[float]] = []
    setup = trainer.setup

    def spy_setup(done=0):
        ctx = setup(done)
        real_step = ctx.opt.step

        def step(*a, **k):
            per_layer = {}
            for pg in ctx.opt.param_groups:
                per_layer.setdefault(pg["layer"], set()).add(pg["lr"])
            assert all(len(v) == 1 for v in per_layer.values())  # decay and no-decay halves agree
            held.append([per_layer[i].pop() for i in sorted(per_layer)])
            return real_step(*a, **k)

        ctx.opt.step = step
        return ctx

    trainer.setup = spy_setup
    metrics = trainer.fit()
    assert metrics.status == "finished", metrics.error

    steps = run.events("step")
    assert [e.lrs for e in steps] == held  # the events record what the optimiser held
    plan = run.read_json("plan.json")
    n_train = 18 - len(metrics.val_labels)
    per_epoch = -(-n_train // cfg.optim.batch_size)
    p1 = Schedule(1 * per_epoch, floor=cfg.optim.min_lr_ratio)
    p2 = Schedule(2 * per_epoch, 1 * per_epoch, floor=cfg.optim.min_lr_ratio)
    head = len(plan["phases"]["groups"]) - 1
    for i, e in enumerate(steps):
        if e.phase == 1:
            expected = [0.0] * head + [plan["phases"]["head_lr"] * p1.factor(i)]
        else:
            expected = [lr * p2.factor(i - per_epoch) for lr in plan["phases"]["lrs"]]
        assert e.lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert steps[per_epoch].lrs[-1] == pytest.approx(
        plan["phases"]["lrs"][-1] * 0.1
    )  # warm-up starts at 10% of the target

    ref, _ = create_backbone(cfg.backbone)
    ref_state = {f"backbone.{k}": v for k, v in ref.state_dict().items()}
    trained = trainer.ctx.model.state_dict()
    groups = layer_groups(trainer.ctx.model)
    for g, frozen in zip(groups, plan["phases"]["frozen"]):
        if not frozen:
            continue
        for mod in g.modules:
            for k in [k for k in ref_state if k.startswith(mod + ".")]:
                assert torch.equal(ref_state[k], trained[k].cpu()), k  # weights and BN running stats, bit for bit
    assert run.events("epoch")[0].epoch == 0  # the probe's head, validated before any training
    drift = run.events("epoch")[-1].drift
    assert all((d == 0) == f for d, f in zip(drift, plan["phases"]["frozen"]))  # the trainable groups did move


def cancel_at(run, when) -> CancelToken:
    """A token that is cancelled once `run` records a training step for which `when(step event)` holds."""
    token = CancelToken()
    append = run.append

    def spy(ev):
        append(ev)
        if isinstance(ev, StepEnded) and when(ev):
            token.cancel()

    run.append = spy
    return token


def test_cancel_takes_effect_within_one_step(tiny_folder, tmp_path):
    cfg = tiny_cfg(tiny_folder, head_epochs=2, finetune_epochs=3)
    run = RunStore(tmp_path).create(cfg.to_dict())
    token = cancel_at(run, lambda ev: ev.step == 3)
    metrics = train(cfg, run, token)
    assert metrics.status == "cancelled"
    assert max(e.step for e in run.events("step")) == 3
    assert run.events()[-1].kind == "run_ended" and run.status()["state"] == "cancelled"


def test_a_resume_reads_the_complete_cached_views_back_instead_of_decoding_the_photos_again(
    tiny_folder, tmp_path, monkeypatch
):
    import engine.train.views as views_mod
    from engine.data.batches import AugmentedImages

    decodes = []
    real_decode_all, real_load = AugmentedImages.decode_all, views_mod.load_images
    monkeypatch.setattr(AugmentedImages, "decode_all", lambda self: decodes.append(len(self)) or real_decode_all(self))
    monkeypatch.setattr(views_mod, "load_images", lambda *a, **k: decodes.append(len(a[1])) or real_load(*a, **k))
    cfg = tiny_cfg(tiny_folder, head_epochs=1, finetune_epochs=2)
    run = RunStore(tmp_path).create(cfg.to_dict())
    append = run.append
    token = cancel_at(run, lambda ev: ev.epoch == 3)  # in phase 2
    trainer = Trainer(cfg, planned(cfg, run), token)
    assert trainer.fit().status == "cancelled"
    assert trainer.ctx.split is not None and decodes  # phase 2 ran on cached activations, computed from the photos
    assert len(list(run.path.glob("views-*.pt"))) == 1  # kept for the resume
    decodes.clear()
    run.append = append
    resumed, t_resume = Trainer(cfg, run), time.time()
    assert resumed.fit().status == "finished"
    assert decodes == []  # nothing decoded to cache again
    plan = read_plan(run.path)  # the run is expected to take what is left after its epoch 2, not the whole run again
    etas = [e.run_eta_s for e in run.events("setup") if e.t >= t_resume and e.run_eta_s is not None]
    assert etas and etas[0] <= plan.seconds_left(2) + 0.5 and plan.seconds_left(2) < plan.cost.run_s
    steps = [e.name for e in run.events("setup")]
    assert any(n.startswith("cache features of augmented views: reused") for n in steps)
    assert not list(run.path.glob("views-*.pt"))  # a finished run keeps no cache


def test_failure_keeps_metrics_and_checkpoint(tiny_folder, tmp_path, monkeypatch):
    cfg = tiny_cfg(tiny_folder)
    run = planned(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    trainer = Trainer(cfg, run)
    real = trainer._epoch

    def boom(*a):
        if trainer.state.phase.number == 2:
            raise RuntimeError("disk full")
        return real(*a)

    trainer._epoch = boom
    metrics = trainer.fit()
    assert metrics.status == "failed" and "disk full" in metrics.error
    assert run.load_checkpoint("last")["epoch"] == 1 and run.events("epoch")
    assert (run.path / "error.txt").exists() and run.read_json("metrics.json")["status"] == "failed"


def test_a_run_is_reproducible_from_its_seed(tiny_folder, tmp_path):
    def losses(seed):
        cfg = tiny_cfg(tiny_folder, strategy="feature-extraction", head_epochs=2, finetune_epochs=0, seed=seed)
        run = RunStore(tmp_path).create(cfg.to_dict())
        assert train(cfg, run).status == "finished"
        torch.rand(100)  # whatever ran before must not matter
        return [e.loss for e in run.events("step")]

    first = losses(0)
    assert losses(0) == first and losses(1) != first


def test_strategies_run(tiny_folder, tmp_path):
    for strategy in ("feature-extraction", "full", "lp-ft", "scratch"):
        cfg = tiny_cfg(tiny_folder, strategy=strategy, finetune_epochs=1, head_epochs=1, views=1)
        run = RunStore(tmp_path).create(cfg.to_dict())
        m = train(cfg, run)
        assert m.status == "finished", (strategy, m.error)
        assert (run.path / "model.safetensors").exists()


def test_with_no_epoch_to_train_the_starting_validation_is_the_final_val_score(tiny_folder, tmp_path, monkeypatch):
    """The starting head was validated through the images exactly as the final scoring would: not scored twice."""
    from engine.train import finish

    scored, real = [], finish.predict_logits

    def counted(model, spec, paths, *a, **k):
        scored.append(paths)
        return real(model, spec, paths, *a, **k)

    monkeypatch.setattr(finish, "predict_logits", counted)
    cfg = tiny_cfg(tiny_folder, strategy="feature-extraction", head_epochs=0, finetune_epochs=0)
    run = RunStore(tmp_path).create(cfg.to_dict())
    m = train(cfg, run)
    start = next(e for e in run.events("epoch") if e.epoch == 0)
    assert m.status == "finished" and m.best_epoch == 0, m.error
    assert m.best_val_acc == pytest.approx(start.val_acc)
    assert [len(p) for p in scored] == ([m.test_n] if m.test_n else [])  # the test split alone, if any
    assert "score the chosen model on val" not in {e.name for e in run.events("setup")}


def test_mixup_cutmix_and_balancing_run(tiny_folder, tmp_path):
    cfg = tiny_cfg(
        tiny_folder, strategy="full", finetune_epochs=1, mixup=0.2, cutmix=1.0, balance="focal", cache_activations=False
    )
    m = train(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    assert m.status == "finished", m.error


def _multichannel(src, dst, chans: int):
    """`src` re-saved with `chans` channels: RGBA PNGs for 4, (H, W, C) .npy arrays (RGB + NIR-like bands) above."""
    from PIL import Image

    for f in sorted(src.rglob("*.jpg")):
        out = dst / f.parent.name / f.stem
        out.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.asarray(Image.open(f).convert("RGB").resize((64, 64)))
        extra = [rgb.mean(2, keepdims=True).astype(np.uint8)] * (chans - 3)
        arr = np.concatenate([rgb, *extra], axis=2)
        if chans == 4:
            Image.fromarray(arr, "RGBA").save(out.with_suffix(".png"))
        else:
            np.save(out.with_suffix(".npy"), arr)
    return dst


@pytest.mark.parametrize("chans,strategy", [(4, "top-k"), (5, "full")])
def test_non_rgb_images_train_evaluate_predict_and_export(tiny_folder, tmp_path, chans, strategy):
    from engine.serve.evaluate import evaluate
    from engine.serve.export import export_run
    from engine.serve.prediction import predict_image

    data = _multichannel(tiny_folder, tmp_path / f"c{chans}", chans)
    cfg = tiny_cfg(data, strategy=strategy, in_chans=chans, finetune_epochs=1, cache_activations=chans == 4)
    run = planned(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    trainer = Trainer(cfg, run)
    m = trainer.fit()
    assert m.status == "finished", m.error
    ctx = trainer.ctx
    assert ctx.model.backbone.conv_stem.weight.shape[1] == chans and "adapted from RGB" in ctx.weights.note
    assert run.read_json("plan.json")["input"]["input_size"][0] == chans
    assert evaluate(run, str(data)).n == 18
    photo = next(data.rglob("*.png" if chans == 4 else "*.npy"))
    assert len(predict_image(run, str(photo), k=2).top) == 2
    out = export_run(run, tmp_path / f"export{chans}", formats=("onnx",), check_images=6)
    assert out.checks["onnx_same_top1"] and out.card["in_chans"] == chans


def test_a_run_whose_training_is_worse_than_its_probe_keeps_the_probe(tiny_folder, tmp_path):
    from engine.serve.evaluate import evaluate

    cfg = tiny_cfg(
        tiny_folder,
        strategy="full",
        head_epochs=1,
        finetune_epochs=1,
        lr=5.0,
        head_lr=50.0,
        warmup_epochs=0,
        grad_clip=1e9,
    )  # rates that wreck the network
    run = RunStore(tmp_path).create(cfg.to_dict())
    metrics = train(cfg, run)
    epochs = run.events("epoch")
    assert metrics.status == "finished" and epochs[0].epoch == 0
    assert all(e.val_acc < epochs[0].val_acc for e in epochs[1:])  # every trained epoch is worse
    assert metrics.best_epoch == 0 and metrics.best_val_acc == pytest.approx(metrics.head_accuracy, abs=0.07)
    assert evaluate(run, split="val").accuracy == pytest.approx(metrics.best_val_acc)


@pytest.mark.slow
def test_auto_on_real_eurosat_beats_every_probe_on_the_test_split(tmp_path):
    from conftest import shared_dataset

    from engine.serve.evaluate import evaluate

    data = shared_dataset("eurosat-10")
    cfg = TrainConfig.create(data=str(data), strategy="auto")
    run = RunStore(tmp_path).create(cfg.to_dict())
    metrics = train(cfg, run)
    assert metrics.status == "finished", metrics.error
    assert metrics.test_n == 600 and metrics.test_accuracy >= 0.93, metrics.test_accuracy
    lo, hi = metrics.test_interval
    assert lo < metrics.test_accuracy < hi and metrics.seconds < 330
    again = evaluate(run, split="test")
    assert again.n == 600 and again.accuracy == pytest.approx(metrics.test_accuracy, abs=1e-9)
