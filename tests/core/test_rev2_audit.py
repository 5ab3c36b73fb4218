"""Independent audit of spec revision 2 (issue 9): compact, hostile patients in the shapes real EHRs send.

Every expected status below is derived by hand from the text of ``shared/spec/NCT05271110.md`` (revision 2),
not from the code. Shapes follow public documentation and captures: Epic (status-less encounter diagnoses
with a recordedDate, IMO + ICD-10 + SNOMED codings, "(HCC)" appended to problem names, flowsheet rows under
urn:oid:1.2.840.114350…, systems by OID), Oracle Health / Cerner (``-05:00`` offsets, SNOMED "Diagnosis"
category, discharge diagnoses), Synthea (SNOMED-only, deceasedDateTime), US Core (DiagnosticReport
radiology notes, encounter-diagnosis profile), claims feeds (ICD-10 without the dot, CPT-only procedures)
and a Swedish site (WHO ICD-10, ATC). Where the spec leaves something open, the expected status is the
reading that never calls an eligible patient not-eligible (see docs/criteria.md, "Decisions").

``AS_OF`` is 2026-06-15; an int date means "that many days before it".
"""

from __future__ import annotations

import pytest

from .builders import (
    AS_OF, ATC, ICD10, LOINC, RXNORM, SNOMED, cc, coding, condition, disease_status, ecog, eligible, evaluate,
    imaging_study, med_request, med_statement, notes_about, observation, patient, procedure, status,
    tumour_size, when,
)

CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
EPIC_VISIT = [{"coding": [coding("encounter-diagnosis", CATEGORY, "Encounter Diagnosis")],
               "text": "Encounter Diagnosis"}]
EPIC_PROBLEM = [{"coding": [coding("problem-list-item", CATEGORY, "Problem List Item")], "text": "Problem List Item"}]
# Oracle Health (Cerner) discharge diagnosis: the FHIR category plus its own code set's "Discharge".
CERNER_DISCHARGE = [{"coding": [coding("encounter-diagnosis", CATEGORY, "Encounter Diagnosis")]},
                    {"coding": [coding("89", "https://fhir.cerner.com/ec2458f2/codeSet/17", "Discharge")],
                     "text": "Discharge"}]
# The FHIR R4 Condition examples' SNOMED "Diagnosis" category (439401001): neither list nor visit.
SNOMED_DIAGNOSIS = [cc("439401001", SNOMED, "Diagnosis")]
IMO = "urn:oid:2.16.840.1.113883.3.247.1.1"
ICD10_OID = "urn:oid:2.16.840.1.113883.6.90"
ICD10_OID_UPPER = "URN:OID:2.16.840.1.113883.6.90"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED_OID = "urn:oid:2.16.840.1.113883.6.96"
LOINC_OID = "urn:oid:2.16.840.1.113883.6.1"
CPT = "http://www.ama-assn.org/go/cpt"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
EPIC_FLOWSHEET = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"


def epic_dx(icd: str | None, display: str, *, recorded, snomed: str | None = None, imo: str | None = "31589",
            category=EPIC_VISIT, icd_system: str = ICD10_OID, **kwargs) -> dict:
    """An Epic encounter diagnosis: no clinicalStatus / verificationStatus / onset, several codings, "(HCC)"."""
    codings_ = [coding(imo, IMO, display)] if imo else []
    if icd:
        codings_ += [coding(icd, icd_system, display), coding(icd, ICD10, display)]
    if snomed:
        codings_.append(coding(snomed, SNOMED, display))
    code = {"coding": codings_, "text": display}
    resource = condition(None, clinical=None, verification=None, onset=None, recorded=recorded,
                         category=category, **kwargs)
    resource["code"] = code
    return resource


def with_(*extra, **replace) -> list[dict]:
    return eligible(**replace) + list(extra)


def statuses(*extra, **replace) -> dict[str, str]:
    evaluation = evaluate(with_(*extra, **replace))
    return {c.id: c.status for c in evaluation.criteria}


# --- alive and age -------------------------------------------------------------------------------

class TestAliveAndAge:
    @pytest.mark.parametrize(("deceased", "expected"), [
        ({"deceasedDateTime": "2026-06-15T23:30:00-05:00"}, "fail"),   # its own date is the as-of date
        ({"deceasedDateTime": "2026-06-16T00:30:00+14:00"}, "pass"),   # written date is tomorrow: not yet
        ({"deceasedDateTime": "2026"}, "fail"),                         # partial: 2026-01-01
        ({"deceasedDateTime": "2026-07"}, "pass"),                      # partial: 2026-07-01, after as-of
        ({"deceasedBoolean": False}, "pass"),
        ({"deceasedBoolean": True}, "fail"),
    ])
    def test_synthea_and_epic_death_shapes(self, deceased, expected):
        assert statuses(patient=patient(**deceased))["alive"] == expected

    @pytest.mark.parametrize(("born", "expected"), [
        ("2008-06-15", "pass"), ("2008-06-16", "fail"), ("2008-06", "pass"), ("2008", "pass"), ("2009", "fail")])
    def test_age_edges_and_partial_birth_dates(self, born, expected):
        assert statuses(patient=patient(birth_date=born))["age"] == expected

    def test_deceased_patient_gets_no_card_verdict(self):
        evaluation = evaluate(eligible(patient=patient(deceasedDateTime="2026-05-01")))
        assert evaluation.verdict == "not-eligible"


# --- the gates: PDAC and liver metastases ----------------------------------------------------------

class TestPdacGate:
    @pytest.mark.parametrize("code_system", [
        ("C250", ICD10), ("C25.0", WHO_ICD10), ("C25.0", ICD10_OID), ("C250", ICD10_OID_UPPER),
        ("c25.9", ICD10), ("C25", ICD10), ("363418001", SNOMED_OID), ("700423003", SNOMED)])
    def test_pdac_codes_in_every_spelling(self, code_system):
        code, system = code_system
        assert statuses(pdac=condition(code, system, onset=300, id="pdac"))["pdac-diagnosis"] == "pass"

    def test_epic_visit_diagnosis_years_old_still_counts(self):
        # History counts for the gate: a 2019 status-less visit diagnosis is the patient's PDAC.
        pdac = epic_dx("C25.0", "Malignant neoplasm of head of pancreas (HCC)", recorded="2019-03-02", id="pdac")
        found = statuses(pdac=pdac)
        assert found["pdac-diagnosis"] == "pass"
        assert found["other-malignancy"] == "pass"  # "(HCC)" is Epic's risk-adjustment tag, not hepatocellular

    def test_text_only_problem_with_hcc_tag(self):
        pdac = condition(None, text="Pancreatic adenocarcinoma (HCC)", clinical=None, verification=None,
                         onset=None, recorded=300, id="pdac", category=EPIC_PROBLEM)
        found = statuses(pdac=pdac)
        assert found["pdac-diagnosis"] == "pass"
        assert found["other-malignancy"] == "pass"

    def test_resolved_pdac_after_whipple_still_counts(self):
        pdac = condition("C25.0", clinical="resolved", onset=900, id="pdac")
        assert statuses(pdac=pdac)["pdac-diagnosis"] == "pass"

    def test_history_of_pancreatic_cancer_z85_07(self):
        pdac = condition("Z85.07", onset=None, recorded=400, clinical=None, id="pdac")
        found = statuses(pdac=pdac)
        assert found["pdac-diagnosis"] == "pass"
        assert found["other-malignancy"] == "pass"

    def test_neuroendocrine_by_histology_fails_gate(self):
        net = condition("C25.9", histology=cc("8246/3", "http://terminology.hl7.org/CodeSystem/icd-o-3"),
                        onset=300, id="pdac")
        assert statuses(pdac=net)["pdac-diagnosis"] == "fail"

    def test_c25_4_with_a_separate_pdac_passes(self):
        net = condition("C25.4", onset=500)
        assert statuses(net)["pdac-diagnosis"] == "pass"

    def test_family_history_is_not_the_patients_cancer(self):
        family = condition("Z80.0", display="Family history of malignant neoplasm of digestive organs",
                           text="Family history of pancreatic cancer", clinical=None, onset=None, recorded=50)
        found = statuses(family, pdac=None)
        assert found["pdac-diagnosis"] == "fail"


