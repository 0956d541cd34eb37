"""What goes beside the exported model: predict.py, the browser bundle with its vendored runtime, one zip."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from engine.errors import DataError
from engine.serve import bundle


@pytest.fixture
def ort_web(tmp_path, monkeypatch):
    folder = tmp_path / "ort-web"
    folder.mkdir()
    for name in bundle.ORT_WEB_FILES:
        (folder / name).write_text(f"// {name}")
    monkeypatch.setenv("TRANSFERLAB_ORT_WEB", str(folder))
    return folder


def test_without_the_runtime_the_bundle_is_refused_naming_what_is_missing_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_ORT_WEB", str(tmp_path / "nowhere"))
    said = bundle.web_missing()
    assert "ort.wasm.min.js" in said and "make vendor" in said and "TRANSFERLAB_ORT_WEB" in said
    with pytest.raises(DataError, match="make vendor"):
        bundle.write_web_bundle(tmp_path, tmp_path / "model.onnx", {})
    assert not (tmp_path / bundle.WEB_DIR).exists()


def test_the_bundle_holds_the_page_the_model_its_card_the_runtime_and_its_licence(tmp_path, ort_web):
    assert bundle.web_missing() == ""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    web = bundle.write_web_bundle(tmp_path, model, {"classes": ["a", "b"]})
    assert sorted(p.name for p in web.iterdir()) == sorted(
        [*bundle.ORT_WEB_FILES, "index.html", "model.onnx", "model_card.json", "NOTICE.txt"]
    )
    assert json.loads((web / "model_card.json").read_text()) == {"classes": ["a", "b"], "model": "model.onnx"}
    assert "MIT licence" in (web / "NOTICE.txt").read_text() and "onnxruntime-web 1." in bundle.NOTICE
    assert (bundle.write_predict_script(tmp_path)).read_text() == (bundle.STANDALONE / "predict.py").read_text()


def test_the_zip_holds_the_folder_under_its_name_large_files_stored_and_no_link(tmp_path):
    folder = tmp_path / "phone"
    (folder / "web").mkdir(parents=True)
    (folder / "model_card.json").write_text("{}" * 100)
    (folder / "web" / "model.onnx").write_bytes(os.urandom(bundle.STORED_ABOVE + 1))
    os.symlink("/etc/passwd", folder / "passwd")
    with zipfile.ZipFile(io.BytesIO(bundle.export_zip(folder))) as z:
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    assert kinds == {"phone/model_card.json": zipfile.ZIP_DEFLATED, "phone/web/model.onnx": zipfile.ZIP_STORED}
