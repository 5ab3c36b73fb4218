"""Spec revision 2 — Observations, imaging, procedures and medicines in the shapes real EHRs send.

Each rule is tested at its edges (the day inside and the day outside each window), and through the
whole evaluation, so a mapping and the criterion reading it are checked together.
"""

from __future__ import annotations

import pytest

from tests.core.builders import (
    AS_OF, LOINC, SNOMED, SURGICAL, TACROLIMUS, GEMCITABINE, cc, coding, condition, disease_status, ecog, eligible,
    evaluate, evidence, imaging_study, med_admin, med_request, med_statement, notes_about, observation, procedure,
    status, when,
)

CPT = "http://www.ama-assn.org/go/cpt"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
EPIC_FLOWSHEET = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"
DAR = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def with_(*extra: dict, **replace) -> list[dict]:
    return eligible(**replace) + list(extra)


def notes(evaluation) -> str:
    return "\n".join(evaluation.notes)


# --- performance status ----------------------------------------------------------------------------

def performance(code: str = "89247-1", system: str = LOINC, on: int | str = 10, **value) -> dict:
    return observation(code, system, on=on, id="ps", **value)


class TestPerformanceStatusShapes:
    @pytest.mark.parametrize(("value", "expected"), [
        ({"valueString": "1"}, "pass"), ({"valueString": "ECOG 1"}, "pass"), ({"valueString": "ECOG: 0"}, "pass"),
        ({"valueString": " 3 "}, "fail"), ({"valueString": "WHO 1"}, "pass"), ({"valueCodeableConcept": {"text": "ECOG 2"}}, "unknown"),
        ({"valueCodeableConcept": {"text": "4"}}, "fail"), ({"valueQuantity": {"value": 1}}, "pass"),
    ])
    def test_ecog_written_as_text(self, value, expected):
        evaluation = evaluate(eligible(ecog=performance(**value)))
        assert status(evaluation, "ecog") == expected
        assert "Observation/ps" in evidence(evaluation, "ecog")
        assert not notes_about(evaluation, "Observation/ps")

    @pytest.mark.parametrize("text", ["1-2", "ECOG 1 or 2", "fit", "ECOG one", "<2"])
    def test_unreadable_text_is_noted_never_malformed(self, text):
        evaluation = evaluate(eligible(ecog=performance(valueString=text)))
        assert status(evaluation, "ecog") == "unknown"
        found = notes_about(evaluation, "Observation/ps")
        assert found and "unreadable value" in found[0] and "malformed" not in found[0]

    def test_old_loinc_89262_0(self):
        evaluation = evaluate(eligible(ecog=performance("89262-0", valueInteger=3)))
        assert status(evaluation, "ecog") == "fail"

    @pytest.mark.parametrize(("finding", "expected"), [
        ("425389002", "pass"), ("422512005", "pass"), ("422894000", "unknown"), ("423053003", "fail"),
        ("423237006", "fail"), ("423409001", "fail")])
    def test_snomed_ecog_grade_finding_as_value(self, finding, expected):
        observed = performance("423740007", SNOMED, valueCodeableConcept=cc(finding, SNOMED))
        assert status(evaluate(eligible(ecog=observed)), "ecog") == expected

    @pytest.mark.parametrize(("finding", "expected"), [("422512005", "pass"), ("423053003", "fail")])
    def test_snomed_ecog_grade_finding_as_the_code(self, finding, expected):
        # The finding itself is the Observation's code: no value at all.
        assert status(evaluate(eligible(ecog=performance(finding, SNOMED))), "ecog") == expected

    @pytest.mark.parametrize(("answer", "expected"), [("LA9623-5", "pass"), ("LA9625-0", "fail")])
    def test_loinc_answer_in_interpretation(self, answer, expected):
        observed = performance(interpretation=[cc(answer, LOINC)])
        assert status(evaluate(eligible(ecog=observed)), "ecog") == expected

    def test_epic_flowsheet_row_with_local_code_and_loinc(self):
        row = observation("89247-1", on=5, id="ps", valueString="1") | {
            "code": {"coding": [coding("304500", EPIC_FLOWSHEET, "ECOG PERFORMANCE STATUS"), coding("89247-1", LOINC)],
                     "text": "ECOG Performance Status"}}
        assert status(evaluate(eligible(ecog=row)), "ecog") == "pass"

    def test_flowsheet_row_with_only_a_local_code_named_ecog(self):
        row = observation("x", on=5, id="ps", valueString="3") | {
            "code": {"coding": [coding("304500", EPIC_FLOWSHEET, "ECOG score")]}}
        assert status(evaluate(eligible(ecog=row)), "ecog") == "fail"

    def test_a_local_row_not_named_for_a_scale_is_not_read(self):
        row = observation("x", on=5, id="ps", valueString="3") | {
            "code": {"coding": [coding("11", EPIC_FLOWSHEET, "Pain score")]}}
        assert status(evaluate(eligible(ecog=row)), "ecog") == "unknown"

    @pytest.mark.parametrize(("value", "expected"), [
        ({"valueString": "80%"}, "pass"), ({"valueString": "Karnofsky 80"}, "pass"), ({"valueString": "KPS 40"}, "fail"),
        ({"valueQuantity": {"value": 90, "unit": "%", "code": "%"}}, "pass"), ({"valueInteger": 60}, "unknown"),
        ({"valueCodeableConcept": {"text": "70 %"}}, "pass")])
    def test_karnofsky_as_integer_percentage_or_text(self, value, expected):
        assert status(evaluate(eligible(ecog=performance("89243-0", **value))), "ecog") == expected

    def test_karnofsky_unreadable_percentage_is_noted(self):
        evaluation = evaluate(eligible(ecog=performance("89243-0", valueString="150%")))
        assert status(evaluation, "ecog") == "unknown"
        assert "unreadable value" in notes(evaluation)

    @pytest.mark.parametrize(("days", "expected"), [(90, "pass"), (91, "unknown")])
    def test_window_edges_with_text_value(self, days, expected):
        assert status(evaluate(eligible(ecog=performance(on=days, valueString="ECOG 1"))), "ecog") == expected

    def test_data_absent_reason_is_no_value_not_malformed(self):
        absent = performance(dataAbsentReason=cc("not-performed", DAR))
        evaluation = evaluate(eligible(ecog=absent))
        assert status(evaluation, "ecog") == "unknown"
        found = notes_about(evaluation, "Observation/ps")
        assert found and "no value (dataAbsentReason: not-performed)" in found[0]
        assert "malformed" not in notes(evaluation)

    @pytest.mark.parametrize(("value", "expected_note"), [
        ({}, "no value"), ({"valueBoolean": True}, "unreadable value"),
        ({"valueCodeableConcept": {"coding": [coding("E9", EPIC_FLOWSHEET)]}}, "unreadable value")])
    def test_legal_fhir_without_a_usable_number_is_never_malformed(self, value, expected_note):
        evaluation = evaluate(eligible(ecog=performance(**value)))
        assert status(evaluation, "ecog") == "unknown"
        found = notes_about(evaluation, "Observation/ps")
        assert found and expected_note in found[0] and "malformed" not in found[0]

    def test_a_local_coded_answer_read_by_its_one_display(self):
        answer = {"coding": [coding("E1", EPIC_FLOWSHEET, "ECOG 1")]}
        assert status(evaluate(eligible(ecog=performance(valueCodeableConcept=answer))), "ecog") == "pass"

    def test_data_absent_reason_does_not_hide_an_older_reading(self):
        older = ecog(1, 20, id="older")
        evaluation = evaluate(eligible(ecog=[older, performance(on=5, dataAbsentReason=cc("asked-declined", DAR))]))
        assert status(evaluation, "ecog") == "pass"
        assert evidence(evaluation, "ecog") == ["Observation/older"]


