"""AppTest of the Backbone page."""
from pagetest import SlowFakeTrainer, fresh_caches, page, use_runner  # noqa: F401


def test_backbone_page_available_and_missing(monkeypatch, tmp_path):
    at = page("backbone.py").run()
    assert not at.exception and "bundled" in at.success[0].value
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = page("backbone.py")
    at.session_state["backbone"] = "convnext_tiny"
    at.run()
    assert not at.exception and "--weights" in at.error[0].value
