import pytest
import timm
import torch

from engine.model.groups import layer_groups, pretrained_head_note


@pytest.mark.parametrize(
    "name",
    [
        "tf_efficientnet_lite0",
        "resnet18",
        "convnext_tiny",
        "vit_base_patch16_224",
        "mobilenetv3_small_100",
        "densenet121",
    ],
)
def test_groups_cover_every_parameter_once_stem_first_head_last(name):
    with torch.device("meta"):
        model = timm.create_model(name)
    groups = layer_groups(model)
    names = [p for g in groups for p in g.params]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert groups[0].role == "stem" and groups[-1].role == "head"
    assert [g.index for g in groups] == list(range(len(groups)))


def test_lite0_has_seven_block_stages():
    with torch.device("meta"):
        groups = layer_groups(timm.create_model("tf_efficientnet_lite0"))
    assert [g.name for g in groups][1:7] == [f"blocks.{i}" for i in range(6)]
    assert groups[7].name.startswith("blocks.6") and groups[-1].name == "classifier"


def test_non_timm_model_is_rejected():
    with pytest.raises(TypeError, match="group_matcher"):
        layer_groups(torch.nn.Linear(2, 2))


def test_the_pretrained_head_is_named_with_its_classes_and_size_and_a_headless_backbone_with_nothing():
    with torch.device("meta"):
        note = pretrained_head_note(timm.create_model("tf_efficientnet_lite0"))
        headless = pretrained_head_note(timm.create_model("tf_efficientnet_lite0", num_classes=0))
    assert "answers 1,000 ImageNet classes with 1.28M parameters" in note  # 1280 x 1000 + 1000
    assert "one output per class of your photos" in note and headless == ""


def test_a_head_of_another_pretraining_set_is_not_called_imagenet():
    with torch.device("meta"):
        note = pretrained_head_note(timm.create_model("tf_efficientnet_lite0", num_classes=365))
    assert "answers the 365 classes it was pretrained on" in note and "ImageNet" not in note