class TestOtherNumbersThroughTheOneReader:
    def test_ca19_9_as_text(self):
        marker = observation("24108-3", on=10, id="ca", valueString="45 U/mL")
        evaluation = evaluate(with_(marker))
        assert evaluation.facts["ca19_9"]["latest"]["value"] == 45.0

    def test_ca19_9_unreadable_is_noted(self):
        marker = observation("24108-3", on=10, id="ca", valueString="see report")
        evaluation = evaluate(with_(marker))
        assert evaluation.facts["ca19_9"] is None
        assert "unreadable value" in notes_about(evaluation, "Observation/ca")[0]

    @pytest.mark.parametrize(("text", "expected"), [("2.3 cm", "pass"), ("5,1 cm", "fail"), ("49 mm", "pass")])
    def test_lesion_size_as_text(self, text, expected):
        lesion = observation("21889-1", on=10, id="lesion", bodySite=cc("10200004", SNOMED, "Liver"),
                             component=[{"code": cc("33728-7", LOINC), "valueString": text}])
        evaluation = evaluate(eligible(lesions=[lesion]))
        assert status(evaluation, "liver-limited") == expected


# --- staging imaging ------------------------------------------------------------------------------

def report(code: dict, on: int | None = 20, *, category: list[dict] | None = None, status_: str = "final",
           **extra) -> dict:
    resource = {"resourceType": "DiagnosticReport", "id": "rep", "status": status_,
                "subject": {"reference": "Patient/p1"}, "code": code}
    if category is not None:
        resource["category"] = category
    if on is not None:
        resource["effectiveDateTime"] = when(on)
    return resource | extra


