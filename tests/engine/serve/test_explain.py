"""Where the model looks: Grad-CAM on a CNN and a vision transformer (shape, not blank, one class against another),
and on a run's chosen model beside its starting head."""

import numpy as np
import pytest
import torch
from conftest import SAMPLE

from engine.model.catalogue import build_model, input_spec
from engine.model.taps import FINAL, TapModel
from engine.serve.explain import cam_layer, explain


@pytest.mark.parametrize("name", ["resnet18", "tf_efficientnet_lite0", "vit_small_patch14_dinov2.lvd142m"])
def test_grad_cam_maps_a_photo_for_cnns_and_vits_and_differs_between_classes(name):
    torch.manual_seed(0)
    model = TapModel(build_model(name, pretrained=False), (FINAL,), 3)
    with torch.no_grad():
        model.head.fc.weight.normal_(0, 1)  # a head whose classes differ
    spec = input_spec(name)
    photo = next((SAMPLE / "train").rglob("*.jpg"))
    a, b = explain(model, spec, photo, 0), explain(model, spec, photo, 1)
    side = spec.input_size[-1]
    assert a.overlay.shape == (side, side, 3) and a.overlay.dtype == np.uint8 and a.heat.shape == (side, side)
    assert a.heat.max() > a.heat.min()  # not blank
    assert not np.allclose(a.heat, b.heat, atol=1e-3)  # class 0 and class 1 are explained differently
    layer, reshape = cam_layer(model)
    assert (reshape is not None) == name.startswith("vit")


def test_a_runs_chosen_model_and_its_starting_head_are_explained_side_by_side(finished_store):
    from engine.serve.explain import explain_run

    run = finished_store.list()[0]
    photo = next((SAMPLE / "val").rglob("*.jpg"))
    [(chosen, start)] = explain_run(run, [str(photo)])
    assert chosen.overlay.shape == chosen.overlay.shape and chosen.heat.max() > 0
    assert start is None or start.class_index == chosen.class_index  # the same class, two models


@pytest.mark.parametrize("chans", [1, 2])
def test_grey_and_grey_with_alpha_photos_are_drawn_in_grey(chans):
    torch.manual_seed(0)
    model = TapModel(build_model("resnet18", pretrained=False, in_chans=chans), (FINAL,), 3)
    spec = input_spec("resnet18", chans)
    photo = next((SAMPLE / "train").rglob("*.jpg"))
    out = explain(model, spec, photo, 0)
    side = spec.input_size[-1]
    assert out.overlay.shape == (side, side, 3) and out.heat.shape == (side, side)
