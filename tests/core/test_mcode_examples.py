"""The official HL7 mCODE 4.0.0 examples (CC0; ``npm pack hl7.fhir.us.mcode@4.0.0``) read by the mappings.

Data we did not write: every relevant example must yield the right fact. None is pancreatic, so they
test the readers (and the "not PDAC / not liver" side of the rules), not eligibility as such.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta

import pytest

from cds_service.cli import main
from fhir_mappings import PatientRecord, extract_facts
from fhir_mappings.observations import read_liver_lesions

from .builders import CRITERIA_IDS, LIVER, evaluate, status

JENNY = "cancer-patient-jenny-m"
JOHN = "cancer-patient-john-anyperson"


def facts_of(resources: list[dict], as_of: date, patient: dict | None = None):
    """Facts of the resources, each re-pointed at one Patient (the examples belong to several)."""
    patient = patient or {"resourceType": "Patient", "id": "example", "birthDate": "1960-01-01"}
    record = PatientRecord.from_resources([patient] + [_owned(r, patient["id"]) for r in resources])
    return extract_facts(record, as_of), record


def _owned(resource: dict, pid: str) -> dict:
    resource = copy.deepcopy(resource)
    for element in ("subject", "patient"):
        if element in resource:
            resource[element] = {"reference": f"Patient/{pid}"}
    return resource


def evaluate_examples(mcode, names: list[str], as_of: date, pid: str = "example"):
    patient = {"resourceType": "Patient", "id": pid, "birthDate": "1960-01-01", "gender": "female"}
    return evaluate([patient] + [_owned(mcode(n), pid) for n in names], as_of=as_of)


# --- performance status ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Observation-ecog-performance-status-fully-active.json",
                                  "Observation-ecog-performance-status-jenny-m.json"])
def test_ecog_examples(mcode, name):
    example = mcode(name)
    as_of = date.fromisoformat(example["effectiveDateTime"][:10])
    facts, record = facts_of([example], as_of)
    assert [(r.ref, r.value) for r in facts.performance] == [(f"Observation/{example['id']}", 0)]
    assert not record.notes
    assert status(evaluate_examples(mcode, [name], as_of), "ecog") == "pass"


def test_ecog_example_read_from_its_interpretation_alone(mcode):
    example = mcode("Observation-ecog-performance-status-fully-active.json")
    del example["valueInteger"]
    example["interpretation"][0]["coding"][0]["code"] = "LA9625-0"  # = ECOG 3
    facts, _ = facts_of([example], date(2019, 4, 1))
    assert [r.value for r in facts.performance] == [3]


def test_karnofsky_example_90_is_ecog_0(mcode):
    example = mcode("Observation-karnofsky-performance-status-normal-activity.json")
    assert example["valueInteger"] == 90
    facts, _ = facts_of([example], date(2019, 4, 1))
    assert [r.value for r in facts.performance] == [0]
    assert "Karnofsky 90" in facts.performance[0].label


# --- disease status ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Observation-cancer-disease-status-improved.json",
                                  "Observation-cancer-disease-status-improved-brian-l.json",
                                  "Observation-cancer-disease-status-jenny-m.json"])
def test_disease_status_examples_are_improved(mcode, name):
    facts, _ = facts_of([mcode(name)], date(2025, 1, 1))
    assert [r.value for r in facts.disease_status] == ["improved"]


def test_disease_status_after_the_cisplatin_request_passes_progression(mcode):
    # John's cisplatin was authored 2019-04-01; his "improved" status is dated the same day. The request's
    # reasonCode (non-small cell lung cancer) is removed: with it, revision 2 says the drug is another cancer's.
    request = _owned(mcode("MedicationRequest-cancer-related-medication-request-cisplatin.json"), "example")
    request.pop("reasonCode")
    patient = {"resourceType": "Patient", "id": "example", "birthDate": "1960-01-01", "gender": "female"}
    status_ = _owned(mcode("Observation-cancer-disease-status-improved.json"), "example")
    evaluation = evaluate([patient, request, status_], as_of=date(2019, 6, 1))
    assert status(evaluation, "progression") == "pass"


def test_cisplatin_given_for_a_lung_cancer_is_not_this_cancers_chemotherapy(mcode):
    evaluation = evaluate_examples(mcode, ["MedicationRequest-cancer-related-medication-request-cisplatin.json",
                                           "Observation-cancer-disease-status-improved.json"], date(2019, 6, 1))
    assert status(evaluation, "progression") == "unknown"


# --- tumour size: measured, but not in the liver -----------------------------------------------

TUMOUR_SIZES = ["Observation-tumor-size-jenny-m.json", "Observation-tumor-size-pathology.json"]


@pytest.mark.parametrize("name", TUMOUR_SIZES)
def test_tumour_size_examples_are_not_liver_lesions(mcode, name):
    resources = [mcode(name), mcode("BodyStructure-tumor-lobular-carcinoma-left-breast.json"),
                 mcode("Specimen-tumor-specimen-left-breast-jenny-m.json")]
    facts, _ = facts_of(resources, date(2020, 1, 1))
    assert facts.liver_lesions == []
    assert status(evaluate_examples(mcode, [name], date(2019, 6, 1)), "liver-limited") == "unknown"


def test_tumour_size_with_focus_on_a_liver_body_structure_is_read_in_mm(mcode):
    size = mcode("Observation-tumor-size-pathology.json")  # 1.2 cm longest, 0.5 cm other dimension
    breast = mcode("BodyStructure-tumor-lobular-carcinoma-left-breast.json")
    liver_tumour = copy.deepcopy(breast) | {"id": "tumor-in-liver", "location": LIVER}
    in_liver = copy.deepcopy(size) | {"id": "tumor-size-liver", "focus": [{"reference": "BodyStructure/tumor-in-liver"}]}
    facts, _ = facts_of([size, breast, in_liver, liver_tumour], date(2019, 6, 1))
    assert [(m.ref, m.diameter_mm, m.lesion) for m in facts.liver_lesions] == [
        ("Observation/tumor-size-liver", 12.0, "BodyStructure/tumor-in-liver")]


def test_tumour_size_reader_directly(mcode):
    jenny = mcode("Observation-tumor-size-jenny-m.json")  # 2.5 cm, located only through a breast specimen
    in_liver = copy.deepcopy(jenny) | {"id": "copy-in-liver", "bodySite": LIVER}
    record = PatientRecord.from_resources([{"resourceType": "Patient", "id": JENNY}, jenny, in_liver])
    lesions = read_liver_lesions(record, set())
    assert [(m.ref, m.diameter_mm) for m in lesions] == [("Observation/copy-in-liver", 25.0)]
    assert lesions[0].date == date(2018, 4, 1)


# --- metastases ----------------------------------------------------------------------------------

def test_secondary_cancer_brain_metastasis_is_extrahepatic(mcode):
    name = "Condition-secondary-cancer-condition-brain-mets.json"
    facts, _ = facts_of([mcode(name)], date(2019, 6, 1))
    assert [d.ref for d in facts.extrahepatic_metastases] == ["Condition/secondary-cancer-condition-brain-mets"]
    assert facts.liver_metastases == [] and facts.other_malignancies == []
    evaluation = evaluate_examples(mcode, [name], date(2019, 6, 1))
    assert status(evaluation, "extrahepatic-metastases") == "fail"
    assert status(evaluation, "liver-metastases") == "fail"


def test_history_of_cancer_metastatic_to_liver(mcode):
    name = "Observation-history-of-cancer-metastatic-to-liver.json"
    facts, _ = facts_of([mcode(name)], date(2019, 1, 1))
    assert [d.ref for d in facts.liver_metastases] == ["Observation/history-of-cancer-metastatic-to-liver"]
    assert facts.liver_metastases[0].date == date(2018, 11, 16)
    assert status(evaluate_examples(mcode, [name], date(2019, 1, 1)), "liver-metastases") == "pass"


def test_no_history_of_metastatic_cancer(mcode):
    example = mcode("Observation-no-history-of-metastatic-cancer.json")
    assert example["valueBoolean"] is False
    facts, _ = facts_of([example], date(2019, 1, 1))
    assert facts.liver_metastases == []
    # Even placed in the liver, a negated history is no metastasis.
    placed = example | {"bodySite": LIVER}
    assert facts_of([placed], date(2019, 1, 1))[0].liver_metastases == []
    assert facts_of([placed | {"valueBoolean": True}], date(2019, 1, 1))[0].liver_metastases != []


# --- medicines -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "start"), [
    ("MedicationRequest-cancer-related-medication-request-cisplatin.json", date(2019, 4, 1)),
    ("MedicationRequest-cancer-related-medication-request-cisplatin-stopped.json", date(2019, 5, 15)),
])
def test_cisplatin_requests_are_anticancer_dated_by_authored_on(mcode, name, start):
    facts, _ = facts_of([mcode(name)], date(2019, 6, 1))
    assert [(m.drugs, m.start) for m in facts.anticancer] == [(("cisplatin",), start)]
    assert facts.immunosuppressants == [] and facts.corticosteroids == []


def test_paclitaxel_administration_is_anticancer(mcode):
    facts, _ = facts_of([mcode("MedicationAdministration-cancer-related-medication-admin-paclitaxel-jenny-m.json")],
                        date(2018, 6, 1))
    assert [(m.resource_type, m.drugs, m.start) for m in facts.anticancer] == [
        ("MedicationAdministration", ("paclitaxel",), date(2018, 4, 22))]


@pytest.mark.parametrize("name", ["MedicationRequest-cancer-related-medication-request-prednisone-brian-l.json",
                                  "MedicationAdministration-cancer-related-medication-admin-prednisone-brian-l.json"])
def test_prednisone_is_a_corticosteroid_not_an_immunosuppressant(mcode, name):
    facts, _ = facts_of([mcode(name)], date(2024, 1, 20))
    assert [m.drugs for m in facts.corticosteroids] == [("prednisone",)]
    assert facts.immunosuppressants == [] and facts.anticancer == []
    evaluation = evaluate_examples(mcode, [name], date(2024, 1, 20))
    assert status(evaluation, "immunosuppressants") == "pass"


# --- other conditions ----------------------------------------------------------------------------

def test_chronic_heart_failure_is_cardiac_disease(mcode):
    name = "Condition-john-anyperson-chf.json"
    assert mcode(name)["code"]["coding"][0]["code"] == "I50.32"
    evaluation = evaluate_examples(mcode, [name], date(2019, 6, 1))
    assert status(evaluation, "cardiac-disease") == "unknown"
    assert evaluation.criteria[CRITERIA_IDS.index("cardiac-disease")].evidence == ["Condition/john-anyperson-chf"]


@pytest.mark.parametrize("name", ["Condition-us-core-condition-hypertension-jenny-m.json",
                                  "Condition-us-core-condition-anxiety-jenny-m.json",
                                  "Condition-us-core-condition-depression-jenny-m.json"])
def test_jenny_m_comorbidities_are_not_cardiac_disease(mcode, name):
    evaluation = evaluate_examples(mcode, [name], date(2019, 6, 1))
    assert status(evaluation, "cardiac-disease") == "pass"
    assert status(evaluation, "active-infection") == "pass"


@pytest.mark.parametrize("name", ["Condition-primary-cancer-condition-breast.json",
                                  "Condition-primary-cancer-condition-nsclc.json",
                                  "Condition-primary-cancer-condition-cll.json",
                                  "Condition-primary-cancer-condition-jenny-m.json",
                                  "Condition-primary-cancer-condition-brian-l.json"])
def test_primary_cancers_are_other_malignancies_not_pdac(mcode, name):
    example = mcode(name)
    as_of = date.fromisoformat(example["onsetDateTime"][:10]) + timedelta(days=30)
    facts, _ = facts_of([example], as_of)
    assert [d.ref for d in facts.other_malignancies] == [f"Condition/{example['id']}"]
    assert facts.pdac == [] and facts.pancreatic_non_ductal == []
    evaluation = evaluate_examples(mcode, [name], as_of)
    assert status(evaluation, "other-malignancy") == "fail"
    assert status(evaluation, "pdac-diagnosis") == "fail"


def test_jenny_m_ductal_breast_cancer_is_not_pdac(mcode):
    name = "Condition-primary-cancer-condition-jenny-m.json"
    example = mcode(name)
    histology = example["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert histology["code"] == "82711006"  # infiltrating duct carcinoma: ductal, but of the breast
    facts, _ = facts_of([example], date(2019, 1, 1))
    assert facts.pdac == []
    assert facts.other_malignancies[0].active is False  # clinicalStatus remission
    # In remission, but diagnosed 2018-03-16: within 730 days of 2019-06-01, not of 2020-06-01.
    assert status(evaluate_examples(mcode, [name], date(2019, 6, 1)), "other-malignancy") == "fail"
    assert status(evaluate_examples(mcode, [name], date(2020, 6, 1)), "other-malignancy") == "pass"


def test_nonspecific_metastatic_primary_is_noted_not_counted(mcode):
    name = "Condition-primary-cancer-condition-nonspecific.json"  # 128462008, no bodySite
    evaluation = evaluate_examples(mcode, [name], date(2021, 1, 1))
    assert status(evaluation, "liver-metastases") == "fail"
    assert status(evaluation, "extrahepatic-metastases") != "fail"
    assert any("Condition/primary-cancer-condition-nonspecific" in n for n in evaluation.notes)


def test_cancer_staging_examples_are_not_t4(mcode):
    evaluation = evaluate_examples(mcode, ["Observation-tnm-clinical-primary-tumor-category-jenny-m.json",
                                           "Observation-tnm-clinical-primary-tumor-category-cT3.json"],
                                   date(2019, 6, 1))
    assert status(evaluation, "resectable-primary") == "unknown"


def test_every_example_reads_without_being_skipped_as_malformed(mcode_examples):
    """All 170-odd resources of the package, as one record: nothing is malformed to our readers."""
    resources = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(mcode_examples.glob("*.json"))]
    resources = [r for r in resources if r.get("resourceType") not in ("Bundle", "Patient")]
    assert len(resources) > 150
    facts, record = facts_of(resources, date(2030, 1, 1))
    assert not [n for n in record.notes if "malformed" in n]
    assert facts.pdac == []


# --- the 40-entry patient bundle through the command line ----------------------------------------

JENNY_BUNDLE = "Bundle-mcode-patient-bundle-jenny-m.json"


def test_jenny_m_bundle_through_trialcds_evaluate_json(mcode_examples, capsys):
    bundle = mcode_examples / JENNY_BUNDLE
    assert len(json.loads(bundle.read_text())["entry"]) == 40
    code = main(["evaluate", "--bundle", str(bundle), "--as-of", "2018-11-15", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    data = json.loads(out)
    assert data["patient"] == f"Patient/{JENNY}"
    assert data["asOf"] == "2018-11-15"
    assert [c["id"] for c in data["criteria"]] == list(CRITERIA_IDS)
    statuses = {c["id"]: c["status"] for c in data["criteria"]}
    assert statuses["age"] == "pass"
    assert statuses["pdac-diagnosis"] == "fail"  # breast cancer, ductal histology notwithstanding
    assert statuses["liver-metastases"] == "fail"
    assert statuses["other-malignancy"] == "fail"
    # Revision 2: her paclitaxel and her "improved" status of 2018-11-01 are her breast cancer's (reason /
    # focus), not a PDAC's: they say nothing about this trial's progression criterion.
    assert statuses["progression"] == "unknown"
    assert statuses["cardiac-disease"] == "pass"
    assert data["verdict"] == "not-eligible"
    assert data["facts"]["chemotherapy"]["drugs"] == ["paclitaxel"]
    assert not [n for n in data.get("notes", []) if "malformed" in n]


def test_jenny_m_bundle_through_trialcds_evaluate_text(mcode_examples, capsys):
    code = main(["evaluate", "--bundle", str(mcode_examples / JENNY_BUNDLE), "--as-of", "2018-04-20"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Verdict: not-eligible" in out
    for criterion in CRITERIA_IDS:
        assert f" {criterion} " in out
