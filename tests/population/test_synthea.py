"""A Synthea population, generated at test time (cached under .cache/synthea/), through the same
evaluation as ``trialcds evaluate``: data the project did not write, in Synthea's own shapes.

Asserts: no patient crashes the evaluation; a resource noted as "malformed" is really not valid FHIR
R4 (checked with fhir.resources); notes never mention resource types the trial does not read (Claim,
Coverage, ...); Synthea has no pancreatic cancer module, so every patient — those with Synthea's
cancers (breast, lung, colorectal, prostate) included — fails the `pdac-diagnosis` gate and none is a
candidate; deceased patients fail `alive`. Then three PDAC patients of our own, written into real
Synthea bundles in Synthea's shapes (cloned from the bundle's own Encounters, Conditions,
MedicationRequests, Observations, DiagnosticReports and ImagingStudies, urn:uuid references and all),
must pass the gates — and the variants must be decided as the spec says.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.commands.evaluate import load_bundle, render_text
from cds_service.criteria import Evaluation, evaluate_resources
from cds_service.trials import get_trial

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Small enough to generate in about two minutes of CPU on 2 cores; aged 55–85 so that Synthea's
# cancer modules have had time to fire (seed 11 gives breast, lung and prostate cancers).
POPULATION = {"population": 30, "seed": 11, "min_age": 55, "max_age": 85, "years_of_history": 3,
              "bulk_data": False}
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CANCER_WORDS = ("malignant", "carcinoma", "cancer", "neoplasm", "metasta", "leukemia", "lymphoma")
NOT_A_CANCER = ("suspected", "screening", "history of", "benign")
NEVER_NOTED_TYPES = ("Claim", "ExplanationOfBenefit", "Coverage", "Encounter", "Provenance", "CarePlan",
                     "CareTeam", "DocumentReference", "Immunization", "SupplyDelivery", "Device")


def _synthea_module():
    spec = importlib.util.spec_from_file_location("trialcds_synthea", ROOT / "scripts" / "synthea.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def population() -> tuple[Path, date]:
    synthea = _synthea_module()
    folder = synthea.generate(**POPULATION)
    return folder, date.fromisoformat(synthea.load_manifest(folder)["reference_date"])


@pytest.fixture(scope="module")
def evaluated(population) -> list[tuple[Path, dict, Evaluation]]:
    """Every bundle through `trialcds evaluate`'s own loading and evaluation (and its text output)."""
    folder, as_of = population
    results = []
    for path in sorted((folder / "fhir").glob("*.json")):
        entries, patient_id = load_bundle(path)
        evaluation = evaluate_resources(get_trial(), entries, as_of, patient_id=patient_id or None)
        assert render_text(evaluation)
        results.append((path, json.loads(path.read_text(encoding="utf-8")), evaluation))
    return results


def test_a_generated_population_is_reused_from_the_cache(population):
    """The second call finds the manifest and returns at once: no second Synthea run."""
    import time

    folder, as_of = population
    manifest_before = (folder / "synthea.json").stat().st_mtime_ns
    started = time.monotonic()
    again = _synthea_module().generate(**POPULATION)
    assert again == folder
    assert time.monotonic() - started < 5
    assert (folder / "synthea.json").stat().st_mtime_ns == manifest_before
    manifest = _synthea_module().load_manifest(folder)
    assert manifest["seed"] == POPULATION["seed"] and manifest["population"] == POPULATION["population"]
    assert manifest["bundles"] == len(list((folder / "fhir").glob("*.json"))) >= POPULATION["population"]
    assert as_of.isoformat() == manifest["reference_date"]


# --- reading Synthea bundles ------------------------------------------------------------------------

def _resources(bundle: dict, rtype: str | None = None) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if rtype is None or e["resource"]["resourceType"] == rtype]


def _patient(bundle: dict) -> dict:
    return _resources(bundle, "Patient")[0]


