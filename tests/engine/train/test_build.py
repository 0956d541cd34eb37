"""Building a run from its plan: the head where the plan starts it, weights provenance, and the cut for caching."""

import pytest
import torch

from engine.errors import WeightsUnavailable
from engine.model.taps import ProbeHead
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan
from engine.train.build import build

CPU = torch.device("cpu")


def cfg(data, **kw) -> TrainConfig:
    return TrainConfig.create(**{"data": str(data), "strategy": "top-k", "top_k": 1, "val_fraction": 0.34, **kw})


def built(c: TrainConfig):
    return build(c, get_plan(c), CPU)


def test_top_k_starts_from_the_probe_and_is_cut_below_its_first_trainable_group(tiny_folder):
    c = cfg(tiny_folder, dropout=0.3)
    planned = get_plan(c)
    b = build(c, planned, CPU)
    assert b.weights.source == "bundled"
    assert b.plan.phases.frozen[-2:] == (False, False) and all(b.plan.phases.frozen[:-2])
    assert [g.name for g in b.groups] == list(b.plan.phases.groups)
    head = b.model.get_classifier()
    assert isinstance(head, ProbeHead) and head.drop == 0.3 and head.fc.out_features == len(b.ds.classes) == 3
    assert torch.allclose(head.fc.weight, torch.from_numpy(planned.head.std_coef))  # LP-FT: the probe's solution
    x = torch.randn(2, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    b.model.eval()
    with torch.no_grad():
        assert torch.allclose(b.split.suffix(b.split.prefix(x)), b.model(x), atol=1e-5)
    from engine.model.weights import create_backbone

    fresh = dict(create_backbone(c.backbone)[0].named_buffers())
    moved = [n for n, t in b.model.backbone.named_buffers() if "running" in n and not torch.equal(t, fresh[n])]
    assert not moved, f"building the run changed pretrained BatchNorm statistics: {moved[:3]}"


@pytest.mark.parametrize(
    "kw", [dict(strategy="full"), dict(mixup=0.2), dict(cache_activations=False), dict(strategy="feature-extraction")]
)
def test_no_cut_where_the_images_are_needed_or_nothing_is_frozen_below(tiny_folder, kw):
    assert built(cfg(tiny_folder, **kw)).split is None


def test_scratch_says_so_and_missing_weights_fail(tiny_folder, tmp_path, monkeypatch):
    assert built(cfg(tiny_folder, strategy="scratch")).weights.source == "scratch"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # empty caches: no weights for resnet50 anywhere
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailable, match="resnet50"):
        built(cfg(tiny_folder, backbone="resnet50"))
