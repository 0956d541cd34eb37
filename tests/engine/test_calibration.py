"""How far to trust an answer: temperature scaling on val, ECE before and after, the unsure threshold, and exports
that carry the temperature."""

import numpy as np
import pytest
import torch

from engine.calibration import ece, fit_temperature, reliability, unsure_threshold


def _overconfident(n=2000, classes=5, seed=0):
    """Logits whose probabilities are right at temperature 1, then sharpened three times."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g) * 1.5
    y = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return logits * 3, y


def test_the_temperature_undoes_overconfidence_and_lowers_the_ece():
    logits, y = _overconfident()
    t = fit_temperature(logits, y)
    assert t == pytest.approx(3.0, rel=0.15)
    assert ece((logits / t).softmax(1), y) < ece(logits.softmax(1), y) / 2
    assert torch.equal((logits / t).argmax(1), logits.argmax(1))  # no prediction changes
    bins = reliability((logits / t).softmax(1), y)
    assert sum(b["n"] for b in bins) == len(y) and all(0 <= b["accuracy"] <= 1 for b in bins)


def test_the_unsure_threshold_halves_the_errors_of_what_it_answers():
    logits, y = _overconfident()
    probs = (logits / fit_temperature(logits, y)).softmax(1)
    u = unsure_threshold(probs, y)
    error = 1 - float((probs.argmax(1) == y).float().mean())
    answered = probs.max(1).values >= u.threshold
    assert 0 < u.coverage < 1 and u.accuracy >= 1 - error / 2 - 1e-6
    assert float(answered.float().mean()) == pytest.approx(u.coverage, abs=0.01)
    perfect = unsure_threshold(torch.eye(3)[[0, 1, 2]], torch.tensor([0, 1, 2]))
    assert perfect.coverage == 1.0 and "answering 100%" in perfect.sentence()


def test_exported_onnx_and_torchscript_give_the_calibrated_probabilities(finished_store, tmp_path):
    import onnxruntime as ort

    from engine.runs.result import RunResult
    from engine.plan.trained import load_run_model
    from engine.serve.card import model_card_markdown
    from engine.serve.export import export_run

    run = finished_store.list()[0]
    result = RunResult.read(run)
    assert result.temperature != 1.0 and result.ece_val is not None and result.unsure
    model, spec, _ = load_run_model(run)
    assert float(model.head.temperature) == pytest.approx(result.temperature)
    out = export_run(run, tmp_path / "export", formats=("torchscript", "onnx"), check_images=4)
    x = torch.randn(2, 3, spec.input_size[-1], spec.input_size[-1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).softmax(1)
        raw = (model.head.fc(model.head.standardise(model.features(x)))).softmax(1)
    scripted = torch.jit.load(out.files["torchscript"])(x).softmax(1)
    session = ort.InferenceSession(out.files["onnx"], providers=["CPUExecutionProvider"])
    onnx_probs = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]).softmax(1)
    assert torch.allclose(scripted, expected, atol=1e-4) and torch.allclose(onnx_probs, expected, atol=1e-4)
    assert not torch.allclose(raw, expected, atol=1e-3)  # the temperature is in them, not applied afterwards
    assert "Unsure threshold" in model_card_markdown(run)
    assert np.isclose(out.card["metrics"]["temperature"], result.temperature)
