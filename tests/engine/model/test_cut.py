"""engine.model.cut: the network split at a group boundary runs as the whole network does, and leaves it as it was."""

import pytest
import torch

from engine.model.cut import SplitModel
from engine.model.groups import layer_groups
from engine.model.taps import FINAL, TapModel
from engine.model.weights import create_backbone


@pytest.mark.parametrize("name", ["resnet18", "tf_efficientnet_lite0"])
def test_suffix_of_prefix_is_the_whole_model(name):
    torch.manual_seed(0)
    model = TapModel(create_backbone(name, "none")[0], (FINAL,), 3).eval()
    groups = layer_groups(model)
    x = torch.randn(2, 3, 64, 64)
    for boundary in range(1, len(groups) - 1):
        split = SplitModel(model, groups, boundary, x[:1])
        with torch.no_grad():
            assert torch.allclose(split.suffix(split.prefix(x)), model(x), atol=1e-5), groups[boundary].name


def test_building_the_split_keeps_each_module_s_mode():
    model = TapModel(create_backbone("resnet18", "none")[0], (FINAL,), 3).train()
    groups = layer_groups(model)
    frozen_bn = model.backbone.bn1  # a frozen group's BatchNorm, in eval mode while the rest trains
    frozen_bn.eval()
    before = frozen_bn.running_mean.clone()
    SplitModel(model, groups, len(groups) - 2, torch.randn(1, 3, 64, 64))
    assert model.training and not frozen_bn.training
    assert torch.equal(frozen_bn.running_mean, before)  # the recorded forward ran in eval mode
