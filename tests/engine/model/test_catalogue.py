import pytest
import timm
import torch

from engine.model.catalogue import FAMILIES, build_model, get_entry, list_entries

REQUIRED = [
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "resnet18",
    "densenet121",
    "resnet50",
    "efficientnet_b3",
    "efficientnet_b4",
    "convnext_tiny",
    "vit_base_patch16_224",
    "tf_efficientnet_lite0",
    "tf_efficientnet_lite1",
    "tf_efficientnet_lite2",
    "vit_small_patch14_dinov2.lvd142m",
    "vit_base_patch16_clip_224.openai",
]


def test_catalogue_has_the_classic_selection():
    names = [e.name for e in list_entries()]
    assert set(REQUIRED) <= set(names)
    assert len(names) == len(set(names))


def test_unknown_name_fails_fast_and_lists_choices():
    with pytest.raises(KeyError, match="resnet18"):
        get_entry("resnet19")


@pytest.mark.parametrize("name", REQUIRED)
def test_published_params_match_the_architecture(name):
    with torch.device("meta"):
        model = build_model(name)
    actual = sum(p.numel() for p in model.parameters()) / 1e6
    assert get_entry(name).params_m == pytest.approx(actual, rel=0.03)


def test_input_contract_comes_from_timm():
    lite0 = get_entry("tf_efficientnet_lite0").as_row()
    assert lite0["input_size"] == 224 and lite0["mean"] == (0.5, 0.5, 0.5) and lite0["std"] == (0.5, 0.5, 0.5)
    assert get_entry("efficientnet_b3").input_size[-1] == 288


def test_every_row_says_family_size_licence_and_where_the_hub_keeps_it():
    for e in list_entries():
        row = e.as_row()
        assert row["family"] in FAMILIES and row["licence"] != "unknown"
        assert row["download_mb"] == pytest.approx(e.params_m * 4, rel=0.05)
        repo, filename = e.hub_file
        assert repo == timm.models.get_pretrained_cfg(e.name).hf_hub_id and filename == "model.safetensors"
    assert {e.family for e in list_entries()} == set(FAMILIES)