class TestLiverGate:
    def test_liver_metastasis_active_and_resolved_passes(self):
        # The same metastasis recorded twice: once resolved, once active → the active one decides.
        resolved = condition("C78.7", clinical="resolved", onset=290, id="met-old")
        assert statuses(resolved)["liver-metastases"] == "pass"

    def test_only_resolved_asks(self):
        resolved = condition("C78.7", clinical="resolved", onset=290, id="liver-met")
        assert statuses(liver_met=resolved)["liver-metastases"] == "unknown"

    def test_only_inactive_asks(self):
        inactive = condition("C787", clinical="inactive", onset=290, id="liver-met")
        assert statuses(liver_met=inactive)["liver-metastases"] == "unknown"

    def test_remission_passes(self):
        remission = condition("C78.7", clinical="remission", onset=290, id="liver-met")
        assert statuses(liver_met=remission)["liver-metastases"] == "pass"

    def test_old_epic_visit_diagnosis_passes(self):
        met = epic_dx("C78.7", "Secondary malignant neoplasm of liver (HCC)", recorded="2020-01-10", id="liver-met")
        found = statuses(liver_met=met)
        assert found["liver-metastases"] == "pass"
        assert found["other-malignancy"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"

    def test_synthea_snomed_liver_metastasis(self):
        met = condition("94381002", SNOMED, "Secondary malignant neoplasm of liver (disorder)", clinical="active",
                        verification=None, onset=290, id="liver-met")
        found = statuses(liver_met=met)
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"

    def test_generic_metastasis_with_liver_body_site_under_oid(self):
        met = condition("128462008", SNOMED_OID, "Secondary malignant neoplastic disease", onset=290, id="liver-met",
                        body_site=[cc("10200004", SNOMED_OID, "Liver structure")])
        found = statuses(liver_met=met)
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"

    def test_metastasis_from_prostate_to_liver_is_not_the_pdac(self):
        # "Metastasis from malignant tumor of prostate" names another primary: another malignancy.
        met = condition("314994000", SNOMED, "Metastasis from malignant tumor of prostate", onset=100,
                        clinical="active")
        assert statuses(met)["other-malignancy"] == "fail"


# --- other malignancy ----------------------------------------------------------------------------

class TestOtherMalignancy:
    @pytest.mark.parametrize(("recorded", "expected"), [(730, "fail"), (731, "unknown")])
    def test_epic_breast_cancer_visit_diagnosis_window(self, recorded, expected):
        breast = epic_dx("C50.911", "Malignant neoplasm of right female breast (HCC)", recorded=recorded,
                         snomed="254837009")
        assert statuses(breast)["other-malignancy"] == expected

    def test_cerner_discharge_diagnosis_2016(self):
        lung = epic_dx("C34.90", "Lung cancer", recorded="2016-04-02T10:15:00-05:00", imo=None,
                       category=CERNER_DISCHARGE)
        assert statuses(lung)["other-malignancy"] == "unknown"

    def test_snomed_diagnosis_category_old_is_not_active(self):
        colon = condition("363406005", SNOMED, "Malignant tumor of colon", clinical=None, verification=None,
                          onset="2015-02", category=SNOMED_DIAGNOSIS)
        assert statuses(colon)["other-malignancy"] == "unknown"

    def test_old_onset_but_active_status_fails(self):
        colon = condition("C18.7", onset="2010-01-01", clinical="active")
        assert statuses(colon)["other-malignancy"] == "fail"

    def test_resolved_but_diagnosed_within_two_years_fails(self):
        colon = condition("C18.7", onset=700, clinical="resolved")
        assert statuses(colon)["other-malignancy"] == "fail"

    def test_resolved_long_ago_passes(self):
        colon = condition("C18.7", onset=2000, clinical="resolved")
        assert statuses(colon)["other-malignancy"] == "pass"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("Z853", ICD10, "Personal history of malignant neoplasm of breast"),
        ("Z85.46", ICD10_OID, "Personal history of malignant neoplasm of prostate"),
        ("428262008", SNOMED, "History of malignant neoplasm of prostate")])
    def test_history_codes_without_onset_ask(self, code, system, display):
        history = condition(code, system, display, clinical=None, verification=None, onset=None, recorded=30)
        assert statuses(history)["other-malignancy"] == "unknown"

    def test_history_code_with_old_onset_passes(self):
        history = condition("Z85.3", display="Personal history of malignant neoplasm of breast", clinical=None,
                            verification=None, onset="2012", recorded=30)
        assert statuses(history)["other-malignancy"] == "pass"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("C44.91", ICD10, "Basal cell carcinoma of skin, unspecified"),
        ("254701007", SNOMED, "Basal cell carcinoma of skin"),
        (None, SNOMED, "Squamous cell carcinoma of skin of cheek"),
        ("D05.11", ICD10, "Intraductal carcinoma in situ of right breast"),
        ("Z80.3", ICD10, "Family history of malignant neoplasm of breast"),
        ("D37.9", ICD10, "Neoplasm of uncertain behavior of digestive organ"),
        ("C77.2", ICD10, "Secondary malignant neoplasm of intra-abdominal lymph nodes"),
        ("C80.1", ICD10, "Malignant (primary) neoplasm, unspecified"),
    ])
    def test_what_is_not_another_malignancy(self, code, system, display):
        found = condition(code, system, display, text=display if code is None else None, onset=30)
        assert statuses(found)["other-malignancy"] == "pass"

    def test_imo_snomed_icd_disagree_icd_decides(self):
        # IMO says "cancer", ICD-10 says benign neoplasm (D12.6 colon polyp): ICD-10 decides → not cancer.
        polyp = condition(None, onset=30)
        polyp["code"] = {"coding": [coding("123", IMO, "Colon cancer screening polyp"),
                                    coding("D12.6", ICD10, "Benign neoplasm of colon")], "text": "Colon polyp"}
        assert statuses(polyp)["other-malignancy"] == "pass"


# --- extrahepatic metastases and staging imaging --------------------------------------------------

def report(code: dict, on, *, category=None, status_: str = "final", rid: str = "rep", **extra) -> dict:
    resource = {"resourceType": "DiagnosticReport", "id": rid, "status": status_,
                "subject": {"reference": "Patient/p1"}, "code": code}
    if category is not None:
        resource["category"] = category
    if on is not None:
        resource["effectiveDateTime"] = when(on) if isinstance(on, int) else on
    return resource | extra


class TestExtrahepatic:
    @pytest.mark.parametrize(("code", "system", "display"), [
        ("C78.00", ICD10, "Secondary malignant neoplasm of unspecified lung"),
        ("C786", ICD10, "Secondary malignant neoplasm of retroperitoneum and peritoneum"),
        ("C79.51", ICD10_OID, "Secondary malignant neoplasm of bone"),
        ("C77.0", ICD10, "Secondary malignant neoplasm of lymph nodes of head, face and neck"),
        ("94222008", SNOMED, "Secondary malignant neoplasm of bone"),
        (None, SNOMED, "Secondary malignant neoplasm of colon"),
        (None, SNOMED, "Metastasis to adrenal gland"),
    ])
    def test_every_non_liver_site_fails(self, code, system, display):
        met = condition(code, system, display, text=display if code is None else None, onset=30)
        assert statuses(met)["extrahepatic-metastases"] == "fail"

    def test_regional_nodes_are_not_distant(self):
        nodes = condition("C77.2", display="Secondary malignant neoplasm of intra-abdominal lymph nodes", onset=30)
        assert statuses(nodes)["extrahepatic-metastases"] == "pass"

    @pytest.mark.parametrize(("recorded", "expected"), [(365, "fail"), (366, "unknown")])
    def test_epic_visit_diagnosis_window(self, recorded, expected):
        bone = epic_dx("C79.51", "Secondary malignant neoplasm of bone (HCC)", recorded=recorded)
        assert statuses(bone)["extrahepatic-metastases"] == expected

    def test_metastasis_to_liver_and_lung_wording(self):
        both = condition(None, text="Metastases to liver and lung", onset=30)
        found = statuses(both)
        assert found["extrahepatic-metastases"] == "fail"
        assert found["liver-metastases"] == "pass"

    def test_negated_wording_does_not_exclude(self):
        # A US Core problem text that denies a metastasis elsewhere must not exclude.
        none = condition(None, text="No evidence of metastasis to bone", onset=30)
        assert statuses(none)["extrahepatic-metastases"] == "pass"

    @pytest.mark.parametrize(("days", "expected"), [(60, "pass"), (61, "unknown")])
    def test_cpt_only_ct_procedure_window(self, days, expected):
        ct = procedure("74177", "CT abdomen and pelvis with contrast", days, system=CPT, id="ct-proc")
        assert statuses(imaging=ct)["extrahepatic-metastases"] == expected

    def test_cerner_offset_at_window_edge(self):
        # 60 days before the as-of date, written late in the evening in Chicago: its own date counts.
        rep = report(cc("24627-2", LOINC, "CT Chest"), when(60) + "T23:30:00-05:00", category=[cc("RAD", V2_0074)])
        assert statuses(imaging=rep)["extrahepatic-metastases"] == "pass"

    def test_report_dated_after_as_of_by_its_own_calendar_date(self):
        rep = report(cc("24627-2", LOINC, "CT Chest"), "2026-06-16T00:30:00+14:00", category=[cc("RAD", V2_0074)])
        assert statuses(imaging=rep)["extrahepatic-metastases"] == "unknown"

    def test_report_issued_only(self):
        rep = report(cc(None, text="MRI abdomen w/wo contrast"), None, category=[cc("RAD", V2_0074)],
                     issued=when(20) + "T08:00:00Z")
        assert statuses(imaging=rep)["extrahepatic-metastases"] == "pass"

    def test_registered_report_is_not_imaging_done(self):
        rep = report(cc("24627-2", LOINC, "CT Chest"), 20, category=[cc("RAD", V2_0074)], status_="registered")
        assert statuses(imaging=rep)["extrahepatic-metastases"] == "unknown"

    def test_ultrasound_only_is_not_cross_sectional(self):
        assert statuses(imaging=imaging_study("US", 20))["extrahepatic-metastases"] == "unknown"

    def test_pet_series_modality_only(self):
        study = imaging_study(None, 20, series_modality="PT")
        assert statuses(imaging=study)["extrahepatic-metastases"] == "pass"