def _display(resource: dict) -> str:
    code = resource.get("code") or {}
    return " ".join([code.get("text") or ""] + [c.get("display") or "" for c in code.get("coding") or []]).lower()


def _cancers(bundle: dict) -> list[str]:
    found = []
    for condition in _resources(bundle, "Condition"):
        text = _display(condition)
        if any(w in text for w in CANCER_WORDS) and not any(w in text for w in NOT_A_CANCER):
            found.append(text)
    return found


def _statuses(evaluation: Evaluation) -> dict[str, str]:
    return {c.id: c.status for c in evaluation.criteria}


def _is_valid_r4(resource: dict) -> bool:
    from cds_service.seeding import is_valid_r4

    return is_valid_r4(resource)


# --- the population ---------------------------------------------------------------------------------

def test_the_population_has_cancer_patients_and_deceased_patients(evaluated):
    """Without them the gate assertions below would prove nothing."""
    assert len(evaluated) >= POPULATION["population"]
    assert sum(1 for _, bundle, _ in evaluated if _cancers(bundle)) >= 2
    assert any("deceasedDateTime" in _patient(bundle) for _, bundle, _ in evaluated)


def test_every_patient_is_evaluated_on_all_criteria(evaluated):
    ids = {c.id for c in get_trial().criteria}
    for path, _, evaluation in evaluated:
        assert set(_statuses(evaluation)) == ids, path.name
        assert evaluation.verdict in {"likely-eligible", "needs-review", "not-eligible"}, path.name


def test_nothing_legal_is_called_malformed(evaluated):
    wrongly = []
    for path, bundle, evaluation in evaluated:
        by_ref = {f"{r['resourceType']}/{r['id']}": r for r in _resources(bundle)}
        for note in evaluation.notes:
            if "malformed" not in note.lower():
                continue
            resource = by_ref.get(note.split(" ", 1)[0])
            if resource is None or _is_valid_r4(resource):
                wrongly.append(f"{path.name}: {note}")
    assert wrongly == []


def test_notes_speak_only_of_resources_the_trial_reads(evaluated):
    for path, _, evaluation in evaluated:
        for note in evaluation.notes:
            assert not note.startswith(tuple(f"{t}/" for t in NEVER_NOTED_TYPES)), f"{path.name}: {note}"


def test_no_synthea_patient_passes_the_pdac_gate(evaluated):
    """Synthea has no pancreatic cancer: its breast, lung, colorectal and prostate cancers are not PDAC."""
    for path, bundle, evaluation in evaluated:
        statuses = _statuses(evaluation)
        assert statuses["pdac-diagnosis"] == "fail", (path.name, _cancers(bundle))
        assert evaluation.verdict == "not-eligible", path.name


def test_deceased_patients_fail_alive(evaluated, population):
    _, as_of = population
    for path, bundle, evaluation in evaluated:
        deceased = _patient(bundle).get("deceasedDateTime")
        want = "fail" if deceased and date.fromisoformat(deceased[:10]) <= as_of else "pass"
        assert _statuses(evaluation)["alive"] == want, path.name


# --- our own PDAC patients in Synthea's shapes ----------------------------------------------------------

