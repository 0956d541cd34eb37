import json
import os

import numpy as np
import onnxruntime as ort
import torch
from conftest import SAMPLE, jpeg_bytes

from engine.data.decode import load_images
from engine.serve.evaluate import evaluate, load_run_model
from engine.serve.export import export_run, model_card, predict_image


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_onnx_matches_pytorch_top1_on_the_sample_val_images(finished_store, tmp_path):
    run = finished_store.list()[0]
    out = export_run(run, tmp_path / "export")
    assert out["checks"]["onnx_same_top1"] and out["checks"]["onnx_images"] > 0
    assert (
        out["checks"]["torchscript_same_top1"] and out["checks"]["torchscript_images"] == out["checks"]["onnx_images"]
    )
    assert out["checks"]["torchscript_max_abs_diff"] < 1e-3
    model, spec, _ = load_run_model(run)
    sess = ort.InferenceSession(out["files"]["onnx"], providers=["CPUExecutionProvider"])
    photos = sorted(str(p) for p in (SAMPLE / "val").rglob("*.jpg"))
    agree = []
    for b in range(0, len(photos), 50):
        x = spec.normalize(torch.stack(load_images(spec, photos[b : b + 50]))).contiguous()
        with torch.no_grad():
            ref = model(x).numpy()
        agree.append(ref.argmax(1) == sess.run(None, {"image": x.numpy()})[0].argmax(1))
    assert len(photos) == 300 and np.concatenate(agree).all()
    card = json.loads((tmp_path / "export" / "model_card.json").read_text())
    assert card["mean"] == list(spec.mean) and card["input_size"] == list(spec.input_size)
    assert card["classes"] and card["weights"]["source"] == "bundled" and len(card["weights"]["sha256"]) == 64
    for f in out["files"].values():  # every file as readable as one made with open() (safetensors makes 0600)
        assert os.stat(f).st_mode & 0o777 == 0o666 & ~_umask(), f
    assert os.stat(run.path / "model.safetensors").st_mode & 0o044 == 0o044 & ~_umask()
    traced = torch.jit.load(out["files"]["torchscript"])
    x = torch.randn(1, *spec.input_size)
    torch.testing.assert_close(traced(x), model(x), atol=1e-4, rtol=1e-4)


def test_predict_and_drift_warning(finished_store):
    run = finished_store.list()[0]
    photo = next(iter(sorted((SAMPLE / "val").rglob("*.jpg"))))
    out = predict_image(run, str(photo), k=2)
    assert len(out.top) == 2 and abs(sum(p for _, p in out.top) - 1) < 1 + 1e-6
    assert not out.warnings
    odd = predict_image(run, jpeg_bytes((255, 0, 255), (3000, 40)))
    assert len(odd.warnings) == 2  # size and colour far from the training photos


def test_evaluate_on_a_whole_folder(finished_store):
    run = finished_store.list()[0]
    r = evaluate(run, run.config["data"]["path"])  # no val/ folder: every image is evaluated
    assert r.n == 18 and 0 <= r.accuracy <= 1 and np.array(r.confusion).sum() == 18
    assert r.to_dict()["classes"] == r.classes and len(r.interval) == 2
    assert model_card(run)["metrics"]["best_val_acc"] == run.read_json("metrics.json")["best_val_acc"]