# --- surgery -------------------------------------------------------------------------------------

SURGICAL = cc("387713003", SNOMED, "Surgical procedure")


class TestRecentMajorSurgery:
    @pytest.mark.parametrize(("code", "system", "display"), [
        ("41820", CPT, "Gingivectomy, excision gingiva, each quadrant"),
        ("43262", CPT, "ERCP with sphincterotomy/papillotomy"),
        ("45385", CPT, "Colonoscopy with removal of polyp by snare technique"),
        ("36561", CPT, "Insertion of tunneled centrally inserted central venous access device with port"),
        ("11402", CPT, "Excision, benign lesion, trunk, arms or legs; 1.1 to 2.0 cm"),
        ("66984", CPT, "Extracapsular cataract removal with insertion of intraocular lens"),
        ("47000", CPT, "Biopsy of liver, needle; percutaneous"),
        ("49083", CPT, "Abdominal paracentesis with imaging guidance"),
        ("41899", CPT, "Tooth extraction"),
    ])
    def test_minor_with_epic_surgical_category_passes(self, code, system, display):
        proc = procedure(code, display, 10, system=system, category=SURGICAL)
        assert statuses(proc)["recent-major-surgery"] == "pass"

    @pytest.mark.parametrize(("days", "expected"), [(28, "fail"), (29, "pass")])
    def test_cpt_only_colectomy_window(self, days, expected):
        proc = procedure("44140", "Colectomy, partial; with anastomosis", days, system=CPT)
        assert statuses(proc)["recent-major-surgery"] == expected

    def test_laparoscopic_cholecystectomy_text_only(self):
        proc = procedure(None, "Laparoscopic cholecystectomy", 5)
        assert statuses(proc)["recent-major-surgery"] == "fail"

    def test_whipple_never_counts_here(self):
        proc = procedure("48150", "Pancreatectomy, proximal subtotal with total duodenectomy (Whipple)", 10,
                         system=CPT)
        found = statuses(proc)
        assert found["recent-major-surgery"] == "pass"
        assert found["resectable-primary"] == "pass"

    def test_not_done_and_in_progress_do_not_count(self):
        not_done = procedure("44140", "Colectomy, partial", 5, system=CPT, status="not-done")
        preparation = procedure("44140", "Colectomy, partial", 5, system=CPT, status="preparation")
        assert statuses(not_done, preparation)["recent-major-surgery"] == "pass"


# --- infection, cardiac, neuropathy --------------------------------------------------------------

class TestConditionExclusions:
    @pytest.mark.parametrize(("recorded", "expected"), [(90, "unknown"), (91, "pass")])
    def test_epic_sepsis_visit_diagnosis_window(self, recorded, expected):
        sepsis = epic_dx("A41.9", "Sepsis, due to unspecified organism (HCC)", recorded=recorded)
        evaluation = evaluate(with_(sepsis))
        assert status(evaluation, "active-infection") == expected
        if expected == "pass":
            assert any("not counted as active" in n for n in evaluation.notes)

    def test_viral_infection_does_not_count(self):
        covid = condition("U07.1", display="COVID-19", onset=10)
        flu = condition("J10.1", display="Influenza with other respiratory manifestations", onset=10)
        assert statuses(covid, flu)["active-infection"] == "pass"

    def test_resolved_cholangitis_does_not_count(self):
        cholangitis = condition("K83.09", display="Other cholangitis", onset=20, clinical="resolved")
        assert statuses(cholangitis)["active-infection"] == "pass"

    def test_old_af_visit_diagnosis_asks(self):
        af = epic_dx("I48.91", "Atrial fibrillation", recorded="2014-01-01")
        assert statuses(af)["cardiac-disease"] == "unknown"

    @pytest.mark.parametrize(("recorded", "expected"), [(365, "fail"), (366, "unknown")])
    def test_neuropathy_moderate_visit_diagnosis_window(self, recorded, expected):
        cipn = epic_dx("G62.0", "Drug-induced polyneuropathy", recorded=recorded,
                       severity=cc("6736007", SNOMED, "Moderate"))
        assert statuses(cipn)["neuropathy"] == expected

    def test_stale_mild_neuropathy_passes(self):
        cipn = epic_dx("G62.0", "Drug-induced polyneuropathy", recorded=400, severity=cc("255604002", SNOMED, "Mild"))
        assert statuses(cipn)["neuropathy"] == "pass"

    def test_confirmed_grade1_and_provisional_grade3_asks(self):
        mild = condition("G62.0", onset=30, grade=1)
        severe = condition("G62.0", onset=30, grade=3, verification="provisional")
        assert statuses(mild, severe)["neuropathy"] == "unknown"


# --- pregnancy -----------------------------------------------------------------------------------

class TestPregnancy:
    @pytest.mark.parametrize(("recorded", "expected"), [(269, "fail"), (270, "fail"), (271, "pass")])
    def test_epic_pregnancy_visit_diagnosis_window(self, recorded, expected):
        preg = epic_dx("Z34.90", "Encounter for supervision of normal pregnancy, unspecified", recorded=recorded)
        assert statuses(preg)["pregnancy"] == expected

    def test_newer_not_pregnant_status_overrides(self):
        preg = epic_dx("Z3A.12", "12 weeks gestation of pregnancy", recorded=100, imo=None)
        preg["code"]["coding"].append(coding("O09.522", ICD10, "Supervision of elderly multigravida"))
        not_pregnant = observation("82810-3", LOINC_OID, on=20, valueCodeableConcept=cc("60001007", SNOMED))
        assert statuses(preg, not_pregnant)["pregnancy"] == "pass"

    def test_pregnancy_status_observation_window(self):
        pregnant = observation("82810-3", on=271, valueCodeableConcept=cc("77386006", SNOMED))
        assert statuses(pregnant)["pregnancy"] == "pass"

    def test_male_always_passes(self):
        preg = condition("Z33.1", onset=10)
        assert statuses(preg, patient=patient(gender="male"))["pregnancy"] == "pass"

    def test_pregnancy_with_abatement_is_over(self):
        preg = condition("Z34.90", clinical=None, onset=200, abatementDateTime=when(20))
        assert statuses(preg)["pregnancy"] == "pass"


# --- performance status --------------------------------------------------------------------------

def flowsheet(name: str, value: dict, on=10, loinc: str | None = None) -> dict:
    codings_ = [coding("3040104", EPIC_FLOWSHEET, name)]
    if loinc:
        codings_.append(coding(loinc, LOINC_OID, name))
    resource = observation("x", on=on, id="ps", **value)
    resource["code"] = {"coding": codings_, "text": name}
    return resource


