"""AppTest of the Backbone page: the catalogue, a bundled backbone, and getting a missing one's weights by download
(against a local hub server) or upload."""

import time

import pytest
from safetensors.torch import save

from engine.model.catalogue import build_model, get_entry
from hubserver import Hub, HubServer
from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401

NAME = "mobilenetv3_small_100"


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    for var in ("HF_HOME", "TORCH_HOME", "TRANSFERLAB_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def _missing(name: str):
    at = page("backbone.py")
    at.session_state["backbone"] = name
    return at.run()


def test_backbone_page_shows_the_catalogue_and_a_bundled_backbone():
    at = page("backbone.py").run()
    assert not at.exception and "bundled" in at.success[0].value and "licence apache-2.0" in at.success[0].value
    assert any("answers 1,000 ImageNet classes" in c.value for c in at.caption)  # the head chart's ImageNet layer
    table = at.dataframe[0].value
    assert {"family", "download (MB)", "licence", "source"} <= set(table.columns)
    assert "vit_small_patch14_dinov2.lvd142m" in set(table.backbone)
    at.multiselect[0].set_value(["self-supervised"]).run()
    assert set(at.dataframe[0].value.family) == {"self-supervised"}


def test_a_missing_backbone_offers_download_with_its_size_and_licence(no_weights):
    at = _missing("convnext_tiny")
    assert not at.exception and "Nothing is downloaded until you ask" in at.warning[0].value
    assert [b.label for b in at.button] == ["Download (114 MB)"]
    assert any("licence apache-2.0" in c.value for c in at.caption)


def test_download_runs_with_progress_and_the_backbone_becomes_available(no_weights, monkeypatch):
    hub = Hub()
    repo, filename = get_entry(NAME).hub_file
    hub.add(repo, filename, save(build_model(NAME).state_dict()))
    with HubServer(hub) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        at = _missing(NAME)
        at.button[0].click().run()
        for _ in range(60):
            if at.success:
                break
            time.sleep(0.5)
            at.run()
    assert not at.exception and not at.error
    assert "Weights: hf-cache" in at.success[0].value


def test_upload_is_checked_and_a_mismatch_is_one_line(no_weights):
    at = _missing(NAME)
    wrong = save(build_model("resnet18").state_dict())
    at.file_uploader[0].upload("resnet18.safetensors", wrong, "application/octet-stream").run()
    assert not at.exception and "resnet18.safetensors: the weights do not fit" in at.error[0].value
    right = save(build_model(NAME).state_dict())
    at.file_uploader[0].upload("mine.safetensors", right, "application/octet-stream").run()
    assert not at.exception and "Weights: weights-dir" in at.success[0].value
