"""The TFLite conversion's edges, with a stand-in for the converter's Python: a missing converter named in one line
with the command that installs it, a failed conversion reported by its error's line, a conversion that hangs cut
off, and the exported program removed whatever happened. (The real conversion, when `.venv-edge` exists, is tested
with the export.)"""

import stat

import pytest
import torch
from torch import nn

from engine.errors import DataError
from engine.serve import litert

MODEL = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
EXAMPLE = torch.zeros(2, 3, 8, 8)


def _python(tmp_path, body: str):
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_a_missing_converter_is_one_line_that_names_it_and_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_EDGE_PYTHON", str(tmp_path / "nowhere" / "python"))
    said = litert.converter_missing()
    assert litert.CONVERTER in said and "make edge" in said and "\n" not in said
    with pytest.raises(DataError, match="make edge"):
        litert.convert(MODEL, EXAMPLE, tmp_path / "model.tflite")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_failed_conversion_names_its_error_and_leaves_no_program_behind(tmp_path, monkeypatch):
    body = (
        'echo "Traceback (most recent call last):" >&2\necho "RuntimeError: op not lowered" >&2\necho done >&2\nexit 1'
    )
    monkeypatch.setenv("TRANSFERLAB_EDGE_PYTHON", str(_python(tmp_path, body)))
    out = tmp_path / "out" / "model.tflite"
    out.parent.mkdir()
    with pytest.raises(DataError, match=r"TFLite conversion failed \(RuntimeError: op not lowered\)"):
        litert.convert(MODEL, EXAMPLE, out)
    assert list(out.parent.iterdir()) == []


def test_the_converter_gets_the_exported_program_and_the_file_it_writes_is_returned(tmp_path, monkeypatch):
    body = 'test -s "$3" && cp "$3" "$4"'  # -m engine.serve.litert PROGRAM OUT: the program exists when it runs
    monkeypatch.setenv("TRANSFERLAB_EDGE_PYTHON", str(_python(tmp_path, body)))
    out = tmp_path / "out" / "model.tflite"
    out.parent.mkdir()
    assert litert.convert(MODEL, EXAMPLE, out) == out and out.stat().st_size > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.tflite"]  # the .pt2 program removed


def test_a_conversion_that_does_not_finish_is_cut_off_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_EDGE_PYTHON", str(_python(tmp_path, "exec sleep 30")))
    monkeypatch.setattr(litert, "TIMEOUT_S", 1)
    out = tmp_path / "out" / "model.tflite"
    out.parent.mkdir()
    with pytest.raises(DataError, match="did not finish in 1 s; export without tflite"):
        litert.convert(MODEL, EXAMPLE, out)
    assert list(out.parent.iterdir()) == []