class TestPerformance:
    @pytest.mark.parametrize(("value", "expected"), [
        ({"valueString": "1"}, "pass"), ({"valueString": "ECOG 1"}, "pass"), ({"valueString": "2"}, "unknown"),
        ({"valueString": "3"}, "fail"), ({"valueCodeableConcept": {"text": "0"}}, "pass"),
        ({"valueString": "1-2"}, "unknown"), ({"valueString": "ECOG 2-3"}, "unknown"),
        ({"valueQuantity": {"value": 1, "unit": "{score}"}}, "pass"),
    ])
    def test_epic_ecog_flowsheet_with_loinc_oid(self, value, expected):
        assert statuses(ecog=flowsheet("ECOG Performance Status", value, loinc="89247-1"))["ecog"] == expected

    def test_ecog_flowsheet_without_loinc(self):
        assert statuses(ecog=flowsheet("ECOG score", {"valueString": "1"}))["ecog"] == "pass"

    @pytest.mark.parametrize(("value", "expected"), [
        ({"valueString": "80%"}, "pass"), ({"valueQuantity": {"value": 70, "unit": "%"}}, "pass"),
        ({"valueInteger": 60}, "unknown"), ({"valueString": "40"}, "fail")])
    def test_karnofsky_shapes(self, value, expected):
        kps = observation("89243-0", on=10, id="ps", **value)
        assert statuses(ecog=kps)["ecog"] == expected

    def test_old_loinc_and_snomed_grade_findings(self):
        old = observation("89262-0", on=10, id="ps", valueInteger=1)
        assert statuses(ecog=old)["ecog"] == "pass"
        finding = observation("423053003", SNOMED, on=10, id="ps")  # ECOG grade 3 as the code
        assert statuses(ecog=finding)["ecog"] == "fail"

    @pytest.mark.parametrize(("on", "expected"), [(when(90) + "T23:59:00-05:00", "pass"),
                                                  (when(91) + "T23:59:00+14:00", "unknown"),
                                                  ("2026-03", "unknown")])
    def test_window_edge_with_offsets_and_partial_date(self, on, expected):
        assert statuses(ecog=ecog(1, on))["ecog"] == expected

    def test_same_day_tie_takes_the_worst(self):
        assert statuses(ecog=[ecog(1, 5), observation("89243-0", on=5, valueInteger=50)])["ecog"] == "unknown"

    def test_data_absent_reason_is_not_malformed(self):
        absent = observation("89247-1", on=3, id="ecog-absent",
                             dataAbsentReason=cc("not-performed", "http://terminology.hl7.org/CodeSystem/data-absent-reason"))
        evaluation = evaluate(with_(absent))
        assert status(evaluation, "ecog") == "pass"
        assert not any("malformed" in n for n in notes_about(evaluation, "Observation/ecog-absent"))


# --- liver-limited --------------------------------------------------------------------------------

class TestLiverLimited:
    @pytest.mark.parametrize(("sizes", "unit", "expected"), [
        ([49.9], "mm", "pass"), ([50], "mm", "fail"), ([5], "cm", "fail"), ([4.9], "cm", "pass"),
        ([10, 10, 10, 10], "mm", "pass"), ([10, 10, 10, 10, 10], "mm", "fail")])
    def test_count_and_size_edges(self, sizes, unit, expected):
        lesions = [tumour_size(s, 10, unit=unit) for s in sizes]
        assert statuses(lesions=lesions)["liver-limited"] == expected

    def test_newest_measurement_must_be_within_90_days(self):
        assert statuses(lesions=[tumour_size(20, 91)])["liver-limited"] == "unknown"
        assert statuses(lesions=[tumour_size(20, 90)])["liver-limited"] == "pass"


# --- progression ---------------------------------------------------------------------------------

class TestProgression:
    @pytest.mark.parametrize(("chemo_days", "expected"), [(330, "pass"), (331, "unknown")])
    def test_chemotherapy_from_30_days_before_the_pdac(self, chemo_days, expected):
        # PDAC onset 300 days ago: a drug started 330 days ago is this cancer's, 331 days ago is not.
        chemo = med_statement(cc("12574", RXNORM, "gemcitabine"), chemo_days, id="chemo")
        # The only status is dated before any chemotherapy that counts would make it assessable.
        status_ = disease_status("stable", 320, id="status")
        assert statuses(chemo=chemo, status=status_)["progression"] == expected

    def test_status_on_chemo_start_day_counts(self):
        chemo = med_statement(cc("12574", RXNORM, "gemcitabine"), 100, id="chemo")
        found = statuses(chemo=chemo, status=disease_status("progression", 100, id="status"))
        assert found["progression"] == "fail"

    def test_synthea_worsening_and_improving(self):
        worse = observation("97509-4", on=10, id="status", valueCodeableConcept=cc("230993007", SNOMED, "Worsening"))
        assert statuses(status=worse)["progression"] == "fail"
        better = observation("88040-1", on=10, id="status", valueCodeableConcept=cc("385633008", SNOMED, "Improving"))
        assert statuses(status=better)["progression"] == "pass"

    def test_status_of_another_cancer_is_ignored(self):
        breast = condition("C50.911", onset=2000, clinical="resolved", id="breast")
        worse = disease_status("progression", 5, id="breast-status", focus=[{"reference": "Condition/breast"}])
        assert statuses(breast, worse)["progression"] == "pass"

    def test_atc_swedish_chemo(self):
        chemo = med_request(cc("L01BC05", ATC, "Gemcitabin"), 200, id="chemo")
        assert statuses(chemo=chemo)["progression"] == "pass"


# --- immunosuppressants --------------------------------------------------------------------------

class TestImmunosuppressants:
    def test_epic_ophthalmic_route_ciclosporin(self):
        drops = med_request(cc("378252", RXNORM, "cycloSPORINE 0.05 % ophthalmic emulsion"), 10,
                            dosageInstruction=[{"route": {"coding": [coding("15", "urn:oid:1.2.840.114350.1.13.0.1.7.4.698288.330", "Ophthalmic")],
                                                          "text": "Ophthalmic"}}])
        assert statuses(drops)["immunosuppressants"] == "pass"

    def test_tacrolimus_ointment_by_display(self):
        ointment = med_statement(cc("204467", RXNORM, "tacrolimus 0.1 % Topical Ointment"), 10)
        assert statuses(ointment)["immunosuppressants"] == "pass"

    def test_oral_tacrolimus_fails(self):
        oral = med_request(cc("42316", RXNORM, "tacrolimus"), 10,
                           dosageInstruction=[{"route": cc("26643006", SNOMED, "Oral route")}])
        assert statuses(oral)["immunosuppressants"] == "fail"

    def test_cancelled_order_is_never_evidence(self):
        cancelled = med_request(cc("42316", RXNORM, "tacrolimus"), 5, status="cancelled")
        assert statuses(cancelled)["immunosuppressants"] == "pass"

    def test_swedish_atc_azathioprine(self):
        aza = med_statement(cc("L04AX01", ATC, "Azatioprin"), 10)
        assert statuses(aza)["immunosuppressants"] == "fail"

    def test_dexamethasone_is_allowed(self):
        dex = med_request(cc("3264", RXNORM, "dexamethasone"), 5)
        assert statuses(dex)["immunosuppressants"] == "pass"


# --- resectable primary ---------------------------------------------------------------------------

T_CATEGORY = "21905-5"


def t4(on=20, **extra) -> dict:
    return observation(T_CATEGORY, on=on, id="t4", valueCodeableConcept=cc("cT4", "http://cancerstaging.org",
                                                                          "cT4"), **extra)


class TestResectablePrimary:
    def test_t4_without_focus_after_the_pdac_fails(self):
        assert statuses(t4())["resectable-primary"] == "fail"

    def test_t4_without_focus_with_a_history_of_breast_cancer_asks(self):
        # "no other malignancy (as other-malignancy defines it, active or not …)": a Z85.3 history code is
        # one, so a T4 without focus might be that cancer's.
        history = condition("Z85.3", display="Personal history of malignant neoplasm of breast", clinical=None,
                            verification=None, onset=None, recorded=30)
        assert statuses(t4(), history)["resectable-primary"] == "unknown"

    def test_t4_without_focus_with_a_basal_cell_carcinoma_still_fails(self):
        bcc = condition("C44.91", display="Basal cell carcinoma of skin", onset=1000)
        assert statuses(t4(), bcc)["resectable-primary"] == "fail"

    def test_t4_older_than_the_pdac_says_nothing(self):
        assert statuses(t4(on=301))["resectable-primary"] == "unknown"

    def test_negated_arterial_involvement_does_not_fail(self):
        finding = observation("x", on=20,
                              valueCodeableConcept={"text": "No arterial involvement; SMA and celiac axis clear"})
        finding["code"] = {"text": "Pancreas protocol CT: vascular assessment"}
        assert statuses(finding)["resectable-primary"] == "unknown"

    @pytest.mark.parametrize(("text", "expected"), [
        ("Borderline resectable without arterial reconstruction", "unknown"),  # the inclusion's own words
        ("Arterial involvement: none", "unknown"),
        ("Not locally advanced", "unknown"),
        ("Locally advanced, unresectable", "fail"),
        ("No venous involvement; arterial involvement of the SMA", "fail"),
    ])
    def test_tumour_board_wording(self, text, expected):
        finding = observation("x", on=20, valueCodeableConcept={"text": text})
        finding["code"] = {"text": "Tumor board conclusion"}
        assert statuses(finding)["resectable-primary"] == expected


