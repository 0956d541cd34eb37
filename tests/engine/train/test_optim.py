import pytest
import timm

from engine.model.groups import layer_groups
from engine.train.optim import (
    Schedule,
    apply_schedule,
    build_optimizer,
    freeze,
    group_grad_norms,
    set_plan,
    set_train_mode,
)


def test_one_param_group_per_layer_group_without_decay_on_norms_and_biases():
    model = timm.create_model("resnet18", num_classes=3)
    groups = layer_groups(model)
    opt = build_optimizer(model, groups, weight_decay=0.05)
    assert sorted({pg["layer"] for pg in opt.param_groups}) == list(range(len(groups)))
    for pg in opt.param_groups:
        assert pg["weight_decay"] == (0.05 if all(p.ndim > 1 for p in pg["params"]) else 0.0)
        assert all(p.ndim > 1 for p in pg["params"]) or all(p.ndim <= 1 for p in pg["params"])


def test_schedule_warmup_then_cosine_to_floor():
    s = Schedule(total_steps=100, warmup_steps=10, warmup_start=0.1, floor=0.01)
    assert s.factor(0) == pytest.approx(0.1) and s.factor(5) == pytest.approx(0.55)
    assert s.factor(10) == pytest.approx(1.0) and s.factor(100) == pytest.approx(0.01)
    assert s.factor(55) == pytest.approx(0.505)


def test_rates_held_by_the_optimiser_are_scale_times_factor():
    model = timm.create_model("resnet18", num_classes=3)
    groups = layer_groups(model)
    opt = build_optimizer(model, groups)
    set_plan(opt, [0, 0, 0, 1e-5, 1e-4, 1e-3])
    assert apply_schedule(opt, 0.5) == [0, 0, 0, 5e-6, 5e-5, 5e-4]
    assert {pg["lr"] for pg in opt.param_groups if pg["layer"] == 5} == {5e-4}


def test_freeze_and_batchnorm_policy():
    model = timm.create_model("resnet18", num_classes=3)
    groups = layer_groups(model)
    frozen = [True, True, True, False, False, False]
    freeze(model, groups, frozen)
    set_train_mode(model, groups, frozen)
    assert not model.layer2[0].bn1.training and not model.layer2[0].conv1.weight.requires_grad
    assert model.layer3[0].bn1.training and model.layer3[0].conv1.weight.requires_grad
    freeze(model, groups, frozen, train_bn=True)
    assert model.layer2[0].bn1.weight.requires_grad and not model.layer2[0].conv1.weight.requires_grad


def test_group_gradient_norms_are_each_groups_l2_norm_and_zero_without_gradients():
    import torch

    model = timm.create_model("resnet18", num_classes=3)
    groups = layer_groups(model)
    for p in model.parameters():
        p.requires_grad_(False)
    head = dict(model.named_parameters())
    for n in groups[-1].params:
        head[n].requires_grad_(True)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    norms = group_grad_norms(model, groups)
    expected = torch.sqrt(sum(head[n].grad.pow(2).sum() for n in groups[-1].params))
    assert norms.shape == (len(groups),) and torch.all(norms[:-1] == 0)
    assert norms[-1].item() == pytest.approx(expected.item(), rel=1e-5)