RAD = [cc("RAD", V2_0074, "Radiology")]


class TestStagingImaging:
    def test_imaging_study_modality_under_the_dicom_oid(self):
        study = imaging_study(None, 20, id="ct") | {"modality": [coding("CT", "urn:oid:1.2.840.10008.2.16.4")]}
        evaluation = evaluate(eligible(imaging=study))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert evaluation.facts["stagingImaging"]["ref"] == "ImagingStudy/ct"

    def test_synthea_imaging_study(self):
        # Synthea 3.x: the DICOM CID 29 web page as the system, the SNOMED procedure in procedureCode.
        synthea_dicom = "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_29.html"
        study = imaging_study(None, 20, id="ct") | {"series": [{"uid": "1", "modality": coding("CT", synthea_dicom)}]}
        assert status(evaluate(eligible(imaging=study)), "extrahepatic-metastases") == "pass"
        by_procedure = imaging_study(None, 20, id="ct") | {"procedureCode": [cc(
            "418891003", SNOMED, "Computed tomography of chest and abdomen (procedure)")]}
        assert status(evaluate(eligible(imaging=by_procedure)), "extrahepatic-metastases") == "pass"
        xray = imaging_study(None, 20) | {"series": [{"uid": "1", "modality": coding("DX", synthea_dicom)}],
                                           "procedureCode": [cc("241046008", SNOMED, "Dental X-ray bitewing")]}
        assert status(evaluate(eligible(imaging=xray)), "extrahepatic-metastases") == "unknown"

    def test_series_modality_under_the_dicom_oid(self):
        study = imaging_study(None, 20, id="mr", series=[{"uid": "1", "modality": coding("MR", "urn:oid:1.2.840.10008.2.16.4")}])
        assert status(evaluate(eligible(imaging=study)), "extrahepatic-metastases") == "pass"

    @pytest.mark.parametrize(("days", "expected"), [(60, "pass"), (61, "unknown")])
    def test_radiology_report_window_edges(self, days, expected):
        rep = report(cc("36813-4", LOINC, "CT Abdomen and Pelvis W contrast"), days, category=RAD)
        evaluation = evaluate(eligible(imaging=rep))
        assert status(evaluation, "extrahepatic-metastases") == expected
        if expected == "pass":
            assert evidence(evaluation, "extrahepatic-metastases") == ["DiagnosticReport/rep"]

    @pytest.mark.parametrize("category", [
        [cc("LP29684-5", LOINC, "Radiology")], [cc("CT", V2_0074)], [cc("NMR", V2_0074)], None])
    def test_report_categories_and_no_category(self, category):
        rep = report(cc(None, text="MRI abdomen with and without contrast"), 20, category=category)
        assert status(evaluate(eligible(imaging=rep)), "extrahepatic-metastases") == "pass"

    @pytest.mark.parametrize("category", [
        [cc("IMG", "urn:oid:1.2.840.114350.1.13.0.1.7.10.798268.30", "Imaging")],
        [cc("RAD", "http://hl7.org/fhir/v2/0074", "Radiology")],
        [cc("LP29684-5", "urn:oid:2.16.840.1.113883.6.1", "Radiology"), cc("x", "urn:oid:1.2.3", "Outside result")]])
    def test_epic_and_older_category_shapes(self, category):
        rep = report(cc("IMG1234", "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.1", "CT ABDOMEN PELVIS W CONTRAST"), 20,
                     category=category)
        assert status(evaluate(eligible(imaging=rep)), "extrahepatic-metastases") == "pass"

    def test_an_unknown_local_category_is_read_by_the_code(self):
        rep = report(cc(None, text="MRI LIVER W WO CONTRAST"), 20, category=[cc("OUT", "urn:oid:1.2.3", "Outside")])
        assert status(evaluate(eligible(imaging=rep)), "extrahepatic-metastases") == "pass"

    def test_a_local_laboratory_category_is_not_imaging(self):
        rep = report(cc(None, text="CT/NG PCR"), 20, category=[cc("LAB", "urn:oid:1.2.3", "Laboratory")])
        assert status(evaluate(eligible(imaging=rep)), "extrahepatic-metastases") == "unknown"

    def test_pet_report(self):
        rep = report(cc("44139-4", LOINC, "PET-CT whole body"), 20, category=[cc("NMS", V2_0074)])
        evaluation = evaluate(eligible(imaging=rep))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert set(evaluation.facts["stagingImaging"]["modalities"]) >= {"PT"}

    def test_issued_when_no_effective_date(self):
        inside = report(cc(None, text="CT chest"), None, category=RAD, issued=when(59) + "T23:10:00-05:00")
        outside = report(cc(None, text="CT chest"), None, category=RAD, issued=when(61) + "T01:00:00+01:00")
        assert status(evaluate(eligible(imaging=inside)), "extrahepatic-metastases") == "pass"
        assert status(evaluate(eligible(imaging=outside)), "extrahepatic-metastases") == "unknown"

    @pytest.mark.parametrize("report_status", ["registered", "partial", "cancelled", "entered-in-error"])
    def test_unfinished_reports_do_not_count(self, report_status):
        rep = report(cc(None, text="CT abdomen"), 20, category=RAD, status_=report_status)
        evaluation = evaluate(eligible(imaging=rep))
        assert status(evaluation, "extrahepatic-metastases") == "unknown"
        assert notes_about(evaluation, "DiagnosticReport/rep")

    def test_ultrasound_report_is_not_cross_sectional(self):
        rep = report(cc(None, text="US abdomen"), 20, category=RAD)
        assert status(evaluate(eligible(imaging=rep)), "extrahepatic-metastases") == "unknown"

    def test_a_lab_report_naming_ct_is_not_imaging(self):
        rep = report(cc(None, text="Chlamydia trachomatis (CT) NAAT"), 20, category=[cc("LAB", V2_0074)])
        evaluation = evaluate(eligible(imaging=rep))
        assert status(evaluation, "extrahepatic-metastases") == "unknown"
        assert not notes_about(evaluation, "DiagnosticReport/rep")

    @pytest.mark.parametrize(("code", "system", "display"), [
        ("74177", CPT, "CT abdomen and pelvis with contrast"), ("74178", CPT_OID, None),
        ("74183", CPT, "MRI abdomen without and with contrast"), ("78815", CPT, "PET with concurrently acquired CT"),
        ("71260", CPT, None), ("77477000", SNOMED, "Computed tomography"), ("82918005", SNOMED, "PET scan"),
        ("450436003", SNOMED, None), ("113091000", "urn:oid:2.16.840.1.113883.6.96", "MRI")])
    def test_imaging_procedures(self, code, system, display):
        done = procedure(code, display, 20, system=system, id="scan")
        evaluation = evaluate(eligible(imaging=done))
        assert status(evaluation, "extrahepatic-metastases") == "pass"
        assert "Procedure/scan" in evidence(evaluation, "extrahepatic-metastases")
        assert status(evaluation, "recent-major-surgery") == "pass"

    def test_cpt_radiology_code_not_listed_read_by_display(self):
        done = procedure("74176", "CT abdomen and pelvis without contrast", 20, system=CPT)
        assert status(evaluate(eligible(imaging=done)), "extrahepatic-metastases") == "pass"

    @pytest.mark.parametrize(("days", "expected"), [(60, "pass"), (61, "unknown")])
    def test_imaging_procedure_window_edges(self, days, expected):
        done = procedure("74177", "CT abdomen and pelvis with contrast", days, system=CPT)
        assert status(evaluate(eligible(imaging=done)), "extrahepatic-metastases") == expected

    def test_a_scan_not_completed_does_not_count(self):
        done = procedure("74177", "CT abdomen and pelvis", 20, system=CPT, status="in-progress")
        assert status(evaluate(eligible(imaging=done)), "extrahepatic-metastases") == "unknown"

    def test_free_text_procedure_naming_a_ct(self):
        done = procedure(None, "CT chest abdomen pelvis with contrast", 20)
        assert status(evaluate(eligible(imaging=done)), "extrahepatic-metastases") == "pass"

    @pytest.mark.parametrize(("days", "expected"), [(60, "pass"), (61, "unknown")])
    def test_imaging_study_dated_by_its_series_only(self, days, expected):
        study = imaging_study("CT", None) | {"series": [{"uid": "1", "modality": coding("CT", "http://dicom.nema.org/resources/ontology/DCM"),
                                                       "started": when(days) + "T10:00:00+01:00"}]}
        assert status(evaluate(eligible(imaging=study)), "extrahepatic-metastases") == expected

    @pytest.mark.parametrize("display", ["CT guided biopsy of liver", "CT-guided drainage of abscess"])
    def test_free_text_guided_procedures_are_not_staging_imaging(self, display):
        assert status(evaluate(eligible(imaging=procedure(None, display, 20))), "extrahepatic-metastases") == "unknown"

    def test_a_ct_guided_biopsy_is_not_staging_imaging(self):
        done = procedure("432231006", "CT guided biopsy of liver", 20)
        assert status(evaluate(eligible(imaging=done)), "extrahepatic-metastases") == "unknown"