# --- second batch: old code systems, wording, medication shapes, dates ------------------------------

ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"


class TestSecondBatch:
    def test_icd9_only_pdac_and_liver_metastasis_by_display(self):
        # Legacy records (claims before 2015): ICD-9-CM 157.0 / 197.7; the displays name both.
        pdac = condition("157.0", ICD9, "Malignant neoplasm of head of pancreas", onset=300, id="pdac")
        met = condition("197.7", ICD9, "Secondary malignant neoplasm of liver", onset=290, id="liver-met")
        found = statuses(pdac=pdac, liver_met=met)
        assert found["pdac-diagnosis"] == "pass"
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"
        assert found["other-malignancy"] == "pass"

    def test_liver_and_intrahepatic_bile_duct_is_the_liver(self):
        met = condition(None, text="Secondary malignant neoplasm of liver and intrahepatic bile duct", onset=290,
                        id="liver-met")
        found = statuses(liver_met=met)
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"

    def test_metastatic_pancreatic_cancer_to_liver_and_peritoneum(self):
        both = condition(None, text="Metastatic pancreatic adenocarcinoma to liver and peritoneum", onset=300,
                         id="pdac")
        found = statuses(pdac=both, liver_met=None)
        assert found["pdac-diagnosis"] == "pass"
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "fail"
        assert found["other-malignancy"] == "pass"

    def test_peripancreatic_nodes_are_regional(self):
        nodes = condition(None, text="Metastasis to peripancreatic lymph nodes", onset=30)
        assert statuses(nodes)["extrahepatic-metastases"] == "pass"

    @pytest.mark.parametrize(("code", "display"), [
        ("C43.9", "Malignant melanoma of skin, unspecified"), ("C22.0", "Liver cell carcinoma"),
        ("C83.30", "Diffuse large B-cell lymphoma, unspecified site"), ("C24.1", "Malignant neoplasm of ampulla of Vater")])
    def test_active_other_cancers_fail(self, code, display):
        assert statuses(condition(code, display=display, onset=1500))["other-malignancy"] == "fail"

    def test_snomed_melanoma_of_skin_is_not_a_c44_skin_cancer(self):
        melanoma = condition("93655004", SNOMED, "Malignant melanoma of skin", onset=100)
        assert statuses(melanoma)["other-malignancy"] == "fail"

    def test_onset_string_and_age_are_legal(self):
        colon = condition("C18.7", onset=None, recorded=20, onsetString="childhood", id="colon-str")
        evaluation = evaluate(with_(colon))
        assert status(evaluation, "other-malignancy") == "fail"
        assert not notes_about(evaluation, "Condition/colon-str")

    def test_problem_list_pregnancy_older_than_270_days_is_ignored(self):
        preg = condition("Z34.90", clinical=None, verification=None, onset=300, category=EPIC_PROBLEM, id="preg")
        evaluation = evaluate(with_(preg))
        assert status(evaluation, "pregnancy") == "pass"
        assert notes_about(evaluation, "Condition/preg")

    def test_unresolved_medication_reference_by_display(self):
        prograf = med_request(None, 10, medicationCodeableConcept=None,
                              medicationReference={"reference": "Medication/not-here",
                                                   "display": "tacrolimus (PROGRAF) 1 mg capsule"})
        assert statuses(prograf)["immunosuppressants"] == "fail"

    @pytest.mark.parametrize(("days", "expected"), [(30, "fail"), (31, "pass")])
    def test_inpatient_administration_window(self, days, expected):
        given = {"resourceType": "MedicationAdministration", "id": "mycophenolate-given", "status": "completed",
                 "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when(days) + "T22:00:00-05:00",
                 "medicationCodeableConcept": cc("68149", RXNORM, "mycophenolate mofetil")}
        assert statuses(given)["immunosuppressants"] == expected

    def test_topical_route_snomed(self):
        cream = med_request(cc("42316", RXNORM, "tacrolimus"), 10,
                            dosageInstruction=[{"route": cc("6064005", SNOMED, "Topical route")}])
        assert statuses(cream)["immunosuppressants"] == "pass"

    def test_completed_course_long_ago_is_not_current(self):
        old = med_request(cc("42316", RXNORM, "tacrolimus"), 400, status="completed", bounds_start=400, bounds_end=200)
        assert statuses(old)["immunosuppressants"] == "pass"

    def test_chemo_for_the_pdac_by_reason_whatever_its_date(self):
        chemo = med_statement(cc("12574", RXNORM, "gemcitabine"), 400, id="chemo",
                              reasonReference=[{"reference": "Condition/pdac"}])
        assert statuses(chemo=chemo, status=disease_status("progression", 350, id="status"))["progression"] == "fail"

    def test_chemo_for_breast_cancer_never_counts(self):
        breast = condition("C50.911", onset=2000, clinical="resolved", id="breast")
        chemo = med_statement(cc("56946", RXNORM, "paclitaxel"), 100, id="chemo",
                              reasonReference=[{"reference": "Condition/breast"}])
        assert statuses(breast, chemo=chemo)["progression"] == "unknown"

    def test_status_focused_on_the_liver_metastasis_counts(self):
        worse = disease_status("progression", 5, id="status", focus=[{"reference": "Condition/liver-met"}])
        assert statuses(status=worse)["progression"] == "fail"

    def test_snomed_ct_procedure_with_period(self):
        ct = procedure("77477000", "Computerized axial tomography", None, id="ct-proc",
                       performedPeriod={"start": when(59) + "T10:00:00+01:00", "end": when(59) + "T10:20:00+01:00"})
        assert statuses(imaging=ct)["extrahepatic-metastases"] == "pass"

    def test_adverse_event_neuropathy_moderate(self):
        event = {"resourceType": "AdverseEvent", "id": "ae", "actuality": "actual", "subject": {"reference": "Patient/p1"},
                 "event": cc("10034620", "http://terminology.hl7.org/CodeSystem/mdr", "Peripheral sensory neuropathy"),
                 "date": when(30), "severity": cc("moderate", "http://terminology.hl7.org/CodeSystem/adverse-event-severity")}
        assert statuses(event)["neuropathy"] == "fail"


# --- third batch: status codings, whose record, the 730-day edge with offsets ----------------------

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
EPIC_LOCAL_STATUS = "urn:oid:1.2.840.114350.1.13.0.1.7.4.698084.30"