class SyntheaWriter:
    """Adds resources to a real Synthea bundle the way Synthea writes them: each one cloned from a
    resource of the same kind in that bundle (meta.profile, categories, urn:uuid references, offsets),
    with a new id, code, dates and value."""

    def __init__(self, bundle: dict, as_of: date) -> None:
        self.bundle = copy.deepcopy(bundle)
        self.as_of = as_of
        self.patient_ref = f"urn:uuid:{_patient(self.bundle)['id']}"

    def when(self, days_before: int) -> str:
        return f"{(self.as_of - timedelta(days=days_before)).isoformat()}T10:21:07-05:00"

    def _clone(self, rtype: str, pick=lambda r: True) -> dict:
        template = next(r for r in reversed(_resources(self.bundle, rtype)) if pick(r))
        clone = copy.deepcopy(template)
        clone["id"] = str(uuid.uuid4())
        clone.pop("text", None)
        return clone

    def _add(self, resource: dict) -> str:
        full_url = f"urn:uuid:{resource['id']}"
        self.bundle["entry"].append({"fullUrl": full_url, "resource": resource,
                                     "request": {"method": "POST", "url": resource["resourceType"]}})
        return full_url

    def encounter(self, days_before: int) -> str:
        enc = self._clone("Encounter")
        enc["period"] = {"start": self.when(days_before), "end": self.when(days_before)}
        return self._add(enc)

    def condition(self, enc: str, code: str, display: str, days_before: int, clinical: str = "active") -> str:
        cond = self._clone("Condition", lambda r: "encounter" in r)
        cond["clinicalStatus"]["coding"][0]["code"] = clinical
        cond["code"] = {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}
        cond["encounter"] = {"reference": enc}
        cond["onsetDateTime"] = cond["recordedDate"] = self.when(days_before)
        cond.pop("abatementDateTime", None)
        if clinical in ("resolved", "inactive", "remission"):
            cond["abatementDateTime"] = self.when(max(days_before - 60, 1))
        return self._add(cond)

    def medication_request(self, enc: str, rxnorm: str, display: str, days_before: int) -> str:
        order = self._clone("MedicationRequest", lambda r: "medicationCodeableConcept" in r)
        order["status"] = "active"
        order["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": rxnorm, "display": display}],
                                              "text": display}
        order["encounter"] = {"reference": enc}
        order["authoredOn"] = self.when(days_before)
        for element in ("reasonReference", "dosageInstruction", "medicationReference"):
            order.pop(element, None)
        return self._add(order)

    def observation(self, enc: str, code: tuple[str, str], days_before: int, category: str, **value: Any) -> str:
        obs = self._clone("Observation", lambda r: "valueQuantity" in r or "valueCodeableConcept" in r)
        for element in ("valueQuantity", "valueCodeableConcept", "valueString", "component", "meta"):
            obs.pop(element, None)
        obs["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": category, "display": category}]}]
        obs["code"] = {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}], "text": code[1]}
        obs["encounter"] = {"reference": enc}
        obs["effectiveDateTime"] = self.when(days_before)
        obs["issued"] = self.when(days_before).replace("T10:21:07", "T10:21:07.663")
        obs.update(value)
        return self._add(obs)

    def ct(self, enc: str, days_before: int) -> None:
        report = self._clone("DiagnosticReport")
        report["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                           "code": "RAD", "display": "Radiology"}]}]
        report["code"] = {"coding": [{"system": LOINC, "code": "36813-4",
                                      "display": "CT Abdomen and Pelvis W contrast IV"}]}
        report["encounter"] = {"reference": enc}
        report["effectiveDateTime"] = self.when(days_before)
        report["issued"] = self.when(days_before)
        for element in ("result", "presentedForm", "meta"):
            report.pop(element, None)
        self._add(report)
        if _resources(self.bundle, "ImagingStudy"):
            study = self._clone("ImagingStudy")
            study["encounter"] = {"reference": enc}
            study["started"] = self.when(days_before)
            study["procedureCode"] = [{"coding": [{"system": SNOMED, "code": "418714002",
                                                   "display": "Computed tomography of abdomen and pelvis (procedure)"}]}]
            series = study["series"][0]
            series["modality"] = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT",
                                  "display": "Computed Tomography"}
            series["started"] = self.when(days_before)
            self._add(study)