# --- immunosuppressants ---------------------------------------------------------------------------

CICLOSPORIN_EYE = cc("378883", "http://www.nlm.nih.gov/research/umls/rxnorm",
                     "cyclosporine 0.5 MG/ML Ophthalmic Emulsion")
TACROLIMUS_OINTMENT = cc("308047", "http://www.nlm.nih.gov/research/umls/rxnorm", "tacrolimus 0.1 % Topical Ointment")
TACROLIMUS_CAPSULE = cc("198377", "http://www.nlm.nih.gov/research/umls/rxnorm", "tacrolimus 1 MG Oral Capsule")


class TestSystemicImmunosuppressantsOnly:
    @pytest.mark.parametrize("drug", [CICLOSPORIN_EYE, TACROLIMUS_OINTMENT])
    def test_local_product_does_not_exclude(self, drug):
        evaluation = evaluate(with_(med_request(drug, 10, id="m")))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert "local use" in notes_about(evaluation, "MedicationRequest/m")[0]

    def test_scd_product_code_is_read_by_its_name(self):
        assert status(evaluate(with_(med_request(TACROLIMUS_CAPSULE, 10))), "immunosuppressants") == "fail"

    @pytest.mark.parametrize(("route", "expected"), [
        (cc("54485002", SNOMED, "Ophthalmic route"), "pass"), (cc("6064005", SNOMED, "Topical route"), "pass"),
        (cc(None, text="eye drops"), "pass"), (cc("26643006", SNOMED, "Oral route"), "fail"),
        (cc("20", "urn:oid:1.2.840.114350.1.13.0.1.7.4.698288.330", "Both Eyes"), "pass"),
        (cc(None, text="Left Ear"), "pass"), (cc(None, text="Apply to skin"), "pass"),
        (cc("15", "urn:oid:1.2.840.114350.1.13.0.1.7.4.698288.330", "Oral"), "fail"),
        (cc(None, text="intravenous"), "fail")])
    def test_route_decides(self, route, expected):
        ordered = med_request(TACROLIMUS, 10, dosageInstruction=[{"route": route}])
        stated = med_statement(TACROLIMUS, 10, dosage=[{"route": route}])
        given = med_admin(TACROLIMUS, 10, dosage={"route": route})
        for resource in (ordered, stated, given):
            assert status(evaluate(with_(resource)), "immunosuppressants") == expected, resource["resourceType"]

    @pytest.mark.parametrize(("days", "expected"), [(30, "fail"), (31, "pass")])
    def test_systemic_administration_window_edges_with_an_offset(self, days, expected):
        given = med_admin(TACROLIMUS_CAPSULE, None, effectiveDateTime=when(days) + "T23:30:00-05:00",
                          dosage={"route": cc("26643006", SNOMED, "Oral route")})
        assert status(evaluate(with_(given)), "immunosuppressants") == expected

    @pytest.mark.parametrize("days", [0, 30])
    def test_local_administration_inside_the_window_does_not_exclude(self, days):
        given = med_admin(TACROLIMUS, days, id="m", dosage={"route": cc("6064005", SNOMED, "Topical route")})
        evaluation = evaluate(with_(given))
        assert status(evaluation, "immunosuppressants") == "pass"
        assert notes_about(evaluation, "MedicationAdministration/m")

    def test_no_route_counts_as_systemic(self):
        assert status(evaluate(with_(med_statement(TACROLIMUS, 10))), "immunosuppressants") == "fail"

    def test_medication_form_says_ophthalmic(self):
        medication = {"resourceType": "Medication", "id": "eye", "code": cc("3008", "http://www.nlm.nih.gov/research/umls/rxnorm", "cyclosporine"),
                      "form": cc("385157007", SNOMED, "Eye drops")}
        request = med_request(None, 10, id="m", medicationCodeableConcept=None, medicationReference={"reference": "#eye"},
                              contained=[medication])
        assert status(evaluate(with_(request)), "immunosuppressants") == "pass"

    def test_contained_medication_with_rxnorm_on_ingredient_only(self):
        medication = {"resourceType": "Medication", "id": "med", "code": {"text": "Prograf"},
                      "ingredient": [{"itemCodeableConcept": cc("42316", "urn:oid:2.16.840.1.113883.6.88")}]}
        request = med_request(None, 10, medicationCodeableConcept=None, medicationReference={"reference": "#med"},
                              contained=[medication])
        assert status(evaluate(with_(request)), "immunosuppressants") == "fail"

    def test_unresolved_medication_reference_reads_its_display(self):
        request = med_request(None, 10, id="m", medicationCodeableConcept=None,
                              medicationReference={"reference": "Medication/elsewhere",
                                                   "display": "tacrolimus 0.03 % topical ointment"})
        assert status(evaluate(with_(request)), "immunosuppressants") == "pass"

    def test_antibiotic_is_not_otic(self):
        # "otic" inside "antibiotic" must not make a systemic immunosuppressant look local.
        drug = cc(None, text="mycophenolate mofetil 500 mg tablet (given with antibiotic prophylaxis)")
        assert status(evaluate(with_(med_statement(drug, 10))), "immunosuppressants") == "fail"


