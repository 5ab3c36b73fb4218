"""Spec revision 2, the Condition side: `alive`, the activity of a Condition (problem-list item vs visit
diagnosis, each criterion's window), liver metastases in remission, pregnancy Conditions, other
malignancies with history codes and named primaries, and extrahepatic metastases of every site.

Every window is tested on the day inside and the day outside it. ``AS_OF`` is 2026-06-15; an int date
in a builder means "that many days before it".
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.cards import card_for
from cds_service.commands.evaluate import render_text
from cds_service.trials import get_trial

from .builders import (
    AS_OF, ICD10, LIVER, LOINC, SNOMED, cc, coding, condition, eligible, evaluate, evidence, imaging_study,
    notes_about, observation, patient, result, status, when,
)

CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
VISIT = [cc("encounter-diagnosis", CATEGORY, "Encounter Diagnosis")]
PROBLEM = [cc("problem-list-item", CATEGORY, "Problem List Item")]
HEALTH_CONCERN = [cc("health-concern", "http://hl7.org/fhir/us/core/CodeSystem/condition-category", "Health Concern")]
# An EHR's own visit-diagnosis category: a local code under the EHR's OID (the root is Epic's; the code is
# made up), recognised by its display.
LOCAL_VISIT = [{"coding": [coding("16", "urn:oid:1.2.840.114350.1.13.0.1.7.4.698084.10", "Encounter Diagnosis")],
                "text": "Encounter Diagnosis"}]
TEXT_ONLY_VISIT = [{"text": "Visit Diagnosis"}]
US_CORE_ENCOUNTER_DIAGNOSIS = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_OID = "urn:oid:2.16.840.1.113883.6.90"
SNOMED_OID = "urn:oid:2.16.840.1.113883.6.96"


def visit_dx(code: str | None, system: str = ICD10, display: str | None = None, *, onset=None, recorded=None,
             category=VISIT, **kwargs) -> dict:
    """An Epic-style visit diagnosis: no clinicalStatus, no verificationStatus, a recordedDate."""
    return condition(code, system, display, clinical=None, verification=None, onset=onset, recorded=recorded,
                     category=category, **kwargs)


def with_(*extra, **replace):
    return eligible(**replace) + list(extra)


# --- alive -------------------------------------------------------------------------------------

class TestAlive:
    def test_first_criterion_of_the_trial(self):
        trial = get_trial("NCT05271110")
        assert trial.criteria[0].id == "alive"
        assert trial.criteria[0].type == "inclusion" and trial.criteria[0].automated
        assert len(trial.criteria) == 19

    def test_no_death_recorded_passes(self):
        evaluation = evaluate(eligible())
        assert status(evaluation, "alive") == "pass"
        assert evidence(evaluation, "alive") == ["Patient/p1"]
        assert evaluation.verdict == "likely-eligible"

    def test_deceased_boolean_fails_and_gives_no_card(self):
        evaluation = evaluate(eligible(patient=patient(deceasedBoolean=True)))
        assert status(evaluation, "alive") == "fail"
        assert "deceased" in result(evaluation, "alive").reason
        assert evaluation.verdict == "not-eligible"
        trial = get_trial("NCT05271110")
        assert card_for(evaluation, trial, "p1", datetime(2026, 6, 15, tzinfo=timezone.utc)) is None
        # The same record alive does get a card (the test can fail).
        assert card_for(evaluate(eligible()), trial, "p1", datetime(2026, 6, 15, tzinfo=timezone.utc)) is not None

    def test_deceased_boolean_false_passes(self):
        assert status(evaluate(eligible(patient=patient(deceasedBoolean=False))), "alive") == "pass"

    @pytest.mark.parametrize(("days_before", "expected"), [(0, "fail"), (400, "fail"), (-1, "pass")])
    def test_deceased_date_on_or_before_the_as_of_date(self, days_before, expected):
        evaluation = evaluate(eligible(patient=patient(deceasedDateTime=when(days_before))))
        assert status(evaluation, "alive") == expected
        if expected == "fail":
            assert result(evaluation, "alive").reason == f"deceased on {when(days_before)}"
            assert evaluation.verdict == "not-eligible"
        else:
            assert notes_about(evaluation, "deceasedDateTime")  # a death after the as-of date is ignored, noted
            assert evaluation.verdict == "likely-eligible"

    @pytest.mark.parametrize(("written", "expected"), [
        ("2026-06-15T23:30:00-05:00", "fail"),  # 2026-06-16 in UTC, but the written date is the as-of date
        ("2026-06-16T00:30:00+02:00", "pass"),  # 2026-06-15 in UTC, but written the day after
    ])
    def test_the_written_calendar_date_decides(self, written, expected):
        assert status(evaluate(eligible(patient=patient(deceasedDateTime=written))), "alive") == expected

    def test_unreadable_death_date_asks(self):
        evaluation = evaluate(eligible(patient=patient(deceasedDateTime="last spring")))
        assert status(evaluation, "alive") == "unknown"
        assert evaluation.verdict == "needs-review"
        assert notes_about(evaluation, "Patient/p1")

    def test_text_output_lists_alive(self):
        text = render_text(evaluate(eligible(patient=patient(deceasedDateTime="2026-01-02"))))
        assert "alive" in text and "deceased on 2026-01-02" in text


# --- what a Condition is -----------------------------------------------------------------------

class TestConditionKind:
    """The general rule, seen through the infection criterion (a 90-day window, stale ones ignored)."""

    @pytest.mark.parametrize("category", [VISIT, LOCAL_VISIT, TEXT_ONLY_VISIT, HEALTH_CONCERN],
                             ids=["hl7", "ehr-local", "text-only", "health-concern"])
    @pytest.mark.parametrize(("days", "expected"), [(90, "unknown"), (91, "pass")])
    def test_status_less_visit_diagnosis_counts_only_within_the_window(self, category, days, expected):
        infection = visit_dx("A41.9", display="Sepsis, unspecified organism", recorded=days, category=category,
                             id="inf")
        evaluation = evaluate(with_(infection))
        assert status(evaluation, "active-infection") == expected
        if expected == "pass":
            assert notes_about(evaluation, "Condition/inf") == [
                f"Condition/inf visit diagnosis from {when(days)} without status: not counted as active "
                "(active infection: only within 90 days)"]
        else:
            assert evidence(evaluation, "active-infection") == ["Condition/inf"]

    def test_us_core_encounter_diagnosis_profile_without_category(self):
        infection = visit_dx("A41.9", recorded=200, category=None, meta={"profile": [US_CORE_ENCOUNTER_DIAGNOSIS]})
        assert status(evaluate(with_(infection)), "active-infection") == "pass"

    @pytest.mark.parametrize("category", [PROBLEM, None], ids=["problem-list-item", "no-category"])
    def test_status_less_problem_list_item_is_active_whatever_its_age(self, category):
        infection = visit_dx("A41.9", recorded=3000, category=category)
        assert status(evaluate(with_(infection)), "active-infection") == "unknown"

    def test_a_visit_category_beside_a_problem_list_category_is_a_visit_diagnosis(self):
        infection = visit_dx("A41.9", recorded=3000, category=PROBLEM + VISIT)
        assert status(evaluate(with_(infection)), "active-infection") == "pass"

    def test_onset_wins_over_recorded_date(self):
        infection = visit_dx("A41.9", onset=200, recorded=10)
        assert status(evaluate(with_(infection)), "active-infection") == "pass"
        infection = visit_dx("A41.9", onset=10, recorded=200)
        assert status(evaluate(with_(infection)), "active-infection") == "unknown"

    def test_undated_visit_diagnosis_is_stale(self):
        evaluation = evaluate(with_(visit_dx("A41.9", id="undated")))
        assert status(evaluation, "active-infection") == "pass"
        assert notes_about(evaluation, "Condition/undated")

    def test_clinical_status_decides_when_present(self):
        old_but_active = condition("A41.9", onset=None, recorded=3000, category=VISIT)
        assert status(evaluate(with_(old_but_active)), "active-infection") == "unknown"
        recent_but_resolved = condition("A41.9", clinical="resolved", onset=5, category=VISIT)
        assert status(evaluate(with_(recent_but_resolved)), "active-infection") == "pass"

    @pytest.mark.parametrize(("abated", "expected"), [(0, "pass"), (-1, "unknown")])
    def test_a_status_less_condition_with_an_abatement_is_over(self, abated, expected):
        infection = visit_dx("A41.9", recorded=30, category=PROBLEM, abatementDateTime=when(abated))
        assert status(evaluate(with_(infection)), "active-infection") == expected

    def test_a_status_less_liver_metastasis_with_an_abatement_still_passes_the_gate(self):
        met = visit_dx("C78.7", recorded=300, abatementDateTime=when(100))
        assert status(evaluate(eligible(liver_met=met)), "liver-metastases") == "pass"

    def test_an_unrecognised_clinical_status_is_read_as_absent(self):
        odd = visit_dx("A41.9", recorded=300, clinicalStatus=cc("unknown", "http://example.org/local-status"))
        assert status(evaluate(with_(odd)), "active-infection") == "pass"

    def test_oid_systems_and_icd10_without_dot(self):
        infection = visit_dx("A419", ICD10_OID, recorded=30)
        assert status(evaluate(with_(infection)), "active-infection") == "unknown"


# --- liver-metastases --------------------------------------------------------------------------

class TestLiverMetastasesRev2:
    def test_remission_passes_as_responding_disease(self):
        evaluation = evaluate(eligible(liver_met=condition("C78.7", clinical="remission", id="m")))
        assert status(evaluation, "liver-metastases") == "pass"
        assert "in remission after treatment" in result(evaluation, "liver-metastases").reason
        assert evidence(evaluation, "liver-metastases") == ["Condition/m"]
        assert evaluation.facts["metastasisTiming"]["timing"] != "unknown"

    @pytest.mark.parametrize("clinical", ["resolved", "inactive"])
    def test_only_resolved_asks_with_the_date(self, clinical):
        met = condition("C78.7", display="Secondary malignant neoplasm of liver", clinical=clinical, id="m",
                        abatementDateTime="2026-03-01")
        evaluation = evaluate(eligible(liver_met=met))
        assert status(evaluation, "liver-metastases") == "unknown"
        assert result(evaluation, "liver-metastases").reason == (
            f"Secondary malignant neoplasm of liver recorded as {clinical} on 2026-03-01: confirm whether liver "
            "disease remains")
        assert evaluation.verdict == "needs-review"

    def test_resolved_beside_an_active_one_passes(self):
        both = [condition("C78.7", clinical="resolved"), condition("94381002", SNOMED, clinical="active", id="now")]
        evaluation = evaluate(eligible(liver_met=both))
        assert status(evaluation, "liver-metastases") == "pass"
        assert evidence(evaluation, "liver-metastases") == ["Condition/now"]

    @pytest.mark.parametrize("recorded", [10, 3000])
    def test_status_less_visit_diagnosis_of_any_age_passes(self, recorded):
        met = visit_dx("C78.7", recorded=recorded)
        assert status(evaluate(eligible(liver_met=met)), "liver-metastases") == "pass"

    def test_pdac_visit_diagnosis_of_any_age_and_status_passes(self):
        for pdac in (visit_dx("C25.0", recorded=3000), condition("C25.0", clinical="resolved")):
            assert status(evaluate(eligible(pdac=pdac)), "pdac-diagnosis") == "pass"

    def test_metastatic_pancreatic_cancer_by_text_is_the_pdac_too(self):
        local = "http://example.org/local"
        evaluation = evaluate(eligible(pdac=condition("X-1", local, "Metastatic pancreatic adenocarcinoma", id="p"),
                                       liver_met=None))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert evidence(evaluation, "pdac-diagnosis") == ["Condition/p"]
        assert status(evaluation, "liver-metastases") == "fail"  # no site named
        assert notes_about(evaluation, "Condition/p")

    @pytest.mark.parametrize("display", ["Pancreatic cancer metastatic to liver",
                                         "Adenocarcinoma of pancreas with liver metastases"])
    def test_one_condition_naming_the_pdac_and_its_liver_metastases(self, display):
        one = condition("X-2", "http://example.org/local", display, id="both")
        evaluation = evaluate(eligible(pdac=one, liver_met=None))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "liver-metastases") == "pass"
        assert evidence(evaluation, "liver-metastases") == ["Condition/both"]
        assert evaluation.facts["metastasisTiming"]["timing"] == "synchronous"

    def test_one_condition_with_a_pancreatic_and_a_liver_metastasis_icd10_code(self):
        one = condition("C25.0", display="Malignant neoplasm of head of pancreas", id="both")
        one["code"]["coding"].append(coding("C78.7", ICD10, "Secondary malignant neoplasm of liver"))
        evaluation = evaluate(eligible(pdac=one, liver_met=None))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "liver-metastases") == "pass"

    def test_metastatic_non_ductal_pancreatic_tumour_is_not_pdac(self):
        net = condition("X-3", "http://example.org/local", "Metastatic pancreatic neuroendocrine tumor to liver")
        evaluation = evaluate(eligible(pdac=net, liver_met=None))
        assert status(evaluation, "pdac-diagnosis") == "fail"
        assert status(evaluation, "liver-metastases") == "pass"

    def test_a_metastasis_to_the_pancreas_is_not_pdac(self):
        other = condition("X-4", "http://example.org/local", "Secondary malignant neoplasm of pancreas")
        assert status(evaluate(eligible(pdac=other)), "pdac-diagnosis") == "fail"

    @pytest.mark.parametrize("broken", ["encounter-diagnosis", [{"coding": "encounter-diagnosis"}], ["x"]])
    def test_a_malformed_category_keeps_the_condition_read_cautiously(self, broken):
        pdac = visit_dx("C25.0", recorded=3000, category=broken, id="pdac")
        infection = visit_dx("A41.9", recorded=200, category=broken)
        evaluation = evaluate(with_(infection, pdac=pdac))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "active-infection") == "pass"  # read like a visit diagnosis: stale

    @pytest.mark.parametrize("text", ["Secondary malignant neoplasm of liver", "Liver metastases",
                                      "Metastatic pancreatic cancer to the liver"])
    def test_liver_metastasis_by_text(self, text):
        met = condition("999", "http://example.org/local", text, id="m")
        assert status(evaluate(eligible(liver_met=met)), "liver-metastases") == "pass"


# --- extrahepatic-metastases -------------------------------------------------------------------

class TestExtrahepaticRev2:
    @pytest.mark.parametrize(("days", "expected"), [(365, "fail"), (366, "unknown")])
    def test_status_less_visit_diagnosis_within_365_days(self, days, expected):
        met = visit_dx("C78.01", display="Secondary malignant neoplasm of right lung", recorded=days, id="met")
        evaluation = evaluate(with_(met, imaging_study("CT", 5)))
        assert status(evaluation, "extrahepatic-metastases") == expected
        assert evidence(evaluation, "extrahepatic-metastases") == ["Condition/met"]
        if expected == "unknown":
            assert "confirm" in result(evaluation, "extrahepatic-metastases").reason
            assert evaluation.verdict == "needs-review"

    def test_problem_list_item_without_status_fails_whatever_its_age(self):
        met = visit_dx("C79.51", recorded=2000, category=PROBLEM)
        assert status(evaluate(with_(met)), "extrahepatic-metastases") == "fail"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("94260004", SNOMED, "Secondary malignant neoplasm of colon"),  # Synthea's colorectal module
        ("94579000", SNOMED, "Secondary malignant neoplasm of skin"),
        ("94260004", SNOMED_OID, None),
        ("X-77", "http://example.org/local", "Secondary malignant neoplasm of colon"),
        ("X-78", "http://example.org/local", "Secondary malignant neoplasm of retroperitoneum and peritoneum"),
        ("X-79", "http://example.org/local", "Metastasis to bone"),
        ("X-80", "http://example.org/local", "Metastatic adenocarcinoma to the brain"),
        ("X-81", "http://example.org/local", "Lung metastases"),
        ("X-82", "http://example.org/local", "Secondary malignant neoplasm of axillary lymph nodes"),
        ("C7951", ICD10, None),  # claims data: no dot
        ("C78.6", WHO_ICD10, None),
    ])
    def test_metastasis_of_any_non_liver_site_fails(self, code, system, display):
        met = condition(code, system, display, id="met")
        evaluation = evaluate(with_(met))
        assert status(evaluation, "extrahepatic-metastases") == "fail"
        assert evidence(evaluation, "extrahepatic-metastases") == ["Condition/met"]
        assert not notes_about(evaluation, "Condition/met")  # not "a metastasis without a site"
        assert status(evaluation, "liver-metastases") == "pass"

    @pytest.mark.parametrize("display", ["Secondary malignant neoplasm of intra-abdominal lymph nodes",
                                         "Secondary malignant neoplasm of liver"])
    def test_liver_and_regional_nodes_are_not_extrahepatic(self, display):
        met = condition("X-1", "http://example.org/local", display)
        assert status(evaluate(with_(met)), "extrahepatic-metastases") == "pass"

    def test_liver_and_lung_in_one_display_is_both(self):
        met = condition("X-2", "http://example.org/local", "Liver and lung metastases", id="both")
        evaluation = evaluate(eligible(liver_met=met))
        assert status(evaluation, "liver-metastases") == "pass"
        assert status(evaluation, "extrahepatic-metastases") == "fail"

    @pytest.mark.parametrize("display", ["No evidence of metastasis to bone", "History of metastasis to bone",
                                         "Negative for metastatic disease to the lung"])
    def test_denied_or_past_wording_does_not_exclude(self, display):
        met = condition("X-4", "http://example.org/local", display)
        assert status(evaluate(with_(met)), "extrahepatic-metastases") == "pass"

    def test_history_of_metastasis_to_liver_still_passes_the_gate(self):
        met = condition("X-5", "http://example.org/local", "History of metastasis to liver", clinical=None)
        assert status(evaluate(eligible(liver_met=met)), "liver-metastases") == "pass"

    def test_metastasis_without_a_site_is_still_noted(self):
        met = condition("X-3", "http://example.org/local", "Metastatic disease in remission", id="where")
        evaluation = evaluate(with_(met))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert notes_about(evaluation, "Condition/where")


# --- other-malignancy --------------------------------------------------------------------------

CONFIRM_TWO_YEARS = "is not active and was diagnosed more than 2 years ago"


class TestOtherMalignancyRev2:
    @pytest.mark.parametrize(("days", "expected"), [(730, "fail"), (731, "unknown")])
    def test_status_less_visit_diagnosis_within_730_days(self, days, expected):
        cancer = visit_dx("C50.911", display="Malignant neoplasm of right female breast", recorded=days, id="bc")
        evaluation = evaluate(with_(cancer))
        assert status(evaluation, "other-malignancy") == expected
        assert evidence(evaluation, "other-malignancy") == ["Condition/bc"]
        if expected == "unknown":
            assert result(evaluation, "other-malignancy").reason == (
                f"confirm the Malignant neoplasm of right female breast last recorded {when(days)} {CONFIRM_TWO_YEARS}")
            assert evaluation.verdict == "needs-review"

    def test_the_spec_example_a_2016_breast_cancer_visit_diagnosis_never_excludes(self):
        cancers = [visit_dx("C50.911", recorded="2016-03-02"), visit_dx("C50.911", recorded="2017-05-10")]
        evaluation = evaluate(with_(*cancers))
        assert status(evaluation, "other-malignancy") == "unknown"
        assert "last recorded 2017-05-10" in result(evaluation, "other-malignancy").reason  # the newest visit
        assert evaluation.verdict == "needs-review"

    def test_problem_list_item_without_status_fails_whatever_its_age(self):
        assert status(evaluate(with_(visit_dx("C50.911", recorded=3000, category=PROBLEM))),
                      "other-malignancy") == "fail"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("Z85.3", ICD10, "Personal history of malignant neoplasm of breast"),
        ("Z853", ICD10, None),
        ("Z85.46", WHO_ICD10, None),
        ("428262008", SNOMED, "History of malignant neoplasm of prostate"),
        ("X-9", "http://example.org/local", "Personal history of colon cancer"),
    ])
    def test_a_history_code_without_an_old_onset_asks(self, code, system, display):
        history = condition(code, system, display, onset=None, recorded=10, id="hx")
        evaluation = evaluate(with_(history))
        assert status(evaluation, "other-malignancy") == "unknown"
        assert CONFIRM_TWO_YEARS in result(evaluation, "other-malignancy").reason
        assert evidence(evaluation, "other-malignancy") == ["Condition/hx"]

    @pytest.mark.parametrize(("onset", "expected"), [(731, "pass"), (730, "unknown")])
    def test_a_history_code_whose_onset_is_older_than_730_days_passes(self, onset, expected):
        history = condition("Z85.3", onset=onset, id="hx")
        evaluation = evaluate(with_(history))
        assert status(evaluation, "other-malignancy") == expected
        assert evidence(evaluation, "other-malignancy") == ["Condition/hx"]

    def test_history_of_pancreatic_cancer_is_the_pdac_itself(self):
        evaluation = evaluate(eligible(pdac=condition("Z85.07", id="pdac")))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "other-malignancy") == "pass"

    def test_family_history_says_nothing_about_the_patient(self):
        family = condition("429740004", SNOMED, "Family history of malignant neoplasm of breast (situation)")
        assert status(evaluate(with_(family)), "other-malignancy") == "pass"
        family_icd = condition("Z80.3", ICD10, "Family history of malignant neoplasm of breast")
        assert status(evaluate(with_(family_icd)), "other-malignancy") == "pass"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("314994000", SNOMED, "Metastasis from malignant tumor of prostate (disorder)"),  # Synthea
        ("X-5", "http://example.org/local", "Metastasis from malignant tumor of breast"),
        ("X-6", "http://example.org/local", "Secondary malignant neoplasm of bone from primary carcinoma of lung"),
    ])
    def test_a_metastasis_naming_another_primary_is_another_malignancy(self, code, system, display):
        met = condition(code, system, display, id="other")
        evaluation = evaluate(with_(met))
        assert status(evaluation, "other-malignancy") == "fail"
        assert evidence(evaluation, "other-malignancy") == ["Condition/other"]
        assert status(evaluation, "pdac-diagnosis") == "pass"

    @pytest.mark.parametrize(("display", "liver", "extrahepatic"), [
        ("Breast cancer metastatic to liver", "pass", "pass"),
        ("Metastatic prostate adenocarcinoma to bone", "pass", "fail"),
        ("Colon cancer with liver metastases", "pass", "pass"),
        ("Metastatic melanoma", "pass", "pass"),
    ])
    def test_a_metastasis_whose_wording_names_another_cancer(self, display, liver, extrahepatic):
        evaluation = evaluate(with_(condition("X-8", "http://example.org/local", display, id="other")))
        assert status(evaluation, "other-malignancy") == "fail"
        assert evidence(evaluation, "other-malignancy") == ["Condition/other"]
        assert status(evaluation, "liver-metastases") == liver  # the baseline's C78.7
        assert status(evaluation, "extrahepatic-metastases") == extrahepatic

    def test_other_primary_and_metastasis_icd10_codes_on_one_condition(self):
        one = condition("C50.911", display="Malignant neoplasm of right female breast", id="one")
        one["code"]["coding"].append(coding("C78.7", ICD10, "Secondary malignant neoplasm of liver"))
        evaluation = evaluate(with_(one))
        assert status(evaluation, "other-malignancy") == "fail"

    def test_pancreatic_metastasis_wording_is_not_another_cancer(self):
        met = condition("X-9", "http://example.org/local", "Lung metastases of pancreatic adenocarcinoma")
        evaluation = evaluate(with_(met))
        assert status(evaluation, "other-malignancy") == "pass"
        assert status(evaluation, "extrahepatic-metastases") == "fail"

    def test_an_imo_display_naming_the_liver_beside_a_lone_c25_counts_for_the_gate(self):
        pdac = condition("C25.9", display="Pancreatic cancer metastasized to liver (HCC)", id="pdac")
        evaluation = evaluate(eligible(pdac=pdac, liver_met=None))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "liver-metastases") == "pass"
        lung = condition("C25.9", display="Pancreatic cancer metastasized to lung (HCC)")
        assert status(evaluate(with_(lung)), "extrahepatic-metastases") == "pass"  # ICD-10 decides exclusions

    def test_a_metastasis_naming_the_pancreas_is_not_another_malignancy(self):
        met = condition("X-7", "http://example.org/local", "Metastasis from malignant tumor of pancreas",
                        body_site=[LIVER])
        evaluation = evaluate(with_(met))
        assert status(evaluation, "other-malignancy") == "pass"
        assert status(evaluation, "extrahepatic-metastases") == "pass"

    @pytest.mark.parametrize(("code", "expected"), [("C7A.010", "fail"), ("C7B.02", "pass"), ("C44.91", "pass"),
                                                    ("C80.1", "pass"), ("C77.9", "pass")])
    def test_icd10_boundaries(self, code, expected):
        assert status(evaluate(with_(condition(code, onset=100))), "other-malignancy") == expected


# --- infection, cardiac, neuropathy ------------------------------------------------------------

class TestOtherConditionsRev2:
    def test_an_old_visit_infection_is_ignored_and_noted(self):
        evaluation = evaluate(with_(visit_dx("K83.09", recorded="2016-03-02", id="old-cholangitis")))
        assert status(evaluation, "active-infection") == "pass"
        assert notes_about(evaluation, "Condition/old-cholangitis") == [
            "Condition/old-cholangitis visit diagnosis from 2016-03-02 without status: not counted as active "
            "(active infection: only within 90 days)"]
        assert evaluation.verdict == "likely-eligible"

    @pytest.mark.parametrize("recorded", [5, 5000])
    def test_cardiac_visit_diagnosis_counts_whatever_its_age(self, recorded):
        evaluation = evaluate(with_(visit_dx("I48.91", recorded=recorded, id="af")))
        assert status(evaluation, "cardiac-disease") == "unknown"
        assert evidence(evaluation, "cardiac-disease") == ["Condition/af"]

    @pytest.mark.parametrize(("days", "grade", "expected"), [
        (365, 3, "fail"), (366, 3, "unknown"),
        (365, None, "unknown"), (366, None, "unknown"),
        (365, 1, "pass"), (366, 1, "pass"),
    ])
    def test_neuropathy_visit_diagnosis_within_365_days(self, days, grade, expected):
        neuro = visit_dx("G62.0", recorded=days, grade=grade, id="neuro")
        evaluation = evaluate(with_(neuro))
        assert status(evaluation, "neuropathy") == expected
        assert evidence(evaluation, "neuropathy") == ["Condition/neuro"]

    def test_a_stale_neuropathy_never_fails_beside_a_current_mild_one(self):
        both = [visit_dx("G62.0", recorded=800, grade=3, id="old"), condition("G62.0", grade=1, id="now")]
        evaluation = evaluate(with_(*both))
        assert status(evaluation, "neuropathy") == "unknown"
        assert "confirm" in result(evaluation, "neuropathy").reason

    def test_problem_list_neuropathy_without_status_is_active_whatever_its_age(self):
        neuro = visit_dx("G62.0", recorded=3000, grade=3, category=PROBLEM)
        assert status(evaluate(with_(neuro)), "neuropathy") == "fail"


# --- pregnancy ---------------------------------------------------------------------------------

NOT_PREGNANT = cc("60001007", SNOMED, "Not pregnant")


def pregnancy_status(value: dict, on) -> dict:
    return observation("82810-3", LOINC, on=on, valueCodeableConcept=value)


class TestPregnancyRev2:
    @pytest.mark.parametrize(("days", "expected"), [(270, "fail"), (271, "pass")])
    @pytest.mark.parametrize("kind", ["active", "visit", "problem-list"])
    def test_pregnancy_condition_only_within_270_days(self, kind, days, expected):
        preg = {"active": condition("Z34.90", onset=days, id="preg"),
                "visit": visit_dx("Z34.90", recorded=days, id="preg"),
                "problem-list": visit_dx("Z34.90", onset=days, category=PROBLEM, id="preg")}[kind]
        evaluation = evaluate(with_(preg))
        assert status(evaluation, "pregnancy") == expected
        if expected == "fail":
            assert evidence(evaluation, "pregnancy") == ["Condition/preg"]
        else:
            assert notes_about(evaluation, "Condition/preg") == [
                f"Condition/preg pregnancy recorded {when(days)}, older than 270 days: ignored"]

    def test_the_spec_example_a_2021_pregnancy_visit_diagnosis_is_ignored(self):
        evaluation = evaluate(with_(visit_dx("Z34.90", recorded="2021-05-01", id="y")))
        assert status(evaluation, "pregnancy") == "pass"
        assert notes_about(evaluation, "Condition/y") == ["Condition/y pregnancy recorded 2021-05-01, older than 270 "
                                                          "days: ignored"]
        assert evaluation.verdict == "likely-eligible"

    @pytest.mark.parametrize(("status_days", "expected"), [(39, "pass"), (40, "fail"), (41, "fail")])
    def test_a_newer_not_pregnant_status_overrides_the_condition(self, status_days, expected):
        preg = condition("Z34.90", onset=40, id="preg")
        evaluation = evaluate(with_(preg, pregnancy_status(NOT_PREGNANT, status_days)))
        assert status(evaluation, "pregnancy") == expected
        if expected == "pass":
            assert "says not pregnant" in notes_about(evaluation, "Condition/preg")[0]

    def test_a_status_less_pregnancy_that_ended_passes(self):
        preg = visit_dx("Z34.90", recorded=100, abatementDateTime=when(10))
        assert status(evaluate(with_(preg)), "pregnancy") == "pass"

    def test_resolved_pregnancy_within_the_window_passes(self):
        assert status(evaluate(with_(condition("Z34.90", clinical="resolved", onset=20))), "pregnancy") == "pass"

    def test_undated_pregnancy_is_ignored_and_noted(self):
        evaluation = evaluate(with_(visit_dx("Z34.90", id="undated")))
        assert status(evaluation, "pregnancy") == "pass"
        assert notes_about(evaluation, "Condition/undated")


# --- the whole record --------------------------------------------------------------------------

def test_an_epic_style_record_of_old_visit_diagnoses_stays_a_candidate():
    """Old visit diagnoses of every kind: none excludes; the chronic ones ask, the acute ones are noted."""
    old = [visit_dx("C50.911", recorded="2016-03-02", id="breast"), visit_dx("Z34.90", recorded="2021-05-01", id="preg"),
           visit_dx("A41.9", recorded="2019-01-01", id="sepsis"), visit_dx("C78.01", recorded="2020-01-01", id="lung"),
           visit_dx("G62.0", recorded="2020-02-02", grade=2, id="neuro")]
    evaluation = evaluate(with_(*old, pdac=visit_dx("C25.0", recorded=300, id="pdac"),
                                liver_met=visit_dx("C78.7", recorded=290, id="liver")))
    statuses = {c.id: c.status for c in evaluation.criteria}
    assert not [cid for cid, s in statuses.items() if s == "fail"], statuses
    assert statuses["pdac-diagnosis"] == statuses["liver-metastases"] == "pass"
    assert statuses["other-malignancy"] == statuses["extrahepatic-metastases"] == statuses["neuropathy"] == "unknown"
    assert statuses["pregnancy"] == statuses["active-infection"] == "pass"
    assert notes_about(evaluation, "Condition/preg") and notes_about(evaluation, "Condition/sepsis")
    assert evaluation.verdict == "needs-review"
    assert evaluation.asOf == AS_OF.isoformat()


# --- provisional Conditions ask, they do not exclude -------------------------------------------

class TestUnconfirmedExclusions:
    @pytest.mark.parametrize("verification", ["provisional", "differential", "unconfirmed"])
    @pytest.mark.parametrize(("resource", "criterion"), [
        (lambda v: condition("C78.01", verification=v, id="c"), "extrahepatic-metastases"),
        (lambda v: condition("C50.911", verification=v, id="c"), "other-malignancy"),
        (lambda v: condition("G62.0", grade=3, verification=v, id="c"), "neuropathy"),
        (lambda v: condition("Z34.90", onset=30, verification=v, id="c"), "pregnancy"),
    ], ids=["extrahepatic", "other-malignancy", "neuropathy", "pregnancy"])
    def test_only_unconfirmed_evidence_asks(self, resource, criterion, verification):
        evaluation = evaluate(with_(resource(verification)))
        assert status(evaluation, criterion) == "unknown"
        assert evidence(evaluation, criterion) == ["Condition/c"]
        assert f"({verification}), not confirmed" in result(evaluation, criterion).reason
        assert evaluation.verdict == "needs-review"

    @pytest.mark.parametrize(("resource", "criterion"), [
        (lambda v: condition("C78.01", verification=v), "extrahepatic-metastases"),
        (lambda v: condition("C50.911", verification=v), "other-malignancy"),
        (lambda v: condition("G62.0", grade=3, verification=v), "neuropathy"),
        (lambda v: condition("Z34.90", onset=30, verification=v), "pregnancy"),
    ], ids=["extrahepatic", "other-malignancy", "neuropathy", "pregnancy"])
    def test_confirmed_or_unstated_verification_still_fails(self, resource, criterion):
        for verification in ("confirmed", None):
            assert status(evaluate(with_(resource(verification))), criterion) == "fail"