class TestThirdBatch:
    def test_standard_status_coding_wins_over_a_local_one_listed_first(self):
        # A 2010 breast cancer, resolved; the EHR lists its own status code first.
        breast = condition("C50.911", onset="2010-03-01", clinical=None)
        breast["clinicalStatus"] = {"coding": [coding("3", EPIC_LOCAL_STATUS, "Resolved"),
                                               coding("resolved", CLINICAL, "Resolved")], "text": "Resolved"}
        assert statuses(breast)["other-malignancy"] == "pass"

    def test_refuted_in_a_second_coding_is_never_evidence(self):
        lung = condition("C34.90", onset=30, verification=None)
        lung["verificationStatus"] = {"coding": [
            coding("9", EPIC_LOCAL_STATUS, "Ruled out"),
            coding("refuted", "http://terminology.hl7.org/CodeSystem/condition-ver-status", "Refuted")]}
        assert statuses(lung)["other-malignancy"] == "pass"

    def test_dstu2_style_plain_status_string(self):
        breast = condition("C50.911", onset="2010-03-01", clinical=None, clinicalStatus="resolved")
        assert statuses(breast)["other-malignancy"] == "pass"

    def test_another_patients_condition_is_not_read(self):
        other = condition("C50.911", onset=30, pid="someone-else")
        assert statuses(other)["other-malignancy"] == "pass"

    def test_absolute_subject_reference_is_this_patient(self):
        breast = condition("C50.911", onset=30)
        breast["subject"] = {"reference": "https://fhir.example.org/api/FHIR/R4/Patient/p1"}
        assert statuses(breast)["other-malignancy"] == "fail"

    @pytest.mark.parametrize(("recorded", "expected"), [
        ("2024-06-15T00:30:00+14:00", "fail"),     # written date = as-of − 730 days: inside
        ("2024-06-14T23:30:00-05:00", "unknown"),  # written date one day earlier: stale, asks
    ])
    def test_other_malignancy_visit_diagnosis_edge_with_offsets(self, recorded, expected):
        lung = epic_dx("C34.90", "Lung cancer", recorded=recorded)
        assert statuses(lung)["other-malignancy"] == expected

    def test_ecog_text_with_a_description_is_unreadable_not_malformed(self):
        row = flowsheet("ECOG Performance Status", {"valueString": "1 - Restricted in physically strenuous activity"},
                        loinc="89247-1")
        evaluation = evaluate(with_(ecog=row))
        assert status(evaluation, "ecog") == "unknown"
        assert not any("malformed" in n for n in notes_about(evaluation, "Observation/ps"))
        assert notes_about(evaluation, "Observation/ps")


# --- fourth batch: words that look like cancer, pregnancy or surgery but are not ---------------------

class TestLookAlikes:
    @pytest.mark.parametrize("text", [
        "Malignant hypertension", "Malignant essential hypertension", "Susceptibility to malignant hyperthermia",
        "Neuroleptic malignant syndrome", "Malignant otitis externa", "Malignant pleural effusion",
        "Malignant ascites", "Carcinoma of unknown primary site", "Hx of breast cancer", "H/O breast cancer",
        "Personal hx of colon cancer", "Breast cancer survivor", "Prostate cancer in remission",
        "S/p mastectomy for breast cancer",
    ])
    def test_problem_list_text_that_is_not_an_active_other_cancer(self, text):
        # Status-less problem-list items (active by the general rule), coded only by text or SNOMED.
        found = condition(None, text=text, clinical=None, verification=None, onset=None, recorded=20,
                          category=EPIC_PROBLEM)
        assert statuses(found)["other-malignancy"] != "fail"

    @pytest.mark.parametrize("text", ["Pancreatic cancer with liver mets", "Liver mets from pancreatic adenocarcinoma"])
    def test_liver_mets_abbreviation_passes_the_gate(self, text):
        both = condition(None, text=text, onset=300, id="pdac")
        found = statuses(pdac=both, liver_met=None)
        assert found["pdac-diagnosis"] == "pass"
        assert found["liver-metastases"] == "pass"

    @pytest.mark.parametrize("text", ["Secondary malignant neoplasm of liver, primary site pancreas",
                                      "Metastatic adenocarcinoma to liver, pancreatic primary"])
    def test_liver_metastasis_naming_its_pancreatic_primary_is_not_extrahepatic(self, text):
        met = condition(None, text=text, onset=290, id="liver-met")
        found = statuses(liver_met=met)
        assert found["liver-metastases"] == "pass"
        assert found["extrahepatic-metastases"] == "pass"
        assert found["other-malignancy"] == "pass"

    @pytest.mark.parametrize("text", ["Pregnancy test negative", "Not pregnant", "Pregnancy ruled out"])
    def test_pregnancy_look_alikes(self, text):
        found = condition(None, text=text, clinical=None, verification=None, onset=None, recorded=20)
        assert statuses(found)["pregnancy"] == "pass"

    @pytest.mark.parametrize(("value", "expected"), [
        ({"valueCodeableConcept": {"text": "Not breastfeeding"}}, "pass"),
        ({"valueBoolean": False}, "pass"),
        ({"valueCodeableConcept": cc("LA29253-4", LOINC, "Breastfeeding")}, "fail")])
    def test_breastfeeding_values(self, value, expected):
        feeding = observation("63895-7", on=20, **value)
        assert statuses(feeding)["pregnancy"] == expected

    @pytest.mark.parametrize("text", [
        "Thoracentesis", "Cystoscopy", "Arthroscopy of knee", "Left heart catheterization",
        "Bronchoscopy with biopsy", "Microwave ablation of liver lesion, percutaneous"])
    def test_minor_procedures_by_text(self, text):
        proc = procedure(None, text, 5, category=SURGICAL)
        assert statuses(proc)["recent-major-surgery"] == "pass"

    @pytest.mark.parametrize("text", ["Coronary artery bypass graft", "Total knee arthroplasty",
                                      "Partial hepatectomy", "Exploratory laparotomy"])
    def test_major_procedures_by_text(self, text):
        proc = procedure(None, text, 5)
        assert statuses(proc)["recent-major-surgery"] == "fail"

    @pytest.mark.parametrize(("value", "expected"), [(80, "unknown"), (7, "unknown"), (-1, "unknown")])
    def test_impossible_ecog_value_is_not_a_grade(self, value, expected):
        assert statuses(ecog=ecog(value, 10))["ecog"] == expected

    def test_pancreatic_primary_size_is_not_a_liver_lesion(self):
        primary = tumour_size(55, 10, body_site=cc("64163001", SNOMED, "Structure of head of pancreas"))
        assert statuses(lesions=[tumour_size(20, 10), primary])["liver-limited"] == "pass"

    def test_colon_tumour_at_the_hepatic_flexure_is_not_a_liver_lesion(self):
        colon = tumour_size(60, 10, body_site=cc("48338005", SNOMED, "Hepatic flexure of colon"))
        assert statuses(lesions=[tumour_size(20, 10), colon])["liver-limited"] == "pass"


class TestMedicalHistory:
    MEDICAL_HISTORY = [{"coding": [coding("medical-history", "http://open.epic.com/FHIR/StructureDefinition/condition-category",
                                          "Medical History")], "text": "Medical History"}]

    def test_recently_entered_past_medical_history_cancer_asks(self):
        # Entered into the history last month, no onset, no status: a past cancer, not an active one.
        breast = condition("C50.911", clinical=None, verification=None, onset=None, recorded=30,
                           category=self.MEDICAL_HISTORY)
        assert statuses(breast)["other-malignancy"] == "unknown"

    def test_past_medical_history_with_old_onset_passes(self):
        breast = condition("C50.911", clinical=None, verification=None, onset="2009", recorded=30,
                           category=self.MEDICAL_HISTORY)
        assert statuses(breast)["other-malignancy"] == "pass"

    def test_active_status_still_decides(self):
        breast = condition("C50.911", clinical="active", onset="2009", category=self.MEDICAL_HISTORY)
        assert statuses(breast)["other-malignancy"] == "fail"


class TestDrugNames:
    def test_temsirolimus_is_not_sirolimus(self):
        drug = med_request(cc(None, text="temsirolimus 25 mg/mL injection"), 5)
        assert statuses(drug)["immunosuppressants"] == "pass"

    def test_sirolimus_by_name_fails(self):
        drug = med_request(cc(None, text="sirolimus 1 mg tablet"), 5)
        assert statuses(drug)["immunosuppressants"] == "fail"

    def test_fluorouracil_cream_is_not_chemotherapy(self):
        # Gemcitabine from 100 days ago; a progression 200 days ago precedes it. A fluorouracil cream
        # (actinic keratoses) 280 days ago must not start "chemotherapy" and make that progression count.
        cream = med_statement(cc(None, text="fluorouracil 5 % Topical Cream"), 280)
        found = statuses(cream, chemo=med_statement(cc("12574", RXNORM, "gemcitabine"), 100, id="chemo"),
                         status=disease_status("progression", 200, id="status"))
        assert found["progression"] == "unknown"


