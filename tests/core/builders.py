"""Small builders of FHIR R4 JSON for the eligibility-core tests: each test states only what matters.

Dates: every ``when`` argument is either an int (that many days before ``AS_OF``) or a FHIR date
string used as it is. Every builder returns a plain dict; ``**extra`` elements are merged in last,
so a test can override or add anything (``None`` removes an element).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from cds_service.criteria import Evaluation, evaluate_resources
from cds_service.trials import get_trial

AS_OF = date(2026, 6, 15)
PID = "p1"

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
HISTOLOGY_EXT = MCODE + "mcode-histology-morphology-behavior"

CRITERIA_IDS = (
    "alive", "age", "pdac-diagnosis", "liver-metastases", "liver-limited", "ecog", "resectable-primary",
    "consent-capacity", "progression", "extrahepatic-metastases", "other-malignancy", "recent-major-surgery",
    "active-infection", "cardiac-disease", "immunosuppressants", "neuropathy", "pregnancy",
    "concomitant-disease", "contraception",
)
REVIEW_IDS = ("resectable-primary", "consent-capacity", "concomitant-disease", "contraception")

_ids = itertools.count(1)


def when(value: int | str | date, as_of: date = AS_OF) -> str:
    """An int is "that many days before the as-of date"; a date or a string is used as it is."""
    if isinstance(value, bool):
        raise TypeError("a date, not a bool")
    if isinstance(value, int):
        return (as_of - timedelta(days=value)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _merge(resource: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def coding(code: str, system: str = SNOMED, display: str | None = None) -> dict:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def cc(code: str | None = None, system: str = SNOMED, display: str | None = None, text: str | None = None) -> dict:
    """A CodeableConcept with one coding (or only text when ``code`` is None)."""
    concept: dict[str, Any] = {}
    if code is not None:
        concept["coding"] = [coding(code, system, display)]
    if text:
        concept["text"] = text
    return concept


def subject(pid: str = PID) -> dict:
    return {"reference": f"Patient/{pid}"}


def ref(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


# --- resources ---------------------------------------------------------------------------------

def patient(pid: str = PID, birth_date: str | None = "1960-05-01", gender: str | None = "female", **extra) -> dict:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if birth_date is not None:
        resource["birthDate"] = birth_date
    if gender is not None:
        resource["gender"] = gender
    return _merge(resource, extra)


def condition(code: str | None, system: str = ICD10, display: str | None = None, *, text: str | None = None,
              clinical: str | None = "active", verification: str | None = "confirmed",
              onset: int | str | None = 200, recorded: int | str | None = None, body_site: list[dict] | None = None,
              profile: str | None = None, histology: dict | None = None, severity: dict | None = None,
              grade: int | None = None, grade_url: str = "http://hl7.org/fhir/us/ctcae/StructureDefinition/ctcae-grade",
              pid: str = PID, id: str | None = None, **extra) -> dict:
    resource: dict[str, Any] = {"resourceType": "Condition", "id": id or _new_id("cond"),
                                "subject": subject(pid), "code": cc(code, system, display, text)}
    if clinical is not None:
        resource["clinicalStatus"] = cc(clinical, "http://terminology.hl7.org/CodeSystem/condition-clinical")
    if verification is not None:
        resource["verificationStatus"] = cc(verification, "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    if onset is not None:
        resource["onsetDateTime"] = when(onset)
    if recorded is not None:
        resource["recordedDate"] = when(recorded)
    if body_site is not None:
        resource["bodySite"] = body_site
    if profile is not None:
        resource["meta"] = {"profile": [MCODE + profile]}
    extensions = []
    if histology is not None:
        extensions.append({"url": HISTOLOGY_EXT, "valueCodeableConcept": histology})
    if grade is not None:
        extensions.append({"url": grade_url, "valueInteger": grade})
    if extensions:
        resource["extension"] = extensions
    if severity is not None:
        resource["severity"] = severity
    return _merge(resource, extra)


def observation(code: str, system: str = LOINC, *, on: int | str | None = 10, status: str = "final",
                pid: str = PID, id: str | None = None, **extra) -> dict:
    resource: dict[str, Any] = {"resourceType": "Observation", "id": id or _new_id("obs"), "status": status,
                                "subject": subject(pid), "code": cc(code, system)}
    if on is not None:
        resource["effectiveDateTime"] = when(on)
    return _merge(resource, extra)


def ecog(grade: int | None, on: int | str = 10, **extra) -> dict:
    values = {} if grade is None else {"valueInteger": grade}
    return observation("89247-1", on=on, **values, **extra)


def karnofsky(score: int, on: int | str = 10, **extra) -> dict:
    return observation("89243-0", on=on, valueInteger=score, **extra)


DISEASE_STATUS = {"progression": "271299001", "stable": "359746009", "improved": "268910001",
                  "remission": "550991000124107", "partial-remission": "551001000124108",
                  "undetermined": "709137006"}


def disease_status(value: str, on: int | str = 10, code: str = "97509-4", **extra) -> dict:
    return observation(code, on=on, valueCodeableConcept=cc(DISEASE_STATUS[value]), **extra)


LIVER = cc("10200004", SNOMED, "Liver structure")
LUNG = cc("39607008", SNOMED, "Lung structure")
BREAST = cc("80248007", SNOMED, "Left breast structure")


def body_structure(location: dict = LIVER, pid: str = PID, id: str | None = None, **extra) -> dict:
    resource = {"resourceType": "BodyStructure", "id": id or _new_id("lesion"), "patient": subject(pid),
                "location": location}
    return _merge(resource, extra)


def tumour_size(size: float, on: int | str = 10, *, unit: str = "mm", focus: dict | str | None = None,
                body_site: dict | None = LIVER, as_component: bool = True, **extra) -> dict:
    """A tumour-size Observation (21889-1 + 33728-7), in the liver through ``bodySite`` unless told."""
    quantity = {"value": size, "unit": unit, "system": UCUM, "code": unit}
    if as_component:
        values = {"code": cc("21889-1", LOINC),
                  "component": [{"code": cc("33728-7", LOINC), "valueQuantity": quantity}]}
    else:
        values = {"code": cc("33728-7", LOINC), "valueQuantity": quantity}
    if focus is not None:
        target = focus if isinstance(focus, str) else ref(focus)
        values["focus"] = [{"reference": target}]
    if body_site is not None:
        values["bodySite"] = body_site
    resource = _merge(observation("21889-1", on=on), values)
    return _merge(resource, extra)


def _medication(rtype: str, drug: dict, status: str, pid: str, id: str | None, extra: dict) -> dict:
    resource: dict[str, Any] = {"resourceType": rtype, "id": id or _new_id(rtype[10:].lower() or "med"),
                                "status": status, "subject": subject(pid), "medicationCodeableConcept": drug}
    return _merge(resource, extra)


GEMCITABINE = cc("12574", RXNORM, "gemcitabine")
NAB_PACLITAXEL = cc("486610", RXNORM, "paclitaxel protein-bound particles")
TACROLIMUS = cc("42316", RXNORM, "tacrolimus")
DEXAMETHASONE = cc("3264", RXNORM, "dexamethasone")


def med_statement(drug: dict = GEMCITABINE, start: int | str | None = 120, end: int | str | None = None, *,
                  status: str = "active", pid: str = PID, id: str | None = None, **extra) -> dict:
    extra_dates: dict[str, Any] = {}
    if end is not None:
        extra_dates["effectivePeriod"] = {"start": when(start), "end": when(end)} if start is not None else {
            "end": when(end)}
    elif start is not None:
        extra_dates["effectiveDateTime"] = when(start)
    return _medication("MedicationStatement", drug, status, pid, id, {**extra_dates, **extra})


def med_request(drug: dict = GEMCITABINE, authored: int | str | None = 120, *, bounds_start: int | str | None = None,
                bounds_end: int | str | None = None, status: str = "active", pid: str = PID, id: str | None = None,
                **extra) -> dict:
    values: dict[str, Any] = {"intent": "order"}
    if authored is not None:
        values["authoredOn"] = when(authored)
    if bounds_start is not None or bounds_end is not None:
        period = {}
        if bounds_start is not None:
            period["start"] = when(bounds_start)
        if bounds_end is not None:
            period["end"] = when(bounds_end)
        values["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": period}}}]
    return _medication("MedicationRequest", drug, status, pid, id, {**values, **extra})


def med_admin(drug: dict = GEMCITABINE, on: int | str | None = 120, *, status: str = "completed", pid: str = PID,
              id: str | None = None, **extra) -> dict:
    values = {"effectiveDateTime": when(on)} if on is not None else {}
    return _medication("MedicationAdministration", drug, status, pid, id, {**values, **extra})


SURGICAL = cc("387713003", SNOMED, "Surgical procedure")


def procedure(code: str | None, display: str | None = None, on: int | str | None = 10, *, system: str = SNOMED,
              category: dict | None = None, status: str = "completed", pid: str = PID, id: str | None = None,
              **extra) -> dict:
    resource: dict[str, Any] = {"resourceType": "Procedure", "id": id or _new_id("proc"), "status": status,
                                "subject": subject(pid),
                                "code": cc(code, system, display) if code is not None else cc(text=display)}
    if on is not None:
        resource["performedDateTime"] = when(on)
    if category is not None:
        resource["category"] = category
    return _merge(resource, extra)


def imaging_study(modality: str | None = "CT", on: int | str | None = 20, *, series_modality: str | None = None,
                  status: str = "available", pid: str = PID, id: str | None = None, **extra) -> dict:
    resource: dict[str, Any] = {"resourceType": "ImagingStudy", "id": id or _new_id("img"), "status": status,
                                "subject": subject(pid)}
    if modality is not None:
        resource["modality"] = [coding(modality, DICOM)]
    if series_modality is not None:
        resource["series"] = [{"uid": "1.2.3.4", "modality": coding(series_modality, DICOM)}]
    if on is not None:
        resource["started"] = when(on)
    return _merge(resource, extra)


def bundle(resources: list, bundle_type: str = "collection") -> dict:
    entries = []
    for resource in resources:
        if isinstance(resource, dict) and "resourceType" in resource and "id" in resource:
            entries.append({"fullUrl": f"urn:uuid:{resource['resourceType']}-{resource['id']}", "resource": resource})
        else:
            entries.append({"resource": resource} if isinstance(resource, dict) else resource)
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


# --- a likely-eligible patient, part by part ----------------------------------------------------

def eligible(**replace: Any) -> list[dict]:
    """Resources of a likely-eligible patient; ``part=None`` drops a part, ``part=[...]`` replaces it.

    Parts: patient, pdac, liver_met, lesions, ecog, chemo, status, imaging.
    """
    parts: dict[str, Any] = {
        "patient": patient(),
        "pdac": condition("C25.0", display="Malignant neoplasm of head of pancreas", onset=300, id="pdac"),
        "liver_met": condition("C78.7", display="Secondary malignant neoplasm of liver", onset=290, id="liver-met"),
        "lesions": [tumour_size(18, 15, id="lesion-a"), tumour_size(32, 15, id="lesion-b")],
        "ecog": ecog(1, 12, id="ecog"),
        "chemo": med_statement(GEMCITABINE, 200, id="chemo"),
        "status": disease_status("stable", 15, id="status"),
        "imaging": imaging_study("CT", 15, id="ct"),
    }
    unknown = set(replace) - set(parts)
    if unknown:
        raise KeyError(f"no such part: {unknown}")
    parts.update(replace)
    resources: list[dict] = []
    for value in parts.values():
        if value is None:
            continue
        resources += value if isinstance(value, list) else [value]
    return resources


# --- running and reading -----------------------------------------------------------------------

def evaluate(resources: list, as_of: date = AS_OF, patient_id: str | None = None) -> Evaluation:
    return evaluate_resources(get_trial("NCT05271110"), resources, as_of, patient_id=patient_id)


def result(evaluation: Evaluation, criterion_id: str):
    matches = [c for c in evaluation.criteria if c.id == criterion_id]
    assert len(matches) == 1, f"{criterion_id} appears {len(matches)} times"
    return matches[0]


def status(evaluation: Evaluation, criterion_id: str) -> str:
    return result(evaluation, criterion_id).status


def evidence(evaluation: Evaluation, criterion_id: str) -> list[str]:
    return result(evaluation, criterion_id).evidence


def notes_about(evaluation: Evaluation, reference: str) -> list[str]:
    return [n for n in evaluation.notes if reference in n]