# --- recent major surgery -------------------------------------------------------------------------

class TestRecentMajorSurgery:
    @pytest.mark.parametrize("display", [
        "Gingivectomy", "Excision of skin lesion", "Polypectomy of colon at colonoscopy", "Cataract extraction",
        "Dental extraction", "Insertion of port", "Endoscopic stent placement", "Percutaneous drain insertion",
        "Endoscopic mucosal resection", "Surgical procedure", "Referral to transplant surgeon (procedure)",
        "Transplantation of kidney regime (regime/therapy)", "Transcatheter aortic valve replacement (procedure)"])
    def test_minor_or_unnamed_procedures_do_not_exclude(self, display):
        evaluation = evaluate(with_(procedure("71388002", display, 10, category=SURGICAL)))
        assert status(evaluation, "recent-major-surgery") == "pass"

    @pytest.mark.parametrize("display", [
        "Laparotomy", "Laparoscopic cholecystectomy", "Thoracoscopic lobectomy of lung", "Craniotomy",
        "Median sternotomy", "Right hepatectomy", "Sigmoid colectomy", "Total gastrectomy", "Esophagectomy",
        "Oesophagectomy", "Radical nephrectomy", "Appendectomy", "Splenectomy", "Total abdominal hysterectomy",
        "Total hip replacement", "Coronary artery bypass graft", "Below knee amputation",
        "Hepatectomy with drain placement", "Open Removal of Gall Bladder", "Excision of appendix"])
    def test_major_operations_exclude(self, display):
        evaluation = evaluate(with_(procedure(None, display, 10, id="op")))
        assert status(evaluation, "recent-major-surgery") == "fail"
        assert evidence(evaluation, "recent-major-surgery") == ["Procedure/op"]

    @pytest.mark.parametrize(("days", "expected"), [(28, "fail"), (29, "pass")])
    def test_cpt_only_partial_hepatectomy_window_edges(self, days, expected):
        op = procedure("47120", None, days, system=CPT)
        assert status(evaluate(with_(op)), "recent-major-surgery") == expected

    def test_cpt_under_its_oid(self):
        assert status(evaluate(with_(procedure("44140", None, 5, system=CPT_OID))), "recent-major-surgery") == "fail"

    def test_whipple_by_cpt_never_counts_here_and_resects_the_primary(self):
        evaluation = evaluate(with_(procedure("48150", None, 5, system=CPT, id="whipple")))
        assert status(evaluation, "recent-major-surgery") == "pass"
        assert status(evaluation, "resectable-primary") == "pass"


