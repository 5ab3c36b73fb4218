"""The README's decisions where the spec is silent or ambiguous, each pinned by a test."""

from __future__ import annotations

from tests.core.builders import (
    TACROLIMUS, condition, eligible, evaluate, med_request, med_statement, notes_about, status,
)


def test_personal_history_of_pancreatic_cancer_counts_as_the_diagnosis() -> None:
    history = condition("Z85.07", display="Personal history of malignant neoplasm of pancreas",
                        clinical="resolved", onset=900, id="pdac")
    assert status(evaluate(eligible(pdac=history)), "pdac-diagnosis") == "pass"


def test_history_of_pancreatic_cancer_in_free_text_counts() -> None:
    history = condition(None, text="History of pancreatic cancer (Whipple 2024)", clinical="inactive", id="pdac")
    assert status(evaluate(eligible(pdac=history)), "pdac-diagnosis") == "pass"


def test_unspecified_site_secondary_c79_9_is_neither_liver_nor_extrahepatic() -> None:
    unsited = condition("C79.9", display="Secondary malignant neoplasm of unspecified site", id="mets-nos")
    evaluation = evaluate(eligible() + [unsited])
    assert status(evaluation, "extrahepatic-metastases") == "pass"
    assert notes_about(evaluation, "Condition/mets-nos")


def test_c79_9_with_a_lung_body_site_is_extrahepatic() -> None:
    lung = condition("C79.9", display="Secondary malignant neoplasm of unspecified site",
                     body_site=[{"coding": [{"system": "http://snomed.info/sct", "code": "39607008",
                                             "display": "Lung structure"}]}])
    assert status(evaluate(eligible() + [lung]), "extrahepatic-metastases") == "fail"


def test_open_ended_immunosuppressant_period_is_ongoing() -> None:
    # Started 200 days ago, no end, status unknown: nothing dates it within 30 days, but it never stopped.
    ongoing = med_statement(TACROLIMUS, 200, status="unknown", id="tac")
    ongoing.pop("effectiveDateTime")
    ongoing["effectivePeriod"] = {"start": "2025-11-27"}
    assert status(evaluate(eligible() + [ongoing]), "immunosuppressants") == "fail"


def test_open_ended_request_that_was_stopped_is_not_current() -> None:
    stopped = med_request(TACROLIMUS, 300, bounds_start=300, status="stopped", id="tac")
    assert status(evaluate(eligible() + [stopped]), "immunosuppressants") == "pass"


def test_impossible_grade_leaves_the_neuropathy_ungraded() -> None:
    neuropathy = condition("G62.0", display="Drug-induced polyneuropathy", grade=7, id="neuro")
    evaluation = evaluate(eligible() + [neuropathy])
    assert status(evaluation, "neuropathy") == "unknown"
    assert "Condition/neuro" in [e for c in evaluation.criteria if c.id == "neuropathy" for e in c.evidence]