class TestDuctalWithNeuroendocrineDifferentiation:
    ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"

    def test_coded_ductal_histology_wins_over_its_wording(self):
        histology = {"coding": [coding("8500/3", self.ICDO3, "Infiltrating duct carcinoma")],
                     "text": "Ductal adenocarcinoma with focal neuroendocrine differentiation"}
        pdac = condition("C25.0", onset=300, id="pdac", histology=histology)
        assert statuses(pdac=pdac)["pdac-diagnosis"] == "pass"

    def test_text_naming_the_ductal_histology_is_pdac(self):
        pdac = condition(None, text="Pancreatic ductal adenocarcinoma with neuroendocrine differentiation", onset=300,
                         id="pdac")
        assert statuses(pdac=pdac)["pdac-diagnosis"] == "pass"

    def test_neuroendocrine_histology_still_fails(self):
        histology = {"coding": [coding("8246/3", self.ICDO3, "Neuroendocrine carcinoma")]}
        pdac = condition("C25.0", onset=300, id="pdac", histology=histology)
        assert statuses(pdac=pdac)["pdac-diagnosis"] == "fail"
        text_only = condition(None, text="Pancreatic neuroendocrine tumour", onset=300, id="pdac")
        assert statuses(pdac=text_only)["pdac-diagnosis"] == "fail"


class TestOidsEverywhere:
    """Every reader goes through one normalisation: canonical URI or HL7 OID, in any letter case."""

    def test_upper_case_oids_in_every_reader(self):
        found = statuses(
            pdac=condition("C25.0", "URN:OID:2.16.840.1.113883.6.90", onset=300, id="pdac"),
            liver_met=condition("94381002", "urn:OID:2.16.840.1.113883.6.96", onset=290, id="liver-met"),
            ecog=observation("89247-1", "URN:OID:2.16.840.1.113883.6.1", on=10, valueInteger=1),
            imaging=imaging_study(None, 20) | {"modality": [coding("CT", "URN:OID:1.2.840.10008.2.16.4")]},
            chemo=med_statement(cc("12574", "urn:oid:2.16.840.1.113883.6.88", "gemcitabine"), 200, id="chemo"),
        )
        assert [found[c] for c in ("pdac-diagnosis", "liver-metastases", "ecog", "extrahepatic-metastases",
                                   "progression")] == ["pass"] * 5

    def test_rxnorm_oid_immunosuppressant_and_cpt_oid_surgery(self):
        tacrolimus = med_request(cc("42316", "urn:oid:2.16.840.1.113883.6.88"), 5)
        colectomy = procedure("44140", None, 5, system="urn:oid:2.16.840.1.113883.6.12")
        found = statuses(tacrolimus, colectomy)
        assert found["immunosuppressants"] == "fail"
        assert found["recent-major-surgery"] == "fail"

    def test_atc_oid(self):
        aza = med_statement(cc("L04AX01", "urn:oid:2.16.840.1.113883.6.73"), 10)
        assert statuses(aza)["immunosuppressants"] == "fail"

    def test_swedish_snomed_edition_in_the_system(self):
        met = condition("94381002", "http://snomed.info/sct/45991000052106", onset=290, id="liver-met")
        assert statuses(liver_met=met)["liver-metastases"] == "pass"


class TestSyntheaProcedures:
    @pytest.mark.parametrize(("code", "display", "expected"), [
        ("18286008", "Catheter ablation of tissue of heart (procedure)", "pass"),
        ("415070008", "Percutaneous coronary intervention (procedure)", "pass"),
        ("169553002", "Insertion of subcutaneous contraceptive (procedure)", "pass"),
        ("274031008", "Rectal polypectomy (procedure)", "pass"),
        ("73761001", "Colonoscopy (procedure)", "pass"),
        ("80146002", "Appendectomy (procedure)", "fail"),
        ("232717009", "Coronary artery bypass grafting (procedure)", "fail"),
        ("52734007", "Total replacement of hip (procedure)", "fail"),
    ])
    def test_synthea_procedure_codes(self, code, display, expected):
        assert statuses(procedure(code, display, 5))["recent-major-surgery"] == expected


class TestCancerWithoutAnotherSite:
    @pytest.mark.parametrize(("code", "display"), [
        ("363346000", "Malignant neoplastic disease (disorder)"), (None, "Cancer"), (None, "Malignancy"),
        (None, "Carcinoma, NOS"), ("35917007", "Adenocarcinoma"), (None, "Cancer (HCC)"),
        (None, "Cancer pain"), (None, "Cancer-related fatigue"), (None, "At risk for cancer"),
        (None, "Fear of cancer recurrence"), (None, "Hypercalcemia of malignancy-associated"),
    ])
    def test_no_other_site_named_is_not_another_malignancy(self, code, display):
        found = condition(code, SNOMED, display, text=None if code else display, onset=30)
        assert statuses(found)["other-malignancy"] == "pass"

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("C22.9", ICD10, "Malignant neoplasm of liver, not specified as primary or secondary"),
        ("93870000", SNOMED, "Malignant neoplasm of liver (disorder)"),
        (None, SNOMED, "Liver cancer")])
    def test_liver_cancer_not_stated_primary_asks(self, code, system, display):
        found = condition(code, system, display, text=None if code else display, onset=30)
        evaluation = evaluate(with_(found))
        assert status(evaluation, "other-malignancy") == "unknown"

    @pytest.mark.parametrize(("code", "display"), [("C22.0", "Liver cell carcinoma"),
                                                   (None, "Hepatocellular carcinoma"),
                                                   (None, "Cholangiocarcinoma"),
                                                   ("C50.911", "Cancer")])
    def test_named_primary_liver_cancer_and_coded_sites_still_fail(self, code, display):
        found = condition(code, ICD10, display, text=None if code else display, onset=30)
        assert statuses(found)["other-malignancy"] == "fail"

    def test_mcode_generic_code_with_pancreas_body_site_is_the_pdac(self):
        pdac = condition("363346000", SNOMED, "Malignant neoplastic disease (disorder)", onset=300, id="pdac",
                         body_site=[cc("15776009", SNOMED, "Pancreatic structure")],
                         profile="mcode-primary-cancer-condition")
        found = statuses(pdac=pdac)
        assert found["pdac-diagnosis"] == "pass"
        assert found["other-malignancy"] == "pass"

    def test_mcode_generic_code_with_breast_body_site_is_another_malignancy(self):
        breast = condition("363346000", SNOMED, "Malignant neoplastic disease (disorder)", onset=30,
                           body_site=[cc("80248007", SNOMED, "Left breast structure")])
        assert statuses(breast)["other-malignancy"] == "fail"


class TestPregnancyStatusShapes:
    PREGNANCY = staticmethod(lambda: epic_dx("Z34.90", "Supervision of normal pregnancy", recorded=100))

    @pytest.mark.parametrize("value", [
        {"valueCodeableConcept": cc("LA26683-5", LOINC, "Not pregnant")},
        {"valueCodeableConcept": {"text": "Not pregnant"}},
        {"valueString": "No"},
        {"valueCodeableConcept": cc("60001007", SNOMED_OID, "Not pregnant")}])
    def test_newer_not_pregnant_in_any_shape_overrides_the_visit_diagnosis(self, value):
        assert statuses(self.PREGNANCY(), observation("82810-3", on=20, **value))["pregnancy"] == "pass"

    @pytest.mark.parametrize("value", [{"valueCodeableConcept": cc("LA15173-0", LOINC, "Pregnant")},
                                       {"valueCodeableConcept": {"text": "Pregnant"}}])
    def test_pregnant_in_loinc_answer_or_text(self, value):
        assert statuses(observation("82810-3", on=20, **value))["pregnancy"] == "fail"

    def test_unknown_is_not_pregnant_nor_an_override(self):
        unknown = observation("82810-3", on=20, valueCodeableConcept=cc("LA4489-6", LOINC, "Unknown"))
        assert statuses(unknown)["pregnancy"] == "pass"
        assert statuses(self.PREGNANCY(), unknown)["pregnancy"] == "fail"


class TestDoNotPerform:
    def test_do_not_perform_order_is_never_evidence(self):
        order = med_request(cc("42316", RXNORM, "tacrolimus"), 5, doNotPerform=True, id="dnp")
        evaluation = evaluate(with_(order))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert notes_about(evaluation, "MedicationRequest/dnp")


class TestLiverAssessmentWindow:
    @pytest.mark.parametrize(("older", "expected"), [(40, "fail"), (41, "pass")])
    def test_measurements_within_30_days_of_the_newest_form_the_assessment(self, older, expected):
        # Four lesions measured 10 days ago; a fifth measured `older` days ago belongs to the same
        # assessment only within 30 days of the newest measurement (inclusive).
        lesions = [tumour_size(10, 10) for _ in range(4)] + [tumour_size(10, older)]
        assert statuses(lesions=lesions)["liver-limited"] == expected

    def test_one_lesion_measured_twice_by_focus_counts_once_with_its_newest_value(self):
        from .builders import body_structure
        lesion = body_structure(id="seg7")
        measurements = [tumour_size(55, 20, focus=lesion, body_site=None), tumour_size(45, 10, focus=lesion, body_site=None)]
        assert statuses(lesion, lesions=measurements)["liver-limited"] == "pass"


