"""Taps: timm's intermediates aligned with the layer groups on every catalogue architecture, and the TapModel's cut."""

import pytest
import timm
import torch

from engine.model.catalogue import list_entries
from engine.model.groups import layer_groups
from engine.model.taps import FINAL, ProbeHead, TapModel, stage_owners, tap_dims, tap_features, timm_kwargs

NAMES = [e.name for e in list_entries()]


def _small(name: str) -> torch.nn.Module:
    kw = {"img_size": 64} if "vit" in name else {}
    return timm.create_model(name, pretrained=False, **kw).eval()


@pytest.mark.parametrize("name", NAMES)
def test_each_intermediate_depends_on_its_owner_group_and_on_no_later_one(name):
    """Gradients of intermediate i reach the parameters of its owner group and of no later group."""
    model = _small(name)
    groups = layer_groups(model)
    owners = stage_owners(name)
    assert list(owners) == sorted(owners) and len(owners) == len(tap_dims(name)[0])
    x = torch.randn(1, 3, 64, 64)
    outs = model.forward_intermediates(x, intermediates_only=True, **timm_kwargs(model))
    params = dict(model.named_parameters())
    for i, out in enumerate(outs):
        model.zero_grad()
        out.float().square().mean().backward(retain_graph=True)
        reached = {
            g.index for g in groups for n in g.params if params[n].grad is not None and params[n].grad.abs().sum() > 0
        }
        assert max(reached) == owners[i], (name, i, reached)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18", "convnext_tiny", "mobilenetv3_small_100"])
def test_the_cut_model_gives_the_full_forwards_features_at_its_taps(name):
    full = _small(name)
    body = len(stage_owners(name))
    for taps in [(body - 2,), (1, body - 2), (FINAL,), (body - 1, FINAL)]:
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            ref = torch.cat(tap_features(full, x, taps), dim=1)
            cut = TapModel(_small(name), taps, 5).eval()
            cut.backbone.load_state_dict(full.state_dict(), strict=False)
            assert torch.allclose(cut.features(x), ref, atol=1e-5), (name, taps)
        assert cut.num_features == ref.shape[1] and cut(x).shape == (2, 5)
        assert [g.name for g in layer_groups(cut)][-1] == "head"


def test_pruning_drops_the_blocks_above_the_deepest_tap():
    model = TapModel(timm.create_model("tf_efficientnet_lite0"), (6,), 3)
    assert len(model.backbone.blocks) == 6 and [g.name for g in layer_groups(model)][-2:] == ["blocks.5", "head"]


def test_mirror_averaging_in_eval_only():
    model = TapModel(timm.create_model("resnet18"), (FINAL,), 4, flip_tta=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f = model.features(x)
        both = torch.cat(tap_features(model.backbone, torch.cat([x, x.flip(-1)]), (FINAL,)), 1)
        assert torch.allclose(f, (both[:2] + both[2:]) / 2, atol=1e-5)
        model.train()
        torch.manual_seed(0)
        train_f = model.features(x)
        assert train_f.shape == (2, 512) and not torch.allclose(train_f, f, atol=1e-3)  # no averaging in training


def test_probe_head_standardises_in_float32():
    head = ProbeHead(3, 2)
    head.load_probe(torch.eye(2, 3), torch.zeros(2), torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(torch.tensor([[3.0, 2.0, 3.0]], dtype=torch.bfloat16))
    assert out.dtype == torch.float32 and torch.allclose(out, torch.tensor([[1.0, 0.0]]))


def test_a_mirror_averaging_multi_tap_model_exports_with_a_dynamic_batch(tmp_path):
    """Traced at batch 2 (as export does), TorchScript and ONNX give the eager logits at other batch sizes."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = TapModel(
        timm.create_model("tf_efficientnet_lite0", pretrained=False), (3, 5, FINAL), 4, flip_tta=True
    ).eval()
    example = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    torch.onnx.export(
        model,
        (example,),
        str(tmp_path / "m.onnx"),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        x = torch.randn(n, 3, 96, 96)
        with torch.no_grad():
            ref = model(x)
            torch.testing.assert_close(traced(x), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(torch.from_numpy(sess.run(None, {"image": x.numpy()})[0]), ref, atol=1e-3, rtol=1e-3)
