"""Every criterion of NCT05271110 against the spec (/work/shared/spec/NCT05271110.md), branch by branch.

Each test starts from a likely-eligible patient (``eligible()``), changes the one thing it is about
and reads one criterion. ``AS_OF`` is the as-of date; an int date in a builder means "days before it".
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cds_service.criteria import verdict
from cds_service.criteria.models import CriterionResult
from cds_service.trials import get_trial
from fhir_mappings.observations import karnofsky_to_ecog

from .builders import (
    AS_OF, ATC, BREAST, CRITERIA_IDS, DEXAMETHASONE, GEMCITABINE, ICD10, ICDO3, LIVER, LOINC, LUNG, MEDDRA,
    NAB_PACLITAXEL, PID, REVIEW_IDS, RXNORM, SNOMED, SURGICAL, TACROLIMUS, body_structure, cc, coding, condition,
    disease_status, ecog, eligible, evaluate, evidence, imaging_study, karnofsky, med_admin, med_request,
    med_statement, notes_about, observation, patient, procedure, ref, result, status, tumour_size, when,
)

STATUSES = {"pass", "fail", "unknown"}


def with_(*extra, **replace):
    """The eligible patient with some parts replaced and extra resources added."""
    return eligible(**replace) + list(extra)


# --- the evaluation object ---------------------------------------------------------------------

class TestEvaluationShape:
    def test_the_baseline_patient_is_likely_eligible(self):
        evaluation = evaluate(eligible())
        assert evaluation.verdict == "likely-eligible"
        for c in evaluation.criteria:
            assert c.status == ("unknown" if c.id in REVIEW_IDS else "pass"), (c.id, c.reason)

    def test_every_criterion_exactly_once_in_the_definitions_order(self):
        evaluation = evaluate(eligible())
        ids = [c.id for c in evaluation.criteria]
        assert ids == list(CRITERIA_IDS)
        assert ids == [c.id for c in get_trial("NCT05271110").criteria]

    def test_types_and_modes_follow_the_spec(self):
        evaluation = evaluate(eligible())
        inclusions = {"alive", "age", "pdac-diagnosis", "liver-metastases", "liver-limited", "ecog", "resectable-primary",
                      "consent-capacity"}
        for c in evaluation.criteria:
            assert c.type == ("inclusion" if c.id in inclusions else "exclusion"), c.id
            assert c.automated is (c.id not in REVIEW_IDS), c.id

    def test_json_matches_the_contract(self):
        data = evaluate(eligible(), as_of=date(2026, 2, 3)).to_json()
        assert data["trial"] == "NCT05271110"
        assert data["patient"] == f"Patient/{PID}"
        assert data["asOf"] == "2026-02-03"
        assert data["verdict"] in {"likely-eligible", "needs-review", "not-eligible"}
        assert isinstance(data["facts"], dict)
        assert [c["id"] for c in data["criteria"]] == list(CRITERIA_IDS)
        for c in data["criteria"]:
            assert c["status"] in STATUSES
            assert c["type"] in {"inclusion", "exclusion"}
            assert isinstance(c["automated"], bool)
            assert isinstance(c["reason"], str) and c["reason"]
            assert isinstance(c["evidence"], list) and all(isinstance(e, str) for e in c["evidence"])
        assert "notes" not in data or all(isinstance(n, str) for n in data["notes"])

    def test_notes_appear_only_when_something_was_set_aside(self):
        assert "notes" not in evaluate(eligible()).to_json()
        data = evaluate(with_(ecog(4, 5, status="entered-in-error", id="bad"))).to_json()
        assert any("Observation/bad" in n for n in data["notes"])

    @pytest.mark.parametrize("criterion", ["consent-capacity", "concomitant-disease", "contraception"])
    def test_pure_review_criteria_are_always_unknown(self, criterion):
        assert status(evaluate(eligible()), criterion) == "unknown"
        assert status(evaluate([patient()]), criterion) == "unknown"


# --- verdict -----------------------------------------------------------------------------------

def _result(cid: str, status_: str, automated: bool = True) -> CriterionResult:
    return CriterionResult(id=cid, type="inclusion", automated=automated, label=cid, status=status_, reason="r",
                           evidence=[])


class TestVerdict:
    def test_fail_beats_unknown(self):
        assert verdict([_result("a", "unknown"), _result("b", "fail"), _result("c", "pass")]) == "not-eligible"

    def test_a_review_fail_also_makes_not_eligible(self):
        assert verdict([_result("a", "pass"), _result("r", "fail", automated=False)]) == "not-eligible"

    def test_automated_unknown_needs_review(self):
        assert verdict([_result("a", "unknown"), _result("b", "pass")]) == "needs-review"

    def test_review_unknown_does_not_lower_likely_eligible(self):
        assert verdict([_result("a", "pass"), _result("r", "unknown", automated=False)]) == "likely-eligible"

    def test_end_to_end_fail_and_unknown(self):
        evaluation = evaluate(with_(condition("C50.911", onset=100), ecog=ecog(2, 5)))
        assert status(evaluation, "ecog") == "unknown"
        assert status(evaluation, "other-malignancy") == "fail"
        assert evaluation.verdict == "not-eligible"

    def test_end_to_end_automated_unknown(self):
        evaluation = evaluate(eligible(ecog=ecog(2, 5)))
        assert evaluation.verdict == "needs-review"

    def test_end_to_end_review_fail(self):
        t4 = observation("21905-5", valueCodeableConcept=cc("cT4", "http://cancerstaging.org", "cT4"))
        evaluation = evaluate(with_(t4))
        assert status(evaluation, "resectable-primary") == "fail"
        assert evaluation.verdict == "not-eligible"


# --- age ---------------------------------------------------------------------------------------

class TestAge:
    def test_eighteenth_birthday_on_the_as_of_date_passes(self):
        born = AS_OF.replace(year=AS_OF.year - 18)
        assert status(evaluate(eligible(patient=patient(birth_date=born.isoformat()))), "age") == "pass"

    def test_one_day_short_of_eighteen_fails(self):
        born = AS_OF.replace(year=AS_OF.year - 18) + timedelta(days=1)
        evaluation = evaluate(eligible(patient=patient(birth_date=born.isoformat())))
        assert status(evaluation, "age") == "fail"
        assert evaluation.verdict == "not-eligible"

    def test_no_birth_date_is_unknown(self):
        evaluation = evaluate(eligible(patient=patient(birth_date=None)))
        assert status(evaluation, "age") == "unknown"
        assert evaluation.verdict == "needs-review"

    def test_partial_birth_dates_mean_their_first_day(self):
        # AS_OF is 2026-06-15: born 2008-06 → 2008-06-01 → 18; born 2008-07 → 2008-07-01 → 17.
        assert status(evaluate(eligible(patient=patient(birth_date="2008-06"))), "age") == "pass"
        assert status(evaluate(eligible(patient=patient(birth_date="2008-07"))), "age") == "fail"
        assert status(evaluate(eligible(patient=patient(birth_date="2008"))), "age") == "pass"

    def test_evidence_is_the_patient(self):
        assert evidence(evaluate(eligible()), "age") == [f"Patient/{PID}"]


# --- pdac-diagnosis ----------------------------------------------------------------------------

class TestPdacDiagnosis:
    @pytest.mark.parametrize(("code", "system"), [
        ("C25.0", ICD10), ("C25", ICD10), ("C25.1", ICD10), ("C25.2", ICD10), ("C25.3", ICD10), ("C25.7", ICD10),
        ("C25.8", ICD10), ("C25.9", ICD10), ("C259", ICD10), ("700423003", SNOMED), ("363418001", SNOMED),
        ("372003004", SNOMED),
    ])
    def test_pancreatic_cancer_codes_pass(self, code, system):
        evaluation = evaluate(eligible(pdac=condition(code, system, id="pdac")))
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert evidence(evaluation, "pdac-diagnosis") == ["Condition/pdac"]

    @pytest.mark.parametrize("clinical", ["resolved", "remission", "inactive", None])
    def test_any_clinical_status_counts(self, clinical):
        assert status(evaluate(eligible(pdac=condition("C25.0", clinical=clinical))), "pdac-diagnosis") == "pass"

    def test_absent_verification_counts(self):
        assert status(evaluate(eligible(pdac=condition("C25.0", verification=None))), "pdac-diagnosis") == "pass"

    @pytest.mark.parametrize("verification", ["provisional", "differential", "unconfirmed"])
    def test_unconfirmed_pdac_is_unknown(self, verification):
        evaluation = evaluate(eligible(pdac=condition("C25.0", verification=verification, id="pdac")))
        assert status(evaluation, "pdac-diagnosis") == "unknown"
        assert evidence(evaluation, "pdac-diagnosis") == ["Condition/pdac"]
        assert evaluation.verdict == "needs-review"

    def test_a_confirmed_pdac_beside_a_provisional_one_passes(self):
        both = [condition("C25.0", verification="provisional"), condition("C25.1", id="sure")]
        assert status(evaluate(eligible(pdac=both)), "pdac-diagnosis") == "pass"

    def test_endocrine_pancreas_c25_4_fails(self):
        evaluation = evaluate(eligible(pdac=condition("C25.4", id="pnet")))
        assert status(evaluation, "pdac-diagnosis") == "fail"
        assert evidence(evaluation, "pdac-diagnosis") == ["Condition/pnet"]
        assert evaluation.verdict == "not-eligible"

    @pytest.mark.parametrize("morphology", ["8240/3", "8246/3", "8249/3", "8550/3", "8551/3", "8452/3", "8971/3"])
    def test_non_ductal_histology_fails(self, morphology):
        pdac = condition("C25.0", histology=cc(morphology, ICDO3))
        assert status(evaluate(eligible(pdac=pdac)), "pdac-diagnosis") == "fail"

    def test_non_ductal_histology_by_name_fails(self):
        pdac = condition("363418001", SNOMED,
                         histology=cc("1187332001", SNOMED, "Neuroendocrine carcinoma (morphologic abnormality)"))
        assert status(evaluate(eligible(pdac=pdac)), "pdac-diagnosis") == "fail"

    @pytest.mark.parametrize("histology", [cc("8500/3", ICDO3), cc("8140/3", ICDO3), cc("8480/3", ICDO3),
                                           cc("82711006", SNOMED, "Infiltrating duct carcinoma"),
                                           cc("35917007", SNOMED, "Adenocarcinoma")])
    def test_ductal_histology_passes(self, histology):
        assert status(evaluate(eligible(pdac=condition("C25.0", histology=histology))), "pdac-diagnosis") == "pass"

    def test_no_pancreatic_cancer_fails(self):
        evaluation = evaluate(eligible(pdac=None))
        assert status(evaluation, "pdac-diagnosis") == "fail"
        assert evaluation.verdict == "not-eligible"

    def test_another_cancer_is_not_pdac(self):
        evaluation = evaluate(eligible(pdac=condition("C18.7", onset=300)))
        assert status(evaluation, "pdac-diagnosis") == "fail"


# --- liver-metastases --------------------------------------------------------------------------

class TestLiverMetastases:
    @pytest.mark.parametrize("liver_met", [
        condition("C78.7", id="m"),
        condition("C787", id="m"),
        condition("94381002", SNOMED, id="m"),
        condition("128462008", SNOMED, body_site=[LIVER], id="m"),
        condition("128462008", SNOMED, body_site=[cc("245375009", SNOMED, "Right lobe of liver")], id="m"),
        condition("128462008", SNOMED, body_site=[cc(None, text="hepatic segment VI")], id="m"),
        condition(None, text="Metastatic adenocarcinoma", profile="mcode-secondary-cancer-condition",
                  body_site=[LIVER], id="m"),
    ])
    def test_liver_metastasis_conditions_pass(self, liver_met):
        evaluation = evaluate(eligible(liver_met=liver_met))
        assert status(evaluation, "liver-metastases") == "pass"
        assert evidence(evaluation, "liver-metastases") == ["Condition/m"]

    def test_history_of_metastasis_to_liver_observation_passes(self):
        history = observation("1098951000119108", SNOMED, id="hist")
        evaluation = evaluate(eligible(liver_met=history))
        assert status(evaluation, "liver-metastases") == "pass"
        assert evidence(evaluation, "liver-metastases") == ["Observation/hist"]

    def test_negated_history_observation_does_not_count(self):
        history = observation("1098951000119108", SNOMED, valueBoolean=False)
        assert status(evaluate(eligible(liver_met=history)), "liver-metastases") == "fail"

    def test_generic_history_code_with_liver_body_site_passes(self):
        history = observation("1287652008", SNOMED, bodySite=LIVER)
        assert status(evaluate(eligible(liver_met=history)), "liver-metastases") == "pass"

    def test_none_fails(self):
        evaluation = evaluate(eligible(liver_met=None))
        assert status(evaluation, "liver-metastases") == "fail"
        assert evaluation.verdict == "not-eligible"

    # Revision 2: remission passes (responding disease); only resolved / inactive asks a human.
    @pytest.mark.parametrize(("clinical", "expected"), [("resolved", "unknown"), ("inactive", "unknown"),
                                                        ("remission", "pass")])
    def test_a_liver_metastasis_no_longer_active(self, clinical, expected):
        evaluation = evaluate(eligible(liver_met=condition("C78.7", clinical=clinical)))
        assert status(evaluation, "liver-metastases") == expected

    @pytest.mark.parametrize("clinical", ["recurrence", "relapse", None])
    def test_recurrence_relapse_or_absent_status_are_active(self, clinical):
        evaluation = evaluate(eligible(liver_met=condition("C78.7", clinical=clinical)))
        assert status(evaluation, "liver-metastases") == "pass"

    def test_generic_metastasis_without_body_site_is_neither_and_noted(self):
        unsited = condition("128462008", SNOMED, id="unsited")
        evaluation = evaluate(eligible(liver_met=unsited))
        assert status(evaluation, "liver-metastases") == "fail"
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert notes_about(evaluation, "Condition/unsited")

    @pytest.mark.parametrize(("liver_days_after", "timing"), [
        (0, "synchronous"), (183, "synchronous"), (184, "metachronous"), (-20, "synchronous")])
    def test_timing(self, liver_days_after, timing):
        pdac_onset = date(2025, 1, 10)
        liver_onset = pdac_onset + timedelta(days=liver_days_after)
        evaluation = evaluate(eligible(pdac=condition("C25.0", onset=pdac_onset.isoformat()),
                                       liver_met=condition("C78.7", onset=liver_onset.isoformat())))
        facts = evaluation.facts["metastasisTiming"]
        assert facts["timing"] == timing
        assert facts["pdacOnset"] == pdac_onset.isoformat()
        assert facts["liverMetastasisOnset"] == liver_onset.isoformat()
        assert timing in result(evaluation, "liver-metastases").reason

    def test_timing_unknown_without_an_onset(self):
        evaluation = evaluate(eligible(liver_met=condition("C78.7", onset=None)))
        assert evaluation.facts["metastasisTiming"]["timing"] == "unknown"
        assert status(evaluation, "liver-metastases") == "pass"  # timing is informational


# --- liver-limited -----------------------------------------------------------------------------

def lesions(*sizes: float, on: int = 10, **kwargs) -> list[dict]:
    return [tumour_size(s, on, **kwargs) for s in sizes]


class TestLiverLimited:
    @pytest.mark.parametrize(("sizes", "expected"), [
        ((10,), "pass"), ((10, 10, 10, 10), "pass"), ((10, 10, 10, 10, 10), "fail"),
        ((49.9,), "pass"), ((50,), "fail"), ((12, 50.0), "fail"), ((51,), "fail"),
    ])
    def test_count_and_largest(self, sizes, expected):
        evaluation = evaluate(eligible(lesions=lesions(*sizes)))
        assert status(evaluation, "liver-limited") == expected

    @pytest.mark.parametrize(("size", "unit", "expected"), [
        (4.9, "cm", "pass"), (5, "cm", "fail"), (5.0, "cm", "fail"), (49, "mm", "pass")])
    def test_units(self, size, unit, expected):
        assert status(evaluate(eligible(lesions=lesions(size, unit=unit))), "liver-limited") == expected

    def test_centimetres_are_converted_in_the_facts(self):
        evaluation = evaluate(eligible(lesions=lesions(2.5, 1.2, unit="cm")))
        assert evaluation.facts["liverLesions"]["diametersMm"] == [25.0, 12.0]

    def test_other_units_are_skipped_and_noted(self):
        odd = tumour_size(2, 10, unit="[in_i]", id="inches")
        evaluation = evaluate(eligible(lesions=[odd]))
        assert status(evaluation, "liver-limited") == "unknown"
        assert notes_about(evaluation, "Observation/inches")
        evaluation = evaluate(eligible(lesions=[odd, tumour_size(12, 10)]))
        assert status(evaluation, "liver-limited") == "pass"
        assert "Observation/inches" not in evidence(evaluation, "liver-limited")

    def test_no_measurement_is_unknown(self):
        evaluation = evaluate(eligible(lesions=None))
        assert status(evaluation, "liver-limited") == "unknown"
        assert evaluation.verdict == "needs-review"

    @pytest.mark.parametrize(("days", "expected"), [(90, "pass"), (91, "unknown")])
    def test_newest_measurement_within_90_days(self, days, expected):
        assert status(evaluate(eligible(lesions=lesions(10, on=days))), "liver-limited") == expected

    @pytest.mark.parametrize(("older_days", "expected"), [(40, "fail"), (41, "pass")])
    def test_assessment_is_30_days_back_from_the_newest(self, older_days, expected):
        # Four lesions measured 10 days ago; a fifth one measured 30 (in) or 31 (out) days before that.
        measured = lesions(10, 10, 10, 10, on=10) + lesions(10, on=older_days)
        assert status(evaluate(eligible(lesions=measured)), "liver-limited") == expected

    def test_older_assessment_does_not_decide_when_a_newer_one_exists(self):
        measured = lesions(60, on=80) + lesions(20, on=10)  # 70 days apart: the old 60 mm lesion is out
        evaluation = evaluate(eligible(lesions=measured))
        assert status(evaluation, "liver-limited") == "pass"
        assert evaluation.facts["liverLesions"]["count"] == 1

    def test_one_lesion_per_body_structure_with_its_newest_value(self):
        a, b, c = body_structure(id="a"), body_structure(id="b"), body_structure(id="c")
        measured = []
        for structure in (a, b, c):  # each measured twice: three lesions, not six
            measured += [tumour_size(15, 25, focus=structure, body_site=None),
                         tumour_size(12, 10, focus=structure, body_site=None)]
        evaluation = evaluate(eligible(lesions=[a, b, c] + measured))
        assert status(evaluation, "liver-limited") == "pass"
        assert evaluation.facts["liverLesions"]["count"] == 3
        assert evaluation.facts["liverLesions"]["diametersMm"] == [12.0, 12.0, 12.0]

    def test_a_structure_is_one_lesion_also_when_its_measurements_name_the_liver(self):
        structures = [body_structure(id=f"s{i}") for i in range(3)]
        measured = [tumour_size(size, day, focus=s) for s in structures for size, day in ((14, 25), (12, 10))]
        evaluation = evaluate(eligible(lesions=structures + measured))  # bodySite liver on all six
        assert evaluation.facts["liverLesions"]["count"] == 3
        assert status(evaluation, "liver-limited") == "pass"

    def test_a_structure_located_by_a_code_only_the_observation_names_as_liver(self):
        segment = body_structure(location=cc("1234567", "http://example.org/local-anatomy"), id="seg")
        measured = [tumour_size(size, day, focus=segment) for size, day in ((14, 25), (12, 10), (13, 5))]
        evaluation = evaluate(eligible(lesions=[segment] + measured))
        assert evaluation.facts["liverLesions"]["count"] == 1

    @pytest.mark.parametrize(("old", "new", "expected"), [(60, 30, "pass"), (30, 60, "fail")])
    def test_a_structure_measured_twice_uses_the_newest(self, old, new, expected):
        lesion = body_structure(id="l1")
        measured = [tumour_size(old, 20, focus=lesion, body_site=None),
                    tumour_size(new, 5, focus=lesion, body_site=None)]
        assert status(evaluate(eligible(lesions=[lesion] + measured)), "liver-limited") == expected

    @pytest.mark.parametrize("order", [(30, 55), (55, 30)])
    def test_same_structure_same_day_takes_the_worst(self, order):
        lesion = body_structure(id="l1")
        measured = [tumour_size(size, 5, focus=lesion, body_site=None) for size in order]
        evaluation = evaluate(eligible(lesions=[lesion] + measured))
        assert status(evaluation, "liver-limited") == "fail"

    def test_without_focus_each_observation_is_a_lesion(self):
        measured = [tumour_size(12, day) for day in (25, 10, 25, 10, 25, 10)]  # six Observations within 30 days
        assert status(evaluate(eligible(lesions=measured)), "liver-limited") == "fail"

    def test_focus_to_the_liver_metastasis_condition_locates_it(self):
        measured = [tumour_size(55, 10, focus="Condition/liver-met", body_site=None)]
        assert status(evaluate(eligible(lesions=measured)), "liver-limited") == "fail"

    def test_body_structure_outside_the_liver_does_not_count(self):
        breast = body_structure(location=BREAST, id="breast-tumour")
        measured = [tumour_size(70, 10, focus=breast, body_site=None)]
        assert status(evaluate(eligible(lesions=[breast] + measured)), "liver-limited") == "unknown"

    def test_measurement_with_a_non_liver_body_site_does_not_count(self):
        measured = [tumour_size(70, 10, body_site=LUNG), tumour_size(20, 10)]
        evaluation = evaluate(eligible(lesions=measured))
        assert status(evaluation, "liver-limited") == "pass"
        assert evaluation.facts["liverLesions"]["count"] == 1

    def test_measurement_without_any_location_does_not_count(self):
        assert status(evaluate(eligible(lesions=[tumour_size(70, 10, body_site=None)])), "liver-limited") == "unknown"

    def test_longest_dimension_as_the_observation_code(self):
        measured = [tumour_size(55, 10, as_component=False)]
        assert status(evaluate(eligible(lesions=measured)), "liver-limited") == "fail"

    def test_other_dimension_component_is_not_the_longest(self):
        size = tumour_size(20, 10)
        size["component"].append({"code": cc("33729-5", LOINC),
                                  "valueQuantity": {"value": 80, "unit": "mm", "system": "http://unitsofmeasure.org",
                                                    "code": "mm"}})
        assert status(evaluate(eligible(lesions=[size])), "liver-limited") == "pass"

    @pytest.mark.parametrize(("sizes", "needing"), [((19.9, 12), 0), ((20, 12), 1), ((32, 25, 5), 2)])
    def test_lesions_from_20_mm_are_noted_for_resection(self, sizes, needing):
        evaluation = evaluate(eligible(lesions=lesions(*sizes)))
        assert status(evaluation, "liver-limited") == "pass"
        assert evaluation.facts["liverLesions"]["needResection"] == needing
        reason = result(evaluation, "liver-limited").reason
        assert ("resection" in reason) is (needing > 0)
        if needing:
            assert f"{needing} ≥ 20 mm" in reason

    def test_future_measurements_are_ignored(self):
        measured = lesions(10) + [tumour_size(80, -1, id="tomorrow")]
        evaluation = evaluate(eligible(lesions=measured))
        assert status(evaluation, "liver-limited") == "pass"
        assert notes_about(evaluation, "Observation/tomorrow")

    def test_evidence_lists_the_measurements(self):
        evaluation = evaluate(eligible())
        assert sorted(evidence(evaluation, "liver-limited")) == ["Observation/lesion-a", "Observation/lesion-b"]


# --- ecog --------------------------------------------------------------------------------------

class TestEcog:
    @pytest.mark.parametrize(("grade", "expected"), [
        (0, "pass"), (1, "pass"), (2, "unknown"), (3, "fail"), (4, "fail"), (5, "fail")])
    def test_grades(self, grade, expected):
        evaluation = evaluate(eligible(ecog=ecog(grade, 5, id="e")))
        assert status(evaluation, "ecog") == expected
        assert evidence(evaluation, "ecog") == ["Observation/e"]

    def test_ecog_2_explains_the_registry_inconsistency(self):
        reason = result(evaluate(eligible(ecog=ecog(2, 5))), "ecog").reason
        assert "inconsistent" in reason

    @pytest.mark.parametrize(("answer", "expected"), [
        ("LA9622-7", "pass"), ("LA9623-5", "pass"), ("LA9624-3", "unknown"), ("LA9625-0", "fail"),
        ("LA9626-8", "fail"), ("LA9627-6", "fail")])
    def test_loinc_answer_in_value(self, answer, expected):
        reading = ecog(None, 5, valueCodeableConcept=cc(answer, LOINC))
        assert status(evaluate(eligible(ecog=reading)), "ecog") == expected

    @pytest.mark.parametrize(("answer", "expected"), [("LA9623-5", "pass"), ("LA9625-0", "fail")])
    def test_loinc_answer_in_interpretation(self, answer, expected):
        reading = ecog(None, 5, interpretation=[cc(answer, LOINC)])
        assert status(evaluate(eligible(ecog=reading)), "ecog") == expected

    def test_snomed_ecog_code(self):
        reading = observation("423740007", SNOMED, on=5, valueInteger=3)
        assert status(evaluate(eligible(ecog=reading)), "ecog") == "fail"

    @pytest.mark.parametrize(("score", "grade"), [
        (100, 0), (90, 0), (89, 1), (80, 1), (70, 1), (69, 2), (50, 2), (49, 3), (30, 3), (29, 4), (10, 4),
        (9, 5), (0, 5)])
    def test_karnofsky_conversion(self, score, grade):
        assert karnofsky_to_ecog(score) == grade
        evaluation = evaluate(eligible(ecog=karnofsky(score, 5)))
        expected = "pass" if grade <= 1 else "unknown" if grade == 2 else "fail"
        assert status(evaluation, "ecog") == expected
        assert f"ECOG {grade}" in result(evaluation, "ecog").reason

    @pytest.mark.parametrize(("days", "expected"), [(0, "pass"), (90, "pass"), (91, "unknown")])
    def test_window_is_90_days_inclusive(self, days, expected):
        assert status(evaluate(eligible(ecog=ecog(1, days))), "ecog") == expected

    def test_none_is_unknown(self):
        evaluation = evaluate(eligible(ecog=None))
        assert status(evaluation, "ecog") == "unknown"
        assert evaluation.verdict == "needs-review"

    def test_only_old_ones_is_unknown(self):
        evaluation = evaluate(eligible(ecog=[ecog(4, 200, id="old")]))
        assert status(evaluation, "ecog") == "unknown"
        assert "Observation/old" in evidence(evaluation, "ecog")

    @pytest.mark.parametrize(("older", "newer", "expected"), [(3, 1, "pass"), (1, 3, "fail")])
    def test_the_newest_decides(self, older, newer, expected):
        assert status(evaluate(eligible(ecog=[ecog(older, 40), ecog(newer, 5)])), "ecog") == expected

    @pytest.mark.parametrize("grades", [(1, 3), (3, 1)])
    def test_ties_on_the_same_date_take_the_worst(self, grades):
        readings = [ecog(g, 5) for g in grades]
        assert status(evaluate(eligible(ecog=readings)), "ecog") == "fail"

    def test_ecog_and_karnofsky_on_the_same_day_take_the_worst(self):
        readings = [ecog(1, 5), karnofsky(40, 5)]  # Karnofsky 40 = ECOG 3
        assert status(evaluate(eligible(ecog=readings)), "ecog") == "fail"

    def test_same_day_datetimes_tie(self):
        readings = [ecog(3, when(5) + "T08:00:00Z"), ecog(1, when(5) + "T17:30:00+02:00")]
        assert status(evaluate(eligible(ecog=readings)), "ecog") == "fail"

    def test_future_readings_are_ignored(self):
        evaluation = evaluate(eligible(ecog=[ecog(1, 5), ecog(4, -3, id="future")]))
        assert status(evaluation, "ecog") == "pass"
        assert notes_about(evaluation, "Observation/future")

    @pytest.mark.parametrize(("partial", "expected"), [
        # AS_OF 2026-06-15: "2026-03" = 2026-03-01 = 106 days → outside; "2026-04" = 2026-04-01 = 75 → inside.
        ("2026-03", "unknown"), ("2026-04", "pass"), ("2026", "unknown")])
    def test_partial_dates_mean_their_first_day(self, partial, expected):
        assert status(evaluate(eligible(ecog=ecog(1, partial))), "ecog") == expected

    def test_effective_period_start_is_the_date(self):
        reading = ecog(1, 5, effectiveDateTime=None, effectivePeriod={"start": when(30), "end": when(2)})
        assert status(evaluate(eligible(ecog=reading)), "ecog") == "pass"


# --- resectable-primary ------------------------------------------------------------------------

AJCC = "http://cancerstaging.org"
T4 = cc("cT4", AJCC, "cT4")
T3 = cc("cT3", AJCC, "cT3")
WHIPPLE = ("30549001", "Pancreaticoduodenectomy (Whipple)")


class TestResectablePrimary:
    def test_unknown_by_default(self):
        evaluation = evaluate(eligible())
        assert status(evaluation, "resectable-primary") == "unknown"
        assert evaluation.verdict == "likely-eligible"

    def test_clinical_t4_fails(self):
        evaluation = evaluate(with_(observation("21905-5", id="t", valueCodeableConcept=T4)))
        assert status(evaluation, "resectable-primary") == "fail"
        assert evidence(evaluation, "resectable-primary") == ["Observation/t"]

    def test_t3_stays_unknown(self):
        assert status(evaluate(with_(observation("21905-5", valueCodeableConcept=T3))), "resectable-primary") == "unknown"

    def test_arterial_involvement_fails(self):
        finding = observation("18782-3", valueCodeableConcept=cc(None, text="Tumour encases the SMA: arterial "
                                                                          "involvement, locally advanced"))
        assert status(evaluate(with_(finding)), "resectable-primary") == "fail"

    @pytest.mark.parametrize(("code", "display"), [
        WHIPPLE, ("45420004", "Distal pancreatectomy"), ("82661006", "Total pancreatectomy"),
        (None, "Pylorus-preserving pancreatoduodenectomy")])
    def test_resected_primary_passes_and_wins_over_staging(self, code, display):
        resection = procedure(code, display, 400, category=SURGICAL, id="resection")
        evaluation = evaluate(with_(resection, observation("21905-5", on=500, valueCodeableConcept=T4)))
        assert status(evaluation, "resectable-primary") == "pass"
        assert evidence(evaluation, "resectable-primary") == ["Procedure/resection"]

    def test_a_resection_not_completed_does_not_count(self):
        resection = procedure(*WHIPPLE, 400, status="stopped")
        assert status(evaluate(with_(resection)), "resectable-primary") == "unknown"


# --- progression -------------------------------------------------------------------------------

class TestProgression:
    @pytest.mark.parametrize(("value", "expected"), [
        ("stable", "pass"), ("improved", "pass"), ("remission", "pass"), ("partial-remission", "pass"),
        ("progression", "fail"), ("undetermined", "unknown")])
    def test_status_values(self, value, expected):
        evaluation = evaluate(eligible(status=disease_status(value, 10, id="s")))
        assert status(evaluation, "progression") == expected
        assert "Observation/s" in evidence(evaluation, "progression")
        assert "MedicationStatement/chemo" in evidence(evaluation, "progression")

    def test_older_loinc_code_88040_1(self):
        reading = disease_status("progression", 10, code="88040-1")
        assert status(evaluate(eligible(status=reading)), "progression") == "fail"

    def test_progression_by_display_text_only(self):
        reading = observation("97509-4", on=10, valueCodeableConcept=cc(None, text="Progressive disease"))
        assert status(evaluate(eligible(status=reading)), "progression") == "fail"

    @pytest.mark.parametrize(("text", "expected"), [
        ("Stable disease, no progression", "pass"), ("Not worse, stable", "pass"),
        ("No evidence of progression", "unknown"), ("Non-progressive disease", "unknown"),
        ("Not progressing", "unknown"), ("Worsening", "fail")])
    def test_negated_progression_in_text_is_not_a_progression(self, text, expected):
        reading = observation("97509-4", on=10, valueCodeableConcept=cc(None, text=text))
        assert status(evaluate(eligible(status=reading)), "progression") == expected

    def test_no_chemotherapy_is_unknown(self):
        evaluation = evaluate(eligible(chemo=None, status=disease_status("progression", 10)))
        assert status(evaluation, "progression") == "unknown"
        assert evaluation.verdict == "needs-review"

    def test_no_status_since_chemotherapy_is_unknown(self):
        assert status(evaluate(eligible(status=None)), "progression") == "unknown"

    @pytest.mark.parametrize(("status_day", "expected"), [(100, "fail"), (101, "unknown")])
    def test_status_on_or_after_the_start(self, status_day, expected):
        resources = eligible(chemo=med_statement(GEMCITABINE, 100), status=disease_status("progression", status_day))
        assert status(evaluate(resources), "progression") == expected

    # Chemotherapy starts 100 days ago in every case below; a progression 100 days ago counts, 101 does not.
    @pytest.mark.parametrize("chemo", [
        pytest.param(med_statement(GEMCITABINE, 100), id="statement-dateTime"),
        pytest.param(med_statement(GEMCITABINE, 100, 20, status="completed"), id="statement-period"),
        pytest.param(med_request(GEMCITABINE, 130, bounds_start=100), id="request-boundsPeriod-over-authoredOn"),
        pytest.param(med_request(GEMCITABINE, 100), id="request-authoredOn"),
        pytest.param(med_admin(GEMCITABINE, 100), id="administration-dateTime"),
        pytest.param(med_admin(GEMCITABINE, None, effectivePeriod={"start": when(100), "end": when(99)}),
                     id="administration-period"),
        pytest.param([med_admin(NAB_PACLITAXEL, 60), med_statement(GEMCITABINE, 100)], id="earliest-of-several"),
    ])
    def test_chemotherapy_start_by_resource_type(self, chemo):
        at_start = eligible(chemo=chemo, status=disease_status("progression", 100))
        before = eligible(chemo=chemo, status=disease_status("progression", 101))
        assert status(evaluate(at_start), "progression") == "fail"
        assert status(evaluate(before), "progression") == "unknown"

    @pytest.mark.parametrize("drug", [
        cc("1720960", RXNORM, "gemcitabine 1000 MG Injection"),
        cc("L01BC05", ATC, "gemcitabine"),
        cc("L01XA03", ATC),
        cc(None, text="FOLFIRINOX: oxaliplatin"),
        cc("583214", RXNORM, "paclitaxel protein-bound particles for injectable suspension"),
    ])
    def test_anticancer_drug_recognition(self, drug):
        resources = eligible(chemo=med_statement(drug, 100), status=disease_status("progression", 50))
        assert status(evaluate(resources), "progression") == "fail"

    def test_other_medicines_are_not_chemotherapy(self):
        metformin = med_statement(cc("6809", RXNORM, "metformin"), 100)
        assert status(evaluate(eligible(chemo=metformin)), "progression") == "unknown"

    @pytest.mark.parametrize(("older", "newer", "expected"), [
        ("progression", "stable", "pass"), ("stable", "progression", "fail")])
    def test_the_newest_status_decides(self, older, newer, expected):
        readings = [disease_status(older, 40), disease_status(newer, 10)]
        assert status(evaluate(eligible(status=readings)), "progression") == expected

    @pytest.mark.parametrize("values", [("stable", "progression"), ("progression", "improved")])
    def test_ties_take_the_worst(self, values):
        readings = [disease_status(v, 10) for v in values]
        assert status(evaluate(eligible(status=readings)), "progression") == "fail"

    def test_future_status_is_ignored(self):
        readings = [disease_status("stable", 10), disease_status("progression", -5)]
        assert status(evaluate(eligible(status=readings)), "progression") == "pass"

    def test_future_chemotherapy_is_ignored(self):
        resources = eligible(chemo=med_request(GEMCITABINE, -10), status=disease_status("progression", 5))
        assert status(evaluate(resources), "progression") == "unknown"


# --- extrahepatic-metastases -------------------------------------------------------------------

class TestExtrahepatic:
    @pytest.mark.parametrize(("code", "system", "body_site"), [
        ("C78.0", ICD10, None), ("C78.01", ICD10, None), ("C78.6", ICD10, None), ("C78.89", ICD10, None),
        ("C79.31", ICD10, None), ("C79.51", ICD10, None), ("C77.0", ICD10, None), ("C77.3", ICD10, None),
        ("94225005", SNOMED, None), ("94391008", SNOMED, None),
        ("128462008", SNOMED, [LUNG]),
    ])
    def test_distant_metastases_fail(self, code, system, body_site):
        met = condition(code, system, body_site=body_site, id="met")
        evaluation = evaluate(with_(met))
        assert status(evaluation, "extrahepatic-metastases") == "fail"
        assert evidence(evaluation, "extrahepatic-metastases") == ["Condition/met"]
        assert status(evaluation, "liver-metastases") == "pass"  # the C78.7 of the baseline

    def test_c77_2_intra_abdominal_nodes_are_not_distant(self):
        nodes = condition("C77.2", display="Secondary malignant neoplasm of intra-abdominal lymph nodes")
        evaluation = evaluate(with_(nodes))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert status(evaluation, "other-malignancy") == "pass"

    def test_inactive_extrahepatic_metastasis_does_not_count(self):
        met = condition("C78.01", clinical="resolved")
        assert status(evaluate(with_(met)), "extrahepatic-metastases") == "pass"

    def test_secondary_cancer_profile_with_a_non_liver_site_fails(self):
        met = condition(None, text="Metastatic deposit", profile="mcode-secondary-cancer-condition",
                        body_site=[cc("76752008", SNOMED, "Breast structure")])
        assert status(evaluate(with_(met)), "extrahepatic-metastases") == "fail"

    def test_generic_metastasis_sited_in_liver_and_lung_is_both(self):
        met = condition("128462008", SNOMED, body_site=[LIVER, LUNG], id="both")
        evaluation = evaluate(eligible(liver_met=met))
        assert status(evaluation, "liver-metastases") == "pass"
        assert status(evaluation, "extrahepatic-metastases") == "fail"

    def test_generic_metastasis_without_site_is_noted_not_failed(self):
        evaluation = evaluate(with_(condition("128462008", SNOMED, id="where")))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert notes_about(evaluation, "Condition/where")

    @pytest.mark.parametrize(("study", "expected"), [
        (imaging_study("CT", 60), "pass"),
        (imaging_study("CT", 61), "unknown"),
        (imaging_study("MR", 0), "pass"),
        (imaging_study("PT", 30), "pass"),
        (imaging_study(None, 30, series_modality="MR"), "pass"),
        (imaging_study("US", 30), "unknown"),
        (imaging_study(None, 30, series_modality="US"), "unknown"),
        (imaging_study("CT", -2), "unknown"),
        (imaging_study("CT", None), "unknown"),
    ])
    def test_recent_cross_sectional_imaging(self, study, expected):
        evaluation = evaluate(eligible(imaging=study))
        assert status(evaluation, "extrahepatic-metastases") == expected
        if expected == "pass":
            assert evidence(evaluation, "extrahepatic-metastases") == [ref(study)]
        else:
            assert evaluation.verdict == "needs-review"

    def test_no_imaging_is_unknown_with_the_reason(self):
        evaluation = evaluate(eligible(imaging=None))
        assert status(evaluation, "extrahepatic-metastases") == "unknown"
        assert "not ruled out" in result(evaluation, "extrahepatic-metastases").reason

    def test_a_metastasis_fails_even_with_recent_imaging(self):
        evaluation = evaluate(with_(condition("C78.01"), imaging_study("CT", 2)))
        assert status(evaluation, "extrahepatic-metastases") == "fail"


# --- other-malignancy --------------------------------------------------------------------------

class TestOtherMalignancy:
    @pytest.mark.parametrize(("code", "system"), [
        ("C50.911", ICD10), ("C18.7", ICD10), ("C61", ICD10), ("C7A.012", ICD10), ("C91.10", ICD10),
        ("254637007", SNOMED), ("353431000119107", SNOMED), ("92814006", SNOMED)])
    def test_active_other_cancer_fails(self, code, system):
        cancer = condition(code, system, onset=3000, id="other")
        evaluation = evaluate(with_(cancer))
        assert status(evaluation, "other-malignancy") == "fail"
        assert evidence(evaluation, "other-malignancy") == ["Condition/other"]
        assert status(evaluation, "pdac-diagnosis") == "pass"

    @pytest.mark.parametrize(("onset", "expected"), [(730, "fail"), (731, "pass"), (100, "fail")])
    def test_inactive_within_730_days(self, onset, expected):
        cancer = condition("C50.911", clinical="remission", onset=onset, id="old")
        evaluation = evaluate(with_(cancer))
        assert status(evaluation, "other-malignancy") == expected
        assert evidence(evaluation, "other-malignancy") == ["Condition/old"]

    def test_recorded_date_when_there_is_no_onset(self):
        recent = condition("C50.911", clinical="resolved", onset=None, recorded=300)
        old = condition("C50.911", clinical="resolved", onset=None, recorded=900)
        assert status(evaluate(with_(recent)), "other-malignancy") == "fail"
        assert status(evaluate(with_(old)), "other-malignancy") == "pass"

    def test_onset_wins_over_recorded_date(self):
        cancer = condition("C50.911", clinical="resolved", onset=2000, recorded=10)
        assert status(evaluate(with_(cancer)), "other-malignancy") == "pass"

    @pytest.mark.parametrize(("code", "display"), [
        ("C44.91", "Basal cell carcinoma of skin, unspecified"),
        ("C44.1121", "Basal cell carcinoma of skin of right upper eyelid"),
        ("C77.2", "Secondary malignant neoplasm of intra-abdominal lymph nodes"),
        ("C78.7", "Secondary malignant neoplasm of liver"),
        ("C79.9", "Secondary malignant neoplasm of unspecified site"),
        ("C80.1", "Malignant (primary) neoplasm, unspecified"),
        ("C7B.02", "Secondary carcinoid tumors of liver"),
        ("C25.1", "Malignant neoplasm of body of pancreas"),
    ])
    def test_codes_that_do_not_count(self, code, display):
        cancer = condition(code, display=display, onset=100)
        assert status(evaluate(with_(cancer)), "other-malignancy") == "pass"

    def test_mcode_primary_cancer_profile_on_a_non_pancreatic_code(self):
        cancer = condition("363349007", SNOMED, profile="mcode-primary-cancer-condition", onset=1000)
        assert status(evaluate(with_(cancer)), "other-malignancy") == "fail"

    def test_mcode_primary_cancer_profile_on_the_pdac_is_not_another_cancer(self):
        pdac = condition("363418001", SNOMED, display="Malignant tumor of pancreas",
                         profile="mcode-primary-cancer-condition")
        evaluation = evaluate(eligible(pdac=pdac))
        assert status(evaluation, "other-malignancy") == "pass"
        assert status(evaluation, "pdac-diagnosis") == "pass"

    def test_future_diagnosis_is_ignored(self):
        cancer = condition("C50.911", onset=-30, id="later")
        evaluation = evaluate(with_(cancer))
        assert status(evaluation, "other-malignancy") == "pass"
        assert notes_about(evaluation, "Condition/later")


# --- recent-major-surgery ----------------------------------------------------------------------

class TestRecentMajorSurgery:
    @pytest.mark.parametrize(("days", "expected"), [(0, "fail"), (28, "fail"), (29, "pass")])
    def test_surgical_category_within_28_days(self, days, expected):
        surgery = procedure("71838004", "Gastrectomy", days, category=SURGICAL, id="op")
        evaluation = evaluate(with_(surgery))
        assert status(evaluation, "recent-major-surgery") == expected
        if expected == "fail":
            assert evidence(evaluation, "recent-major-surgery") == ["Procedure/op"]

    def test_category_as_a_list(self):
        surgery = procedure("12345", "Sigmoid colectomy", 5, category=[SURGICAL])
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == "fail"

    def test_surgical_category_alone_does_not_make_it_major(self):
        # Revision 2: Epic puts "Surgical procedure" on stents and ports; an unnamed operation is not major.
        surgery = procedure("12345", "Some operation", 5, category=[SURGICAL])
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == "pass"

    @pytest.mark.parametrize(("code", "display"), [
        ("23968004", "Colectomy"), ("18286008", "Partial hepatectomy"), ("86481000", "Laparotomy")])
    def test_curated_major_surgery_codes(self, code, display):
        assert status(evaluate(with_(procedure(code, display, 5))), "recent-major-surgery") == "fail"

    @pytest.mark.parametrize("display", [
        "Biopsy of liver", "Endoscopic ultrasound guided fine needle aspiration of pancreas", "EUS-FNB of pancreas",
        "Insertion of biliary stent", "Port insertion", "Insertion of portacath", "Insertion of drain",
        "ERCP with stent placement"])
    def test_diagnostic_and_minor_procedures_do_not_count(self, display):
        minor = procedure("71388002", display, 3, category=SURGICAL)
        assert status(evaluate(with_(minor)), "recent-major-surgery") == "pass"

    @pytest.mark.parametrize("display", [
        "Right hepatectomy with portal vein resection", "Portocaval shunt", "Resection of portion of liver"])
    def test_words_beginning_with_port_are_not_a_port(self, display):
        # Text only: 18286008 (used here before) is a cardiac catheter ablation, not a hepatectomy.
        surgery = procedure(None, display, 5, category=SURGICAL)
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == "fail"

    @pytest.mark.parametrize(("code", "display"), [WHIPPLE, ("45420004", "Distal pancreatectomy")])
    def test_pancreatic_resection_never_counts_here(self, code, display):
        evaluation = evaluate(with_(procedure(code, display, 5, category=SURGICAL)))
        assert status(evaluation, "recent-major-surgery") == "pass"
        assert status(evaluation, "resectable-primary") == "pass"

    @pytest.mark.parametrize("proc_status", ["in-progress", "stopped", "preparation", "on-hold", "unknown"])
    def test_only_completed_procedures_count(self, proc_status):
        surgery = procedure("23968004", "Colectomy", 5, category=SURGICAL, status=proc_status)
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == "pass"

    @pytest.mark.parametrize(("start", "end", "expected"), [(40, 27, "fail"), (40, 29, "pass"), (20, None, "fail")])
    def test_performed_period(self, start, end, expected):
        period = {"start": when(start)} | ({"end": when(end)} if end is not None else {})
        surgery = procedure("23968004", "Colectomy", None, performedPeriod=period)
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == expected

    def test_future_surgery_is_ignored(self):
        surgery = procedure("23968004", "Colectomy", -3)
        assert status(evaluate(with_(surgery)), "recent-major-surgery") == "pass"


# --- active-infection and cardiac-disease ------------------------------------------------------

class TestActiveInfection:
    @pytest.mark.parametrize(("code", "system"), [
        ("A41.9", ICD10), ("A04.72", ICD10), ("B37.81", ICD10), ("B96.20", ICD10), ("J18.9", ICD10),
        ("K65.0", ICD10), ("K75.0", ICD10), ("K81.0", ICD10), ("K83.09", ICD10), ("N10", ICD10),
        ("N39.0", ICD10), ("R65.21", ICD10), ("T81.40XA", ICD10), ("91302008", SNOMED), ("82403002", SNOMED)])
    def test_bacterial_or_fungal_infection_is_unknown(self, code, system):
        infection = condition(code, system, id="inf")
        evaluation = evaluate(with_(infection))
        assert status(evaluation, "active-infection") == "unknown"
        assert evidence(evaluation, "active-infection") == ["Condition/inf"]
        assert "controlled" in result(evaluation, "active-infection").reason
        assert evaluation.verdict == "needs-review"

    @pytest.mark.parametrize(("code", "display"), [
        ("B18.2", "Chronic viral hepatitis C"), ("K83.01", "Primary sclerosing cholangitis"),
        ("B34.9", "Viral infection, unspecified"), ("U07.1", "COVID-19"), ("B00.9", "Herpesviral infection")])
    def test_viral_infections_and_psc_pass(self, code, display):
        assert status(evaluate(with_(condition(code, display=display))), "active-infection") == "pass"

    def test_resolved_infection_passes(self):
        infection = condition("A41.9", clinical="resolved")
        assert status(evaluate(with_(infection)), "active-infection") == "pass"

    def test_infection_by_text_only(self):
        infection = condition(None, text="Acute ascending cholangitis")
        assert status(evaluate(with_(infection)), "active-infection") == "unknown"


class TestCardiacDisease:
    @pytest.mark.parametrize("code", ["I20.9", "I20.0", "I50.32", "I50.9", "I47.1", "I48.91", "I49.9"])
    def test_angina_heart_failure_arrhythmia_is_unknown(self, code):
        evaluation = evaluate(with_(condition(code, id="heart")))
        assert status(evaluation, "cardiac-disease") == "unknown"
        assert evidence(evaluation, "cardiac-disease") == ["Condition/heart"]
        assert evaluation.verdict == "needs-review"

    @pytest.mark.parametrize("code", ["I10", "I21.9", "I25.10", "I35.0"])
    def test_other_heart_conditions_pass(self, code):
        assert status(evaluate(with_(condition(code))), "cardiac-disease") == "pass"

    def test_inactive_cardiac_disease_passes(self):
        assert status(evaluate(with_(condition("I48.91", clinical="resolved"))), "cardiac-disease") == "pass"

    @pytest.mark.parametrize("display", ["Benign hypertensive heart disease without congestive heart failure (disorder)",
                                         "Hypertensive heart disease without heart failure"])
    def test_hypertensive_heart_disease_without_heart_failure_passes(self, display):
        assert status(evaluate(with_(condition("77970009", SNOMED, display))), "cardiac-disease") == "pass"

    def test_snomed_heart_failure(self):
        assert status(evaluate(with_(condition("84114007", SNOMED))), "cardiac-disease") == "unknown"


# --- immunosuppressants ------------------------------------------------------------------------

class TestImmunosuppressants:
    @pytest.mark.parametrize("rtype_builder", [med_statement, med_request])
    @pytest.mark.parametrize("med_status", ["active", "intended", "on-hold"])
    def test_current_status(self, rtype_builder, med_status):
        use = rtype_builder(TACROLIMUS, 400, status=med_status, id="tac")
        evaluation = evaluate(with_(use))
        assert status(evaluation, "immunosuppressants") == "fail"
        assert evidence(evaluation, "immunosuppressants") == [ref(use)]

    @pytest.mark.parametrize("med_status", ["completed", "stopped"])
    def test_finished_long_ago_passes(self, med_status):
        use = med_statement(TACROLIMUS, 400, 200, status=med_status, id="old")
        evaluation = evaluate(with_(use))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert evidence(evaluation, "immunosuppressants") == ["MedicationStatement/old"]

    def test_effective_period_covering_the_as_of_date(self):
        use = med_statement(TACROLIMUS, 400, -30, status="completed")
        assert status(evaluate(with_(use)), "immunosuppressants") == "fail"

    def test_bounds_period_covering_the_as_of_date(self):
        use = med_request(TACROLIMUS, 400, bounds_start=400, bounds_end=-30, status="completed")
        assert status(evaluate(with_(use)), "immunosuppressants") == "fail"

    @pytest.mark.parametrize(("days", "expected"), [(30, "fail"), (31, "pass")])
    @pytest.mark.parametrize("make", [
        pytest.param(lambda d: med_statement(TACROLIMUS, 300, d, status="completed"), id="statement-end"),
        pytest.param(lambda d: med_admin(TACROLIMUS, d), id="administration"),
        pytest.param(lambda d: med_request(TACROLIMUS, d, status="completed"), id="request-authoredOn"),
        pytest.param(lambda d: med_request(TACROLIMUS, 300, bounds_start=300, bounds_end=d, status="completed"),
                     id="request-bounds-end"),
    ])
    def test_within_30_days(self, make, days, expected):
        assert status(evaluate(with_(make(days))), "immunosuppressants") == expected

    @pytest.mark.parametrize("drug", [
        cc("42316", RXNORM, "tacrolimus"), cc("3008", RXNORM), cc("68149", RXNORM), cc("7145", RXNORM),
        cc("1256", RXNORM), cc("35302", RXNORM), cc("141704", RXNORM),
        cc("L04AD02", ATC, "tacrolimus"), cc("L04AD02", ATC), cc("L04AA06", ATC),
        cc("999999", "http://example.org/local-drugs", "Prograf (tacrolimus) 1 mg capsule"),
        cc(None, text="Mycophenolate mofetil 500 mg"),
    ])
    def test_immunosuppressant_recognition(self, drug):
        assert status(evaluate(with_(med_statement(drug, 60))), "immunosuppressants") == "fail"

    def test_medication_reference_to_a_contained_medication(self):
        use = med_statement(None, 60, medicationCodeableConcept=None, medicationReference={"reference": "#m"},
                            contained=[{"resourceType": "Medication", "id": "m", "code": TACROLIMUS}])
        assert status(evaluate(with_(use)), "immunosuppressants") == "fail"

    def test_medication_reference_to_a_bundled_medication_ingredient(self):
        medication = {"resourceType": "Medication", "id": "med1",
                      "ingredient": [{"itemCodeableConcept": cc("1256", RXNORM)}]}
        use = med_request(None, 5, medicationCodeableConcept=None, medicationReference={"reference": "Medication/med1"})
        assert status(evaluate(with_(medication, use)), "immunosuppressants") == "fail"

    @pytest.mark.parametrize("steroid", [DEXAMETHASONE, cc("8640", RXNORM, "predniSONE"), cc("H02AB02", ATC),
                                         cc(None, text="hydrocortisone 20 mg")])
    def test_corticosteroids_are_allowed(self, steroid):
        use = med_statement(steroid, 10, id="steroid")
        evaluation = evaluate(with_(use))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert "corticosteroid" in result(evaluation, "immunosuppressants").reason
        assert "MedicationStatement/steroid" in evidence(evaluation, "immunosuppressants")

    def test_none_passes(self):
        assert status(evaluate(eligible()), "immunosuppressants") == "pass"


# --- neuropathy --------------------------------------------------------------------------------

CTCAE_EXT = "http://hl7.org/fhir/us/ctcae/StructureDefinition/ctcae-grade"
AE_GRADE_EXT = "http://hl7.org/fhir/uv/ae-research-ig/StructureDefinition/ae-grade"
MILD, MODERATE, SEVERE = (cc("255604002", SNOMED, "Mild"), cc("6736007", SNOMED, "Moderate"),
                          cc("24484000", SNOMED, "Severe"))


def adverse_event(event: dict, *, severity: dict | None = None, grade: int | None = None, outcome: str | None = None,
                  id: str = "ae1") -> dict:
    resource = {"resourceType": "AdverseEvent", "id": id, "actuality": "actual", "subject": {"reference": f"Patient/{PID}"},
                "event": event, "date": when(30)}
    if severity is not None:
        resource["severity"] = severity
    if grade is not None:
        resource["extension"] = [{"url": AE_GRADE_EXT, "valueCodeableConcept": cc(str(grade),
                                  "http://hl7.org/fhir/us/ctcae/CodeSystem/ctcae-grade-code-system")}]
    if outcome is not None:
        resource["outcome"] = cc(outcome, "http://terminology.hl7.org/CodeSystem/adverse-event-outcome")
    return resource


class TestNeuropathy:
    @pytest.mark.parametrize(("grade", "expected"), [(0, "pass"), (1, "pass"), (2, "fail"), (3, "fail"), (4, "fail")])
    def test_ctcae_grade_extension(self, grade, expected):
        evaluation = evaluate(with_(condition("G62.0", grade=grade, id="neuro")))
        assert status(evaluation, "neuropathy") == expected
        assert evidence(evaluation, "neuropathy") == ["Condition/neuro"]

    @pytest.mark.parametrize(("grade", "expected"), [(1, "pass"), (2, "fail")])
    def test_grade_as_a_coded_value(self, grade, expected):
        neuro = condition("G62.0", extension=[{"url": AE_GRADE_EXT, "valueCodeableConcept": cc(
            str(grade), "http://hl7.org/fhir/us/ctcae/CodeSystem/ctcae-grade-code-system")}])
        assert status(evaluate(with_(neuro)), "neuropathy") == expected

    @pytest.mark.parametrize(("severity", "expected"), [
        (MILD, "pass"), (MODERATE, "fail"), (cc("1255665007", SNOMED, "Moderate"), "fail"), (SEVERE, "fail")])
    def test_severity_codes(self, severity, expected):
        assert status(evaluate(with_(condition("G62.0", severity=severity))), "neuropathy") == expected

    def test_the_worst_of_several(self):
        both = [condition("G62.0", grade=1), condition("302226006", SNOMED, severity=MODERATE)]
        assert status(evaluate(with_(*both)), "neuropathy") == "fail"

    def test_all_mild_passes(self):
        both = [condition("G62.0", grade=1), condition("302226006", SNOMED, severity=MILD)]
        assert status(evaluate(with_(*both)), "neuropathy") == "pass"

    @pytest.mark.parametrize(("code", "system"), [("G62.0", ICD10), ("G60.9", ICD10), ("G64", ICD10),
                                                  ("302226006", SNOMED), ("10034620", MEDDRA)])
    def test_ungraded_is_unknown(self, code, system):
        evaluation = evaluate(with_(condition(code, system, id="neuro")))
        assert status(evaluation, "neuropathy") == "unknown"
        assert evidence(evaluation, "neuropathy") == ["Condition/neuro"]
        assert evaluation.verdict == "needs-review"

    def test_graded_mild_beside_an_ungraded_one_is_unknown(self):
        both = [condition("G62.0", grade=1), condition("G62.9")]
        assert status(evaluate(with_(*both)), "neuropathy") == "unknown"

    def test_a_failing_grade_beside_an_ungraded_one_fails(self):
        both = [condition("G62.0", grade=3), condition("G62.9")]
        assert status(evaluate(with_(*both)), "neuropathy") == "fail"

    def test_resolved_neuropathy_passes(self):
        assert status(evaluate(with_(condition("G62.0", grade=3, clinical="resolved"))), "neuropathy") == "pass"

    def test_adverse_event_with_severity(self):
        event = cc("10034620", MEDDRA, "Peripheral sensory neuropathy")
        moderate = cc("moderate", "http://terminology.hl7.org/CodeSystem/adverse-event-severity")
        evaluation = evaluate(with_(adverse_event(event, severity=moderate)))
        assert status(evaluation, "neuropathy") == "fail"
        assert evidence(evaluation, "neuropathy") == ["AdverseEvent/ae1"]

    def test_adverse_event_with_grade_extension(self):
        event = cc("10034620", MEDDRA, "Peripheral sensory neuropathy")
        assert status(evaluate(with_(adverse_event(event, grade=1))), "neuropathy") == "pass"
        assert status(evaluate(with_(adverse_event(event, grade=3))), "neuropathy") == "fail"

    def test_resolved_adverse_event_passes(self):
        event = cc("10034620", MEDDRA, "Peripheral sensory neuropathy")
        assert status(evaluate(with_(adverse_event(event, grade=3, outcome="resolved"))), "neuropathy") == "pass"

    def test_optic_neuropathy_is_not_peripheral(self):
        optic = condition(None, text="Ischaemic optic neuropathy")
        assert status(evaluate(with_(optic)), "neuropathy") == "pass"


# --- pregnancy ---------------------------------------------------------------------------------

PREGNANT, NOT_PREGNANT = cc("77386006", SNOMED, "Pregnant"), cc("60001007", SNOMED, "Not pregnant")


def pregnancy_status(value: dict, on: int | str, **extra) -> dict:
    return observation("82810-3", on=on, valueCodeableConcept=value, **extra)


def breastfeeding(value: dict, on: int | str = 10, **extra) -> dict:
    return observation("63895-7", on=on, valueCodeableConcept=value, **extra)


class TestPregnancy:
    @pytest.mark.parametrize(("days", "expected"), [(0, "fail"), (270, "fail"), (271, "pass")])
    def test_pregnant_status_within_270_days(self, days, expected):
        evaluation = evaluate(with_(pregnancy_status(PREGNANT, days, id="preg")))
        assert status(evaluation, "pregnancy") == expected
        if expected == "fail":
            assert evidence(evaluation, "pregnancy") == ["Observation/preg"]

    def test_a_newer_not_pregnant_status_wins(self):
        readings = [pregnancy_status(PREGNANT, 100), pregnancy_status(NOT_PREGNANT, 5)]
        assert status(evaluate(with_(*readings)), "pregnancy") == "pass"

    @pytest.mark.parametrize("order", [(PREGNANT, NOT_PREGNANT), (NOT_PREGNANT, PREGNANT)])
    def test_tie_takes_pregnant(self, order):
        readings = [pregnancy_status(value, 5) for value in order]
        assert status(evaluate(with_(*readings)), "pregnancy") == "fail"

    @pytest.mark.parametrize("code", ["Z34.00", "Z34.90", "Z33.1", "O09.90", "O26.891", "O99.89", "O9A.111"])
    def test_pregnancy_condition(self, code):
        evaluation = evaluate(with_(condition(code, onset=40, id="preg")))
        assert status(evaluation, "pregnancy") == "fail"
        assert evidence(evaluation, "pregnancy") == ["Condition/preg"]

    def test_resolved_pregnancy_condition_passes(self):
        assert status(evaluate(with_(condition("Z34.00", clinical="resolved"))), "pregnancy") == "pass"

    def test_breastfeeding_fails(self):
        evaluation = evaluate(with_(breastfeeding(cc("169750002", SNOMED, "Mother currently breast-feeding"))))
        assert status(evaluation, "pregnancy") == "fail"

    def test_not_breastfeeding_passes(self):
        evaluation = evaluate(with_(breastfeeding(cc("169741004", SNOMED, "Breast fed"))))
        assert status(evaluation, "pregnancy") == "pass"

    def test_a_newer_not_breastfeeding_wins(self):
        readings = [breastfeeding(cc("169750002", SNOMED), 60), breastfeeding(cc("169741004", SNOMED), 5)]
        assert status(evaluate(with_(*readings)), "pregnancy") == "pass"

    def test_male_patients_always_pass(self):
        resources = eligible(patient=patient(gender="male")) + [pregnancy_status(PREGNANT, 5),
                                                                condition("Z34.00", onset=40)]
        assert status(evaluate(resources), "pregnancy") == "pass"

    def test_nothing_recorded_passes(self):
        assert status(evaluate(eligible(patient=patient(gender=None))), "pregnancy") == "pass"

    def test_future_pregnancy_status_is_ignored(self):
        assert status(evaluate(with_(pregnancy_status(PREGNANT, -10))), "pregnancy") == "pass"


# --- never evidence ----------------------------------------------------------------------------

class TestNeverEvidence:
    @pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
    def test_refuted_or_erroneous_conditions(self, verification):
        resources = eligible(pdac=condition("C25.0", verification=verification, id="pdac")) + [
            condition("C50.911", verification=verification, id="breast")]
        evaluation = evaluate(resources)
        assert status(evaluation, "pdac-diagnosis") == "fail"
        assert status(evaluation, "other-malignancy") == "pass"
        assert notes_about(evaluation, "Condition/pdac") and notes_about(evaluation, "Condition/breast")

    @pytest.mark.parametrize("bad_status", ["entered-in-error", "cancelled"])
    def test_observations_with_a_never_evidence_status(self, bad_status):
        evaluation = evaluate(eligible(ecog=[ecog(1, 10), ecog(4, 2, status=bad_status, id="bad")]))
        assert status(evaluation, "ecog") == "pass"
        assert notes_about(evaluation, "Observation/bad")

    @pytest.mark.parametrize("bad_status", ["entered-in-error", "cancelled", "draft"])
    def test_medication_requests_with_a_never_evidence_status(self, bad_status):
        evaluation = evaluate(with_(med_request(TACROLIMUS, 5, status=bad_status, id="bad")))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert notes_about(evaluation, "MedicationRequest/bad")

    @pytest.mark.parametrize("bad_status", ["not-done", "entered-in-error"])
    def test_procedures_not_done(self, bad_status):
        surgery = procedure("23968004", "Colectomy", 5, category=SURGICAL, status=bad_status, id="bad")
        evaluation = evaluate(with_(surgery))
        assert status(evaluation, "recent-major-surgery") == "pass"
        assert notes_about(evaluation, "Procedure/bad")

    def test_medication_statement_not_taken(self):
        evaluation = evaluate(eligible(chemo=med_statement(GEMCITABINE, 200, status="not-taken", id="chemo")))
        assert status(evaluation, "progression") == "unknown"
        assert notes_about(evaluation, "MedicationStatement/chemo")

    def test_administration_not_done(self):
        evaluation = evaluate(with_(med_admin(TACROLIMUS, 5, status="not-done", id="bad")))
        assert status(evaluation, "immunosuppressants") == "pass"

    def test_cancelled_imaging_study(self):
        evaluation = evaluate(eligible(imaging=imaging_study("CT", 10, status="cancelled")))
        assert status(evaluation, "extrahepatic-metastases") == "unknown"


# --- resources of another patient --------------------------------------------------------------

class TestOtherPatients:
    def test_resources_of_another_patient_are_ignored_and_noted(self):
        foreign = [condition("C50.911", pid="someone-else", id="theirs"), ecog(4, 2, pid="someone-else", id="e2")]
        evaluation = evaluate(with_(*foreign))
        assert status(evaluation, "other-malignancy") == "pass"
        assert status(evaluation, "ecog") == "pass"
        assert notes_about(evaluation, "Condition/theirs")
        assert notes_about(evaluation, "Observation/e2")

    def test_absolute_references_to_the_patient_count(self):
        mine = condition("C50.911", id="mine", subject={"reference": f"https://ehr.example.org/fhir/Patient/{PID}"})
        assert status(evaluate(with_(mine)), "other-malignancy") == "fail"

    def test_patient_id_picks_the_patient(self):
        resources = [patient("other", birth_date="2015-01-01")] + eligible()
        evaluation = evaluate(resources, patient_id=PID)
        assert evaluation.patient == f"Patient/{PID}"
        assert status(evaluation, "age") == "pass"


# --- evidence ----------------------------------------------------------------------------------

class TestEvidence:
    def test_decisive_resources_are_listed(self):
        resources = eligible() + [
            condition("C50.911", onset=100, id="other"), condition("A41.9", id="sepsis"), condition("I48.91", id="af"),
            med_statement(TACROLIMUS, 20, id="tac"), condition("G62.0", grade=2, id="neuro"),
            procedure("23968004", "Colectomy", 5, id="op"), condition("C78.01", id="lung"),
            pregnancy_status(PREGNANT, 10, id="preg"),
            observation("21905-5", valueCodeableConcept=T4, id="t4", focus=[{"reference": "Condition/pdac"}]),
        ]
        evaluation = evaluate(resources)
        expected = {
            "pdac-diagnosis": "Condition/pdac", "liver-metastases": "Condition/liver-met",
            "liver-limited": "Observation/lesion-a", "ecog": "Observation/ecog", "progression": "Observation/status",
            "extrahepatic-metastases": "Condition/lung", "other-malignancy": "Condition/other",
            "recent-major-surgery": "Procedure/op", "active-infection": "Condition/sepsis",
            "cardiac-disease": "Condition/af", "immunosuppressants": "MedicationStatement/tac",
            "neuropathy": "Condition/neuro", "pregnancy": "Observation/preg", "resectable-primary": "Observation/t4",
            "age": f"Patient/{PID}",
        }
        for criterion, reference in expected.items():
            assert reference in evidence(evaluation, criterion), criterion

    def test_evidence_only_names_resources_of_the_record(self):
        resources = eligible() + [condition("A41.9"), med_statement(DEXAMETHASONE, 10), condition("G62.0", grade=1)]
        known = {ref(r) for r in resources}
        evaluation = evaluate(resources)
        for c in evaluation.criteria:
            assert set(c.evidence) <= known, (c.id, c.evidence)


# --- informational facts -----------------------------------------------------------------------

def ca19_9(value: float, on: int | str, unit: str | None = "U/mL", code: str = "24108-3", **extra) -> dict:
    quantity = {"value": value} | ({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit} if unit else {})
    return observation(code, on=on, valueQuantity=quantity, **extra)


class TestFacts:
    def test_ca19_9_trend_against_the_last_value_before_chemotherapy(self):
        # Chemotherapy (baseline patient) started 200 days ago.
        values = [ca19_9(800, 250), ca19_9(300, 200, id="base"), ca19_9(150, 100), ca19_9(90, 10, id="latest")]
        facts = evaluate(with_(*values)).facts["ca19_9"]
        assert facts["latest"] == {"value": 90, "unit": "U/mL", "date": when(10), "ref": "Observation/latest"}
        assert facts["baseline"]["ref"] == "Observation/base"
        assert facts["changePercent"] == -70.0
        assert facts["elevated"] is True

    def test_ca19_9_baseline_without_chemotherapy_is_the_highest_earlier_value(self):
        values = [ca19_9(120, 300), ca19_9(400, 200, id="peak"), ca19_9(200, 10)]
        facts = evaluate(eligible(chemo=None) + values).facts["ca19_9"]
        assert facts["baseline"]["ref"] == "Observation/peak"
        assert facts["changePercent"] == -50.0

    @pytest.mark.parametrize(("value", "elevated"), [(37, False), (37.1, True), (12, False)])
    def test_ca19_9_upper_limit(self, value, elevated):
        assert evaluate(with_(ca19_9(value, 5))).facts["ca19_9"]["elevated"] is elevated

    @pytest.mark.parametrize(("unit", "code"), [("kU/L", "24108-3"), (None, "24108-3"), ("[U]/mL", "83084-4")])
    def test_ca19_9_units_and_codes(self, unit, code):
        assert evaluate(with_(ca19_9(55, 5, unit=unit, code=code))).facts["ca19_9"]["latest"]["value"] == 55

    def test_ca19_9_other_units_are_skipped_and_noted(self):
        evaluation = evaluate(with_(ca19_9(55, 5, unit="ng/mL", id="odd")))
        assert evaluation.facts["ca19_9"] is None
        assert notes_about(evaluation, "Observation/odd")

    def test_ca19_9_in_other_fluids_is_not_read(self):
        assert evaluate(with_(ca19_9(55, 5, code="19163-5"))).facts["ca19_9"] is None

    def test_ca19_9_never_changes_the_verdict(self):
        assert evaluate(with_(ca19_9(5000, 5))).verdict == "likely-eligible"

    @pytest.mark.parametrize(("drugs", "regimen"), [
        (["fluorouracil", "oxaliplatin", "irinotecan", "leucovorin"], "FOLFIRINOX"),
        (["fluorouracil", "oxaliplatin", "irinotecan"], "FOLFIRINOX"),
        (["gemcitabine", "paclitaxel protein-bound"], "gemcitabine + nab-paclitaxel"),
        (["gemcitabine"], None),
        (["fluorouracil", "oxaliplatin"], None),
    ])
    def test_chemotherapy_regimen(self, drugs, regimen):
        uses = [med_admin(cc(None, text=name), 100 - i) for i, name in enumerate(drugs)]
        facts = evaluate(eligible(chemo=uses)).facts["chemotherapy"]
        assert facts["regimen"] == regimen
        assert facts["start"] == when(100)

    def test_staging_imaging_is_the_newest_cross_sectional_study(self):
        studies = [imaging_study("CT", 40), imaging_study("MR", 20, id="mr"), imaging_study("US", 5)]
        facts = evaluate(eligible(imaging=studies)).facts["stagingImaging"]
        assert facts == {"date": when(20), "modalities": ["MR"], "ref": "ImagingStudy/mr", "source": "ImagingStudy"}
