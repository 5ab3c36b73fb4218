"""One patient's resources → a ``PatientResult``: the evaluation object plus the name and MRN the
worklist shows. The evaluation comes from ``cds_service.criteria.evaluate_resources`` — the function
the CDS Hooks service and ``trialcds evaluate`` call — so the three give the same evaluation.

Engines call ``screen_patient`` (NDJSON, grouped) or ``screen_bundle`` (a one-patient Bundle file)
wherever they run; both are plain functions of their arguments (no clock: the as-of date is passed).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from cds_service.criteria import evaluate_resources
from cds_service.criteria.models import TrialDefinition
from cds_service.screening.grouping import SHARED_TYPES
from cds_service.screening.inputs import parse_line, read_bundle
from cds_service.screening.issues import InputIssues
from cds_service.screening.reads import TrialReads
from fhir_mappings import resources_of_bundle

MRN_TYPE = ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")

PatientResult = dict[str, Any]  # {"key", "evaluation", "name", "mrn"}


def screen_patient(trial: TrialDefinition, as_of: date, key: str, lines: list[bytes],
                   issues: InputIssues) -> PatientResult | None:
    """A patient's NDJSON lines (already filtered to what the trial reads) → its result, or None
    (and an issue) when the export holds no Patient resource for this id."""
    resources, seen = [], set()
    for line in lines:
        resource = parse_line(line)
        if resource is None:  # cannot happen after partitioning, which parsed every line
            continue
        identity = (resource["resourceType"], resource.get("id"))
        if identity[1] is not None and identity in seen:
            if identity[0] not in SHARED_TYPES:  # one drug pointed at by several records: expected
                issues.add("duplicate-resource")
            continue
        seen.add(identity)
        resources.append(resource)
    patient = next((r for r in resources if r["resourceType"] == "Patient"), None)
    if patient is None:
        issues.add("patient-without-patient-resource", f"Patient/{key} ({len(resources)} resources)")
        return None
    evaluation = evaluate_resources(trial, resources, as_of, patient_id=key)
    return result_of(key, evaluation.to_json(), patient)


def screen_bundle(trial: TrialDefinition, reads: TrialReads, as_of: date, path: Path, name: str,
                  issues: InputIssues) -> PatientResult | None:
    """A one-patient Bundle file → its result, read as ``trialcds evaluate --bundle`` reads it but
    keeping only what the trial reads (what the hook's prefetch would bring)."""
    bundle = read_bundle(path)
    if bundle is None:
        issues.add("malformed-bundle", f"{name}: not a FHIR Bundle")
        return None
    entries = list(resources_of_bundle(bundle))
    patients = [r for r, _ in entries if isinstance(r, dict) and r.get("resourceType") == "Patient"]
    if not patients:  # Synthea's hospitalInformation / practitionerInformation Bundles: no patient data
        issues.add("bundle-without-patient")
        return None
    if len(patients) != 1 or not isinstance(patients[0].get("id"), str):
        issues.add("malformed-bundle", f"{name}: {len(patients)} Patients (exactly one with an id expected)")
        return None
    kept = []
    for resource, full_url in entries:
        if isinstance(resource, dict) and not reads.wants(resource):
            issues.add("not-read-by-trial")
            continue
        kept.append((resource, full_url))
    key = patients[0]["id"]
    evaluation = evaluate_resources(trial, kept, as_of, patient_id=key)
    return result_of(key, evaluation.to_json(), patients[0])


def result_of(key: str, evaluation: dict[str, Any], patient: dict) -> PatientResult:
    return {"key": key, "evaluation": evaluation, "name": display_name(patient), "mrn": medical_record_number(patient)}


def display_name(patient: dict) -> str | None:
    """The official (else the first) HumanName as "Given Family"; None when there is none."""
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if isinstance(name.get("text"), str) and name["text"].strip():
        return name["text"].strip()
    given = [g for g in name.get("given") or () if isinstance(g, str)]
    family = name.get("family") if isinstance(name.get("family"), str) else ""
    return " ".join([*given, family]).strip() or None


def medical_record_number(patient: dict) -> str | None:
    """The identifier typed MR (HL7 v2-0203), as Synthea and most EHR exports mark the MRN."""
    for identifier in patient.get("identifier") or ():
        if not isinstance(identifier, dict):
            continue
        for coding in (identifier.get("type") or {}).get("coding") or ():
            if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) == MRN_TYPE:
                value = identifier.get("value")
                return value if isinstance(value, str) else None
    return None
