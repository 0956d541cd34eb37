"""engine.serve.targets: each place a model runs, its budget, what breaks it and what it would take."""

import pytest

from engine.errors import DataError
from engine.serve.measure import FileMeasure, Latency
from engine.serve.targets import TARGETS, get_target, student_advice


def _measured(accuracy: float, ms: float, mb: float) -> FileMeasure:
    return FileMeasure(
        "ONNX int8",
        "model.int8.onnx",
        mb,
        accuracy,
        (0.0, 1.0),
        200,
        "test",
        1.0,
        Latency(ms, ms, 1),
        Latency(ms, ms, 2),
    )


def test_an_unknown_target_names_the_known_ones():
    with pytest.raises(DataError, match="--target moon: not a known target; choose one of phone, browser"):
        get_target("moon")


def test_each_broken_limit_is_named_with_its_numbers():
    phone = get_target("phone").with_limits(max_latency_ms=10, max_size_mb=5, max_drop=1)
    reference = _measured(0.90, 30, 15)
    assert phone.broken(_measured(0.895, 8, 4), reference, 1_000_000) == []
    broken = phone.broken(_measured(0.85, 12, 6), reference, 1_000_000)
    assert broken == [
        "12.0 ms a photo on one thread (limit 10 ms)",
        "6.0 MB (limit 5 MB)",
        "loses 5.0 points on test against PyTorch (limit 1)",
    ]
    assert "0.60M parameters (limit 0.50M)" in get_target("microcontroller").broken(reference, reference, 600_000)


def test_limits_given_replace_the_defaults_and_a_negative_one_is_refused():
    phone = get_target("phone")
    assert phone.with_limits(max_size_mb=3).max_size_mb == 3
    assert phone.with_limits(max_size_mb=3).max_latency_ms == phone.max_latency_ms
    with pytest.raises(DataError, match="--max-drop: -1 is negative"):
        phone.with_limits(max_drop=-1)
    assert TARGETS["server"].limits() == "at most 1 point(s) of accuracy lost"


def test_the_advice_for_a_parameter_budget_is_a_cut_with_its_command():
    advice = student_advice("run1", "data", 3_700_000, get_target("microcontroller"), "tf_efficientnet_lite0", 15)
    assert "tf_efficientnet_lite0 cut after an early stage" in advice
    assert "--max-params 500000 --distill-from run1" in advice
    assert "its starting head included" in advice  # distillation is tried, not promised


def test_the_advice_says_plainly_when_no_catalogue_backbone_is_small_enough():
    tiny = get_target("phone")
    advice = student_advice("run1", "data", 1_000, tiny, "tf_efficientnet_lite0", 15)
    assert advice.startswith("No backbone in the catalogue has fewer than 0.00M parameters")
