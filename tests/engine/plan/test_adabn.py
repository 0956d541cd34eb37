"""Whether the run reads the target photos with BatchNorm re-estimated on them: the decision from its evidence."""

from __future__ import annotations

from engine.plan.adabn import BnChoice

EXPECTED = {"re-estimated": {"estimate": 0.6, "low": 0.5, "high": 0.7}, "without": {"estimate": 0.7}}


def _choice(use: bool, expected: dict | None = None) -> BnChoice:
    return BnChoice(use, 0.64, 0.61, 0.02, "by reverse validation", 256, expected)


def test_the_evidence_decides_unless_the_config_asked():
    assert _choice(True).decision(None).chosen == "re-estimated"
    assert _choice(False).decision(None).chosen == "the backbone's own"
    assert _choice(True).decision(False).chosen == "the backbone's own"
    assert _choice(False).decision(True).chosen == "re-estimated"


def test_the_decision_carries_both_scores_the_margin_and_what_was_asked():
    decision = _choice(False, EXPECTED).decision(True)
    assert decision.evidence["asked"] is True and decision.evidence["use"] is False
    assert (decision.evidence["score"], decision.evidence["without"], decision.evidence["margin"]) == (0.64, 0.61, 0.02)
    assert decision.evidence["how"] == "by reverse validation" and decision.evidence["n_sample"] == 256
    assert decision.evidence["expected"] == EXPECTED
    assert "expected" not in _choice(False).decision(None).evidence  # labelled target photos: no estimate stated


def test_the_sentence_says_what_the_saved_model_reads_whichever_way_evidence_and_config_point():
    said = {
        (use, asked): _choice(use).decision(asked).sentence for use in (True, False) for asked in (None, True, False)
    }
    reads = "the saved model reads target photos with the re-estimated statistics"
    assert "so " + reads in said[True, None] and "as asked, " + reads in said[True, True]
    assert "the evidence alone keeps the backbone's own; as asked, " + reads in said[False, True]
    assert "so the backbone keeps its own statistics." in said[False, None]
    assert "the evidence alone re-estimates them; as asked, the backbone keeps its own statistics." in said[True, False]
    assert "as asked, the backbone keeps its own statistics." in said[False, False]
    assert all("64.0%, against 61.0%" in s and "256 target photos" in s for s in said.values())
