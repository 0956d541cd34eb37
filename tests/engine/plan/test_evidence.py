"""The evidence a plan is decided from: which scored head is auto's choice, which probe is the run's backbone's, what
its stages are called, and its pace. (`gather` itself runs in the planner's tests on real photos.)"""

from __future__ import annotations

from types import SimpleNamespace

from engine.model.catalogue import input_spec
from engine.model.taps import FINAL
from engine.plan.evidence import Evidence
from engine.probe.choose import HeadChoice

LITE0, LITE1 = "tf_efficientnet_lite0", "tf_efficientnet_lite1"


def _probe(backbone: str, pace: float):
    curve = [{"tap": 3, "name": "stage 4"}, {"tap": FINAL, "name": "final features"}]
    return SimpleNamespace(backbone=backbone, images_per_s=pace, stage_curve=curve)


def _head(backbone: str, c: float, cv: float | None = None) -> HeadChoice:
    return HeadChoice(backbone, (3, FINAL), False, c, False, "stage 4 + final features", cv)


def test_the_chosen_head_is_the_scored_candidate_with_its_score():
    scored = (_head(LITE0, 0.1, 0.80), _head(LITE1, 0.1, 0.84), _head(LITE1, 0.3, 0.86))
    ev = Evidence(LITE1, input_spec(LITE1), scored=scored, choice=_head(LITE1, 0.3))
    assert ev.chosen is scored[2] and ev.chosen.cv == 0.86
    assert Evidence(LITE1, input_spec(LITE1), scored=scored).chosen is None


def test_the_head_probe_is_the_run_backbones_and_names_its_stages():
    first, other = _probe(LITE0, 40.0), _probe(LITE1, 25.0)
    ev = Evidence(LITE1, input_spec(LITE1), probe=first, probes=(first, other))
    assert ev.head_probe is other and ev.stage_names == {3: "stage 4", FINAL: "final features"}
    assert Evidence(LITE0, input_spec(LITE0)).stage_names == {FINAL: "final features"}  # from scratch: no probe


def test_the_pace_is_the_measured_speed_else_the_configured_probes():
    first = _probe(LITE0, 40.0)
    assert Evidence(LITE0, input_spec(LITE0), probe=first).pace == 40.0
    assert Evidence(LITE0, input_spec(LITE0), probe=first, speed=55.0).pace == 55.0
    assert Evidence(LITE0, input_spec(LITE0)).pace == 0.0
