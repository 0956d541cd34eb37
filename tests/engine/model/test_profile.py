"""A backbone's profile: the same facts as the model it describes, read from one instance; planning builds each
backbone it considers at most twice (its profile, and its weights once)."""

import shutil
from collections import Counter

import pytest
import torch
from conftest import SAMPLE

from engine.model import profile as profiles
from engine.model.groups import layer_groups
from engine.model.profile import architecture, meta_copy, profile
from engine.model.taps import FINAL, TapModel, pool, tap_features, timm_kwargs
from engine.model.weights import create_backbone


@pytest.mark.parametrize("name", ["resnet18", "tf_efficientnet_lite0", "vit_small_patch14_dinov2.lvd142m"])
def test_the_profile_says_what_the_model_a_run_trains_is_made_of(name):
    arch = architecture(name)
    backbone = create_backbone(name, "none")[0].eval()
    x = torch.randn(1, 3, 64 if not backbone.pretrained_cfg.get("fixed_input_size") else 224, 64)
    if backbone.pretrained_cfg.get("fixed_input_size"):
        x = torch.randn(1, 3, 224, 224)
    inter = backbone.forward_intermediates(x, intermediates_only=True, **timm_kwargs(backbone))
    assert arch.tap_dims == tuple(int(pool(t).shape[1]) for t in inter)
    assert arch.final_dim == tap_features(backbone, x, (FINAL,))[0].shape[1]
    assert arch.params == sum(p.numel() for p in backbone.parameters())
    assert arch.has_batchnorm == any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    for taps in [(FINAL,), (0,), (len(arch.tap_dims) - 2,), (1, len(arch.tap_dims) - 1)]:
        model = TapModel(create_backbone(name, "none")[0], taps, 3)
        assert arch.groups_for(taps) == tuple(g.name for g in layer_groups(model)), taps
        assert arch.head_dim(taps) == model.num_features


def test_the_architecture_is_the_same_when_first_asked_for_under_autocast(monkeypatch):
    plain = architecture("tf_efficientnet_lite1")
    monkeypatch.setattr(profiles, "_ARCHITECTURES", {})  # read again, as a probe's extraction asks for it mid-pass
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        again = architecture("tf_efficientnet_lite1")
    assert again.tap_owners == plain.tap_owners == tuple(range(len(plain.tap_dims)))
    assert again.tap_names()[-1] == "blocks.6"


def test_a_meta_copy_allocates_nothing_and_keeps_the_structure():
    model = create_backbone("resnet18", "none")[0]
    copy = meta_copy(model)
    assert all(p.is_meta for p in copy.parameters()) and all(not p.is_meta for p in model.parameters())
    assert [n for n, _ in copy.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert copy(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 1000)


def test_the_step_costs_are_measured_once_and_shared_across_processes(tmp_path, monkeypatch):
    from engine.model import pace as cost

    calls = []
    real = cost._measure
    monkeypatch.setattr(cost, "_measure", lambda *a: calls.append(a[0]) or real(*a))
    monkeypatch.setattr(cost, "_STEP_COSTS", {})
    monkeypatch.setattr(profiles, "_PROFILES", {})
    first = profile("resnet18", 64)
    monkeypatch.setattr(profiles, "_PROFILES", {})  # a new process: the cache folder still holds them
    monkeypatch.setattr(cost, "_STEP_COSTS", {})
    second = profile("resnet18", 64)
    assert (first.forward_s, first.step_s) == (second.forward_s, second.step_s) and calls == ["resnet18"]
    assert 0 < first.forward_s < first.step_s and first.forward_pace == pytest.approx(1 / first.forward_s)


def test_the_flops_share_of_the_groups_that_train():
    p = profile("resnet18", 64)
    groups = p.arch.groups
    assert p.flops_share(groups[:-1]) == pytest.approx(1.0, abs=0.01)  # every backbone group (the classifier aside)
    assert p.flops_share([]) == 0 and 0 < p.flops_share([groups[-2]]) < 0.5


@pytest.fixture
def small_and_target(tmp_path):
    """48 photos of 3 classes and 40 unlabelled photos from elsewhere."""
    data = tmp_path / "small"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (data / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:16]:
            shutil.copy(f, data / cls.name / f.name)
    target = tmp_path / "target"
    target.mkdir()
    for i, f in enumerate(sorted((SAMPLE / "val").rglob("*.jpg"))[:40]):
        shutil.copy(f, target / f"{i}.jpg")
    return data, target


@pytest.mark.parametrize("with_target", [False, True])
def test_planning_auto_builds_each_backbone_it_considers_at_most_twice(
    small_and_target, tmp_path, monkeypatch, with_target
):
    import engine.model.catalogue as catalogue
    from engine import paths
    from engine.plan.config import TrainConfig
    from engine.plan.make import get_plan

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))  # nothing cached: every build happens here
    monkeypatch.setattr(profiles, "_ARCHITECTURES", {})
    monkeypatch.setattr(profiles, "_PROFILES", {})
    assert paths.home() == tmp_path / "home"
    built = Counter()
    real = catalogue.timm.create_model
    monkeypatch.setattr(catalogue.timm, "create_model", lambda name, **kw: built.update([name]) or real(name, **kw))
    data, target = small_and_target
    flat = dict(data=str(data), strategy="auto", budget=300.0, allow_outside_root=True)
    planned = get_plan(TrainConfig.create(**flat, **({"target": str(target)} if with_target else {})))
    considered = {p.backbone for p in planned.probes}
    assert len(considered) > 1 and set(built) >= considered  # the shoot-out ran, and nothing came from a cache
    assert max(built.values()) <= 2, built