def _pdac_patient(bundle: dict, as_of: date, variant: str) -> dict:
    """A PDAC with liver metastases added to a real Synthea patient, in Synthea's shapes."""
    w = SyntheaWriter(bundle, as_of)
    dx = w.encounter(200)
    follow_up = w.encounter(12)
    pdac = w.condition(dx, "363418001", "Malignant tumor of pancreas (disorder)", 200)
    assert pdac
    liver_status = "resolved" if variant == "liver-resolved" else "active"
    w.condition(dx, "94381002", "Secondary malignant neoplasm of liver (disorder)", 198, clinical=liver_status)
    if variant == "colon-metastasis":
        w.condition(follow_up, "94260004", "Secondary malignant neoplasm of colon", 12)
    w.medication_request(dx, "1720975", "gemcitabine 1000 MG Injection", 180)
    w.medication_request(dx, "583218", "paclitaxel protein-bound particles for injectable suspension "
                                       "(albumin-bound) 100 MG", 180)
    # Synthea's cancer modules write treatment response as LOINC 88040-1 with "Improving".
    w.observation(follow_up, ("88040-1", "Response to cancer treatment"), 12, "therapy",
                  valueCodeableConcept={"coding": [{"system": SNOMED, "code": "385633008",
                                                    "display": "Improving (qualifier value)"}],
                                        "text": "Improving (qualifier value)"})
    w.observation(follow_up, ("89247-1", "ECOG Performance Status score"), 12, "survey", valueInteger=1)
    w.observation(follow_up, ("21889-1", "Size Tumor"), 12, "imaging",
                  bodySite={"coding": [{"system": SNOMED, "code": "10200004", "display": "Liver structure"}]},
                  component=[{"code": {"coding": [{"system": LOINC, "code": "33728-7",
                                                   "display": "Size.maximum dimension in Tumor"}]},
                              "valueQuantity": {"value": 23, "unit": "mm", "system": "http://unitsofmeasure.org",
                                                "code": "mm"}}])
    w.ct(follow_up, 12)
    return w.bundle


def _hosts(evaluated, as_of: date, count: int) -> list[dict]:
    """Living adults without a cancer of their own, with the resource kinds we clone from."""
    hosts = []
    for _, bundle, _ in evaluated:
        patient = _patient(bundle)
        kinds = {r["resourceType"] for r in _resources(bundle)}
        if ("deceasedDateTime" in patient or _cancers(bundle)
                or not {"Encounter", "Condition", "MedicationRequest", "Observation", "DiagnosticReport"} <= kinds
                or not any("encounter" in r for r in _resources(bundle, "Condition"))
                or not any("medicationCodeableConcept" in r for r in _resources(bundle, "MedicationRequest"))):
            continue
        hosts.append(bundle)
    assert len(hosts) >= count, "not enough Synthea hosts for our PDAC patients"
    return hosts[:count]


def _evaluate_bundle(bundle: dict, as_of: date, tmp_path: Path, name: str) -> Evaluation:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    entries, patient_id = load_bundle(path)
    return evaluate_resources(get_trial(), entries, as_of, patient_id=patient_id or None)


VARIANTS = {
    # variant: the statuses it must have (besides the gates' own)
    "eligible-picture": {"pdac-diagnosis": "pass", "liver-metastases": "pass", "liver-limited": "pass",
                         "ecog": "pass", "progression": "pass", "extrahepatic-metastases": "pass"},
    "colon-metastasis": {"pdac-diagnosis": "pass", "liver-metastases": "pass",
                         "extrahepatic-metastases": "fail"},
    "liver-resolved": {"pdac-diagnosis": "pass", "liver-metastases": "unknown"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_our_pdac_patients_in_synthea_shapes(evaluated, population, tmp_path, variant):
    _, as_of = population
    host = _hosts(evaluated, as_of, len(VARIANTS))[list(VARIANTS).index(variant)]
    bundle = _pdac_patient(host, as_of, variant)
    evaluation = _evaluate_bundle(bundle, as_of, tmp_path, variant)
    statuses = _statuses(evaluation)
    reasons = {c.id: c.reason for c in evaluation.criteria}
    wrong = {cid: (statuses[cid], reasons[cid]) for cid, want in VARIANTS[variant].items() if statuses[cid] != want}
    assert wrong == {}
    assert statuses["alive"] == "pass"
    if variant != "eligible-picture":
        assert evaluation.verdict != "likely-eligible"