# --- resectable primary ----------------------------------------------------------------------------

T4 = cc("cT4", "http://cancerstaging.org", "cT4")


def t_stage(on: int | str, **extra) -> dict:
    return observation("21905-5", on=on, id="t4", valueCodeableConcept=T4, **extra)


LUNG_CANCER = dict(code="C34.90", display="Malignant neoplasm of lung", clinical="resolved", onset="1970-01-01",
                   id="lung")


class TestResectablePrimary:
    def test_a_1970_lung_cancer_t4_says_nothing(self):
        evaluation = evaluate(with_(condition(**LUNG_CANCER), t_stage("1970-02-01")))
        assert status(evaluation, "resectable-primary") == "unknown"
        assert notes_about(evaluation, "Observation/t4")

    def test_a_t4_whose_focus_is_another_cancer_says_nothing(self):
        evaluation = evaluate(with_(condition(**LUNG_CANCER), t_stage(20, focus=[{"reference": "Condition/lung"}])))
        assert status(evaluation, "resectable-primary") == "unknown"

    def test_a_t4_whose_focus_is_the_pdac_fails(self):
        evaluation = evaluate(with_(condition(**LUNG_CANCER), t_stage(20, focus=[{"reference": "Condition/pdac"}])))
        assert status(evaluation, "resectable-primary") == "fail"
        assert evidence(evaluation, "resectable-primary") == ["Observation/t4"]

    @pytest.mark.parametrize(("on", "expected"), [(300, "fail"), (301, "unknown")])
    def test_a_t4_without_focus_counts_from_the_pdac_diagnosis_date(self, on, expected):
        # eligible()'s PDAC was diagnosed 300 days before the as-of date; no other malignancy.
        assert status(evaluate(with_(t_stage(on))), "resectable-primary") == expected

    def test_a_t4_without_focus_beside_another_malignancy_says_nothing(self):
        evaluation = evaluate(with_(condition(**LUNG_CANCER), t_stage(20)))
        assert status(evaluation, "resectable-primary") == "unknown"

    def test_a_t4_on_the_pdac_condition_itself(self):
        pdac = condition("C25.0", display="Malignant neoplasm of head of pancreas", onset=300, id="pdac",
                         stage=[{"summary": cc("cT4N0M1", "http://cancerstaging.org", "cT4 N0 M1")}])
        assert status(evaluate(eligible(pdac=pdac)), "resectable-primary") == "fail"

    def test_a_resection_wins_over_staging(self):
        evaluation = evaluate(with_(t_stage(100, focus=[{"reference": "Condition/pdac"}]),
                                    procedure("48150", None, 50, system=CPT, id="whipple")))
        assert status(evaluation, "resectable-primary") == "pass"


