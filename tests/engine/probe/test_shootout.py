"""The shoot-out's verdict: the best backbone, whether its lead is beyond the noise of val, and why the others were
not probed."""

from __future__ import annotations

from engine.probe.shootout import ShootoutRow, verdict


def _row(name: str, accuracy: float | None, problem: str = "") -> ShootoutRow:
    return ShootoutRow(name, accuracy, 1.0 if accuracy is not None else None, 5.0, "bundled", problem)


def test_a_lead_within_the_noise_of_val_says_either_will_do():
    said = verdict([_row("a", 0.90), _row("b", 0.89)], n_val=100)  # noise: 3.0 points
    assert said.startswith("a is best: 90.0% of the 100 validation photos with a linear probe, 1.0 points above b")
    assert "within the noise of 100 photos (about ±3.0 points)" in said


def test_a_lead_beyond_the_noise_says_so():
    said = verdict([_row("a", 0.90), _row("b", 0.80)], n_val=400)  # noise: 1.5 points, gap 10
    assert "10.0 points above b (80.0%). That is more than the noise of 400 photos (about ±1.5 points)." in said


def test_backbones_not_probed_are_named_each_with_its_own_reason():
    rows = [
        _row("a", 0.9),
        _row("convnext_tiny", None, "no weights for convnext_tiny here; pass --weights FILE."),
        _row("vit_huge", None, "needs 12 GB of memory, 4 GB are free"),
    ]
    said = verdict(rows, n_val=50)
    assert said.startswith("a is best: 90.0%") and said.count("points above") == 0
    assert said.endswith(
        " Not probed: convnext_tiny: no weights for convnext_tiny here; pass --weights FILE; "
        "vit_huge: needs 12 GB of memory, 4 GB are free."
    )
    assert verdict(rows[1:], n_val=50).startswith("No backbone could be probed: no weights for convnext_tiny")
