"""Core ML: the package written from the sample's run, its input and output read back, said to be unchecked; a
missing coremltools is one line naming the package, and nothing of it is left in the export folder."""

from engine.errors import DataError
from engine.serve import coreml
from engine.serve.export import export_run


def test_the_package_is_written_with_its_shapes_and_said_to_be_unchecked(sample_run, tmp_path):
    out = export_run(sample_run, tmp_path / "ios", formats=("onnx", "coreml"))
    assert "coreml" in out.files and (tmp_path / "ios" / "model.mlpackage" / "Manifest.json").is_file()
    known = out.unchecked["coreml"]
    (shape,) = known["input"].values()
    (logits,) = known["output"].values()
    assert shape == [1, 3, 224, 224] and logits == [1, 15] and known["size_mb"] > 1
    assert "coreml" not in out.single_files() and "not checked here" in out.how_to_run()
    assert [m.name for m in out.measures] == ["PyTorch", "ONNX fp32"]  # never measured as if it had run


def test_a_missing_coremltools_is_one_line_and_leaves_nothing(sample_run, tmp_path, monkeypatch):
    def missing():
        raise DataError(f"Core ML needs {coreml.PACKAGE}, which is not installed: `pip install {coreml.PACKAGE}`")

    monkeypatch.setattr(coreml, "_coremltools", missing)
    out = export_run(sample_run, tmp_path / "none", formats=("onnx", "coreml"))
    assert out.refused["coreml"] == f"coreml refused: Core ML needs {coreml.PACKAGE}, which is not installed: " + (
        f"`pip install {coreml.PACKAGE}`"
    )
    assert "coreml" not in out.files and not (tmp_path / "none" / "model.mlpackage").exists()


def test_the_package_metadata_carries_the_classes_and_the_contract(sample_run, tmp_path):
    import json

    export_run(sample_run, tmp_path / "meta", formats=("coreml",))
    spec = coreml._coremltools().utils.load_spec(str(tmp_path / "meta" / "model.mlpackage"))
    meta = spec.description.metadata.userDefined
    assert len(json.loads(meta["classes"])) == 15 and json.loads(meta["input_contract"])["mean"]