# --- the same shapes through `trialcds evaluate --format json` (a searchset as an EHR pages it) -----

def _epic_searchset(resources: list[dict]) -> dict:
    base = "https://fhir.epic.example/api/FHIR/R4/"
    entries = [{"fullUrl": base + f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
               for r in resources]
    entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "warning", "code": "processing", "diagnostics": "Some results may be hidden"}]},
                    "search": {"mode": "outcome"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources), "entry": entries}


def test_epic_shaped_searchset_through_the_cli(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    resources = with_(
        epic_dx("C50.911", "Malignant neoplasm of right female breast (HCC)", recorded="2016-03-02T09:15:00-05:00",
                id="breast-2016"),
        epic_dx("Z34.90", "Supervision of normal pregnancy", recorded="2021-06-02", id="preg-2021"),
        epic_dx("A41.9", "Sepsis (HCC)", recorded=200, id="sepsis-old"),
        observation("89247-1", LOINC_OID, on=3, id="ecog-declined",
                    dataAbsentReason=cc("asked-declined", "http://terminology.hl7.org/CodeSystem/data-absent-reason")),
        {"resourceType": "Coverage", "id": "cov", "status": "active", "beneficiary": {"reference": "Patient/p1"}},
        {"resourceType": "Claim", "id": "claim", "status": "active", "patient": {"reference": "Patient/p1"}},
        med_request(None, 10, id="ciclo-eye", medicationCodeableConcept=None,
                    medicationReference={"reference": "Medication/not-sent",
                                         "display": "cycloSPORINE (RESTASIS) 0.05 % ophthalmic emulsion"}),
    )
    bundle = tmp_path / "epic.json"
    bundle.write_text(json.dumps(_epic_searchset(resources)))
    done = subprocess.run([sys.executable, "-m", "cds_service", "evaluate", "--bundle", str(bundle), "--as-of",
                           AS_OF.isoformat(), "--format", "json"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    found = {c["id"]: c["status"] for c in out["criteria"]}
    assert found["other-malignancy"] == "unknown"   # a 2016 visit diagnosis asks, never excludes
    assert found["pregnancy"] == "pass"             # a 2021 pregnancy visit is ignored
    assert found["active-infection"] == "pass"      # a 200-day-old sepsis visit is ignored
    assert found["immunosuppressants"] == "pass"    # eye drops
    assert out["verdict"] == "needs-review"
    notes = out.get("notes", [])
    assert not any("malformed" in n for n in notes)
    assert not any(word in n for n in notes for word in ("Coverage", "Claim", "OperationOutcome"))
    assert any(n.startswith("Condition/preg-2021") and "older than 270 days" in n for n in notes)
    assert any(n.startswith("Condition/sepsis-old") and "not counted as active" in n for n in notes)
    assert any(n.startswith("Observation/ecog-declined") and "no value (dataAbsentReason: asked-declined)" in n
               for n in notes)


def test_mcode_stu3_history_of_metastatic_cancer_to_liver_as_a_condition_passes_the_gate():
    # mCODE STU3+ records "history of metastatic cancer" as a Condition; code only, no display.
    history = condition("1098951000119108", SNOMED, onset=290, id="liver-met",
                        profile="mcode-history-of-metastatic-cancer")
    found = statuses(liver_met=history)
    assert found["liver-metastases"] == "pass"
    assert found["extrahepatic-metastases"] == "pass"
    assert found["other-malignancy"] == "pass"


@pytest.mark.parametrize(("system", "code"), [("2.16.840.1.113883.6.90", "C25.0"), ("ICD-10-CM", "C250"),
                                              ("SNOMED-CT", "363418001"), ("2.16.840.1.113883.6.96", "700423003")])
def test_bare_oids_and_system_names_from_converters(system, code):
    assert statuses(pdac=condition(code, system, onset=300, id="pdac"))["pdac-diagnosis"] == "pass"


@pytest.mark.parametrize("system", ["1.2.840.10008.2.16.4", "DCM"])
def test_bare_dicom_oid_and_designator(system):
    study = imaging_study(None, 20) | {"modality": [coding("CT", system)]}
    assert statuses(imaging=study)["extrahepatic-metastases"] == "pass"


@pytest.mark.parametrize("system", ["http://hl7.se/fhir/CodeSystem/icd-10-se", "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
                                    "http://www.cms.gov/Medicare/Coding/ICD10"])
def test_national_icd10_editions_at_the_swedish_site_and_elsewhere(system):
    # A Swedish display the keyword rules cannot read: only the code can decide.
    pdac = condition("C25.0", system, "Malign tumör i pankreas huvud", onset=300, id="pdac")
    met = condition("C78.7", system, "Sekundär malign tumör i levern", onset=290, id="liver-met")
    found = statuses(pdac=pdac, liver_met=met)
    assert (found["pdac-diagnosis"], found["liver-metastases"]) == ("pass", "pass")


def test_icd10_pcs_is_not_icd10():
    # ICD-10-PCS "0FB00ZX" is a liver biopsy procedure code; as a diagnosis system it must not be read as ICD-10.
    from fhir_mappings.codes import ICD10 as ICD10_SHORT, normalise_system
    assert normalise_system("http://www.cms.gov/Medicare/Coding/ICD10PCS") != ICD10_SHORT
    assert normalise_system("http://hl7.org/fhir/sid/icd-10-pcs") != ICD10_SHORT


@pytest.mark.parametrize("text", [
    "Metastatic pancreatic cancer (liver)", "Liver lesions consistent with metastases", "Secondary liver cancer",
    "Metastases: liver", "Oligometastatic pancreatic cancer (liver)", "Liver mets", "Hepatic mets",
    "Metastatic lesions in the liver", "Liver secondaries"])
def test_free_text_liver_metastasis_in_any_word_order_passes_the_gate(text):
    found = statuses(liver_met=condition(None, text=text, onset=290, id="liver-met"))
    assert found["liver-metastases"] == "pass"
    assert found["extrahepatic-metastases"] == "pass"


@pytest.mark.parametrize("text", ["Liver: no metastases", "Liver free of metastases",
                                  "Hepatic flexure metastasis"])
def test_liver_wording_that_denies_or_is_not_the_liver(text):
    assert statuses(liver_met=condition(None, text=text, onset=290, id="liver-met"))["liver-metastases"] == "fail"


@pytest.mark.parametrize(("text", "expected"), [
    ("Pancreatic ca", "pass"), ("Ca pancreas", "pass"), ("Ca head of pancreas", "pass"), ("Pancreatic adenoCA", "pass"),
    ("Pancreatic mass, CA 19-9 elevated", "fail"), ("Pancreatic calcifications", "fail")])
def test_pancreatic_ca_shorthand(text, expected):
    assert statuses(pdac=condition(None, text=text, onset=300, id="pdac"))["pdac-diagnosis"] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Metastasis to liver and celiac nodes", "pass"), ("Metastasis to liver and peripancreatic nodes", "pass"),
    ("Metastases to liver and portal lymph nodes", "pass"), ("Metastasis to liver, segment VII and VIII", "pass"),
    ("Metastatic to liver, suspected lung", "pass"), ("Metastasis to liver and lung nodules", "fail"),
    ("Metastasis to liver and supraclavicular nodes", "fail"), ("Metastasis to liver and lung", "fail")])
def test_sites_beside_the_liver(text, expected):
    found = statuses(liver_met=condition(None, text=text, onset=290, id="liver-met"))
    assert (found["liver-metastases"], found["extrahepatic-metastases"]) == ("pass", expected)


def test_recent_survivorship_visit_of_a_cancer_the_problem_list_says_is_resolved_asks():
    # Problem list: breast cancer 2010, resolved. Visits last month coded with the cancer's own code (no status).
    label = "Malignant neoplasm of right female breast"
    resolved = condition("C50.911", display=label, onset="2010-03-01", clinical="resolved", category=EPIC_PROBLEM)
    visit = epic_dx("C50.911", label, recorded=30, imo=None)
    visit["code"]["text"] = label
    assert statuses(resolved, visit)["other-malignancy"] == "unknown"
    assert statuses(visit)["other-malignancy"] == "fail"  # without the resolved record: active by the window