# --- progression: this cancer's chemotherapy and disease status ------------------------------------

BREAST = dict(code="C50.911", display="Malignant neoplasm of right female breast", clinical="resolved",
              onset="2015-01-01", id="breast")


class TestProgressionOfThisCancer:
    def test_chemotherapy_for_another_cancer_never_counts(self):
        # Paclitaxel for the breast cancer in 2015; no PDAC chemotherapy: response not assessable.
        old = med_statement(cc("56946", "http://www.nlm.nih.gov/research/umls/rxnorm", "paclitaxel"), "2015-03-01",
                            id="chemo", reasonReference=[{"reference": "Condition/breast"}])
        evaluation = evaluate(eligible(chemo=old) + [condition(**BREAST)])
        assert status(evaluation, "progression") == "unknown"

    @pytest.mark.parametrize(("start", "expected"), [(330, "pass"), (331, "unknown")])
    def test_without_reason_from_30_days_before_the_pdac_diagnosis(self, start, expected):
        # PDAC onset 300 days before the as-of date: a drug started 330 days before counts, 331 not.
        # The only status is dated 335 days before — before a counted start it says nothing.
        chemo = med_statement(GEMCITABINE, start, id="chemo")
        evaluation = evaluate(eligible(chemo=chemo, status=disease_status("stable", 15, id="status")))
        assert status(evaluation, "progression") == expected

    def test_a_reason_naming_the_pdac_counts_whatever_its_date(self):
        chemo = med_statement(GEMCITABINE, 400, id="chemo", reasonReference=[{"reference": "Condition/pdac"}])
        evaluation = evaluate(eligible(chemo=chemo))
        assert status(evaluation, "progression") == "pass"
        assert evaluation.facts["chemotherapy"]["start"] == when(400)

    def test_a_reason_naming_a_liver_metastasis_counts(self):
        chemo = med_statement(GEMCITABINE, 400, id="chemo", reasonReference=[{"reference": "Condition/liver-met"}])
        assert status(evaluate(eligible(chemo=chemo)), "progression") == "pass"

    @pytest.mark.parametrize(("reason", "expected"), [
        (cc("C25.0", "http://hl7.org/fhir/sid/icd-10-cm", "Malignant neoplasm of head of pancreas"), "pass"),
        (cc("C50.911", "http://hl7.org/fhir/sid/icd-10-cm", "Malignant neoplasm of right female breast"), "unknown")])
    def test_a_reason_code_decides_like_a_reference(self, reason, expected):
        # Started 400 days ago, before the 30-day lead: only a reason naming the PDAC makes it count.
        chemo = med_statement(GEMCITABINE, 400, id="chemo", reasonCode=[reason])
        assert status(evaluate(eligible(chemo=chemo)), "progression") == expected

    def test_a_reason_code_naming_another_cancer_never_counts_even_when_recent(self):
        chemo = med_statement(GEMCITABINE, 200, id="chemo",
                              reasonCode=[cc("C50.911", "http://hl7.org/fhir/sid/icd-10-cm")])
        assert status(evaluate(eligible(chemo=chemo)), "progression") == "unknown"

    def test_a_status_focused_on_another_cancer_is_ignored(self):
        theirs = disease_status("progression", 5, id="theirs", focus=[{"reference": "Condition/breast"}])
        evaluation = evaluate(with_(condition(**BREAST), theirs))
        assert status(evaluation, "progression") == "pass"
        assert "Observation/theirs" not in evidence(evaluation, "progression")

    @pytest.mark.parametrize("focus", ["Condition/pdac", "Condition/liver-met"])
    def test_a_status_focused_on_this_cancer_counts(self, focus):
        ours = disease_status("progression", 5, id="ours", focus=[{"reference": focus}])
        assert status(evaluate(with_(ours)), "progression") == "fail"

    @pytest.mark.parametrize(("finding", "expected"), [("230993007", "fail"), ("385633008", "pass")])
    def test_synthea_worsening_and_improving(self, finding, expected):
        synthea = observation("97509-4", on=5, valueCodeableConcept=cc(finding, SNOMED))
        assert status(evaluate(eligible(status=synthea)), "progression") == expected

    def test_urn_uuid_focus_resolves_to_the_condition(self):
        # Synthea-style references: fullUrl urn:uuid:… names the PDAC Condition.
        from tests.core.builders import bundle
        from cds_service.criteria import evaluate_resources
        from cds_service.trials import get_trial
        from fhir_mappings import resources_of_bundle

        theirs = disease_status("progression", 5, id="theirs", focus=[{"reference": "urn:uuid:Condition-breast"}])
        entries = list(resources_of_bundle(bundle(with_(condition(**BREAST), theirs))))
        evaluation = evaluate_resources(get_trial(), entries, AS_OF, patient_id="p1")
        assert status(evaluation, "progression") == "pass"


# --- notes ----------------------------------------------------------------------------------------

class TestNotesOnlyAboutWhatTheTrialReads:
    def test_claims_and_encounters_are_not_noted(self):
        unread = [
            {"resourceType": "Coverage", "id": "cov", "status": "cancelled", "beneficiary": {"reference": "Patient/p1"}},
            {"resourceType": "Claim", "id": "claim", "status": "entered-in-error", "patient": {"reference": "Patient/x"}},
            {"resourceType": "ExplanationOfBenefit", "id": "eob", "status": "cancelled"},
            {"resourceType": "Encounter", "id": "enc", "status": "cancelled", "subject": {"reference": "Patient/p1"}},
        ]
        evaluation = evaluate(with_(*unread))
        for name in ("Coverage", "Claim", "ExplanationOfBenefit", "Encounter"):
            assert not [n for n in evaluation.notes if name in n], evaluation.notes

    def test_a_skipped_observation_of_a_read_type_is_noted(self):
        evaluation = evaluate(with_(observation("89247-1", on=5, id="x", status="cancelled", valueInteger=4)))
        assert notes_about(evaluation, "Observation/x")
