"""Condition (and AdverseEvent) → diagnoses: cancers by kind, infections, cardiac, neuropathy, pregnancy."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.codes import Coding
from fhir_mappings.facts import Diagnosis
from fhir_mappings.fhirjson import (
    MalformedResource,
    as_dict,
    codings,
    concept_text,
    concepts,
    effective_date,
    extensions,
    parse_date,
    ref_of,
    status_code,
)
from fhir_mappings.record import PatientRecord

ACTIVE_CLINICAL_STATUS = {None, "active", "recurrence", "relapse"}

# Buckets a Condition can fall into; a cancer falls into one of the first six (a metastasis sited both in
# the liver and elsewhere into the liver and the extrahepatic ones).
PDAC = "pdac"
NON_DUCTAL = "pancreatic_non_ductal"
LIVER_MET = "liver_metastases"
EXTRAHEPATIC_MET = "extrahepatic_metastases"
UNSITED_MET = "unsited_metastases"
OTHER_MALIGNANCY = "other_malignancies"
OTHER_BUCKETS = (
    ("infections", codes.INFECTION),
    ("cardiac", codes.CARDIAC_DISEASE),
    ("neuropathies", codes.NEUROPATHY),
    ("pregnancy_conditions", codes.PREGNANCY_CONDITION),
)


def read_conditions(record: PatientRecord) -> list[tuple[str, Diagnosis]]:
    return record.read_each("Condition", lambda res: _read_condition(res, record))


def _read_condition(resource: dict, record: PatientRecord) -> Iterator[tuple[str, Diagnosis]]:
    code = as_dict(resource.get("code"), "code")
    found = codings(code, "code")
    text = concept_text(code)
    sites = [concept_text(site) for site in concepts(resource, "bodySite")]
    clinical = status_code(resource, "clinicalStatus")
    diagnosis = Diagnosis(
        ref=ref_of(resource),
        label=_label(code, found),
        onset=effective_date(resource, "onset"),
        recorded=parse_date(resource.get("recordedDate")),
        active=clinical in ACTIVE_CLINICAL_STATUS,
        verification=status_code(resource, "verificationStatus"),
        grade=condition_grade(resource),
        body_sites=tuple(s for s in sites if s),
    )
    cancers = _cancer_buckets(resource, found, text)
    if UNSITED_MET in cancers:
        record.note(diagnosis.ref, "noted: metastatic disease without a body site counts as neither liver nor "
                                   "extrahepatic")
    if cancers:
        for cancer in cancers:
            yield cancer, diagnosis
        return
    for bucket, code_set in OTHER_BUCKETS:
        if code_set.matches(found, text):
            yield bucket, diagnosis


def _label(code: dict, found: list[Coding]) -> str:
    if code.get("text"):
        return str(code["text"])
    for coding in found:
        if coding.display:
            return coding.display
    return found[0].code if found else "(uncoded condition)"


def _profiles(resource: dict) -> str:
    meta = as_dict(resource.get("meta"), "meta")
    return " ".join(str(p) for p in meta.get("profile") or ())


def _cancer_buckets(resource: dict, found: list[Coding], text: str) -> tuple[str, ...]:
    """The cancer buckets of a Condition: one, or two for a metastasis sited in the liver and elsewhere."""
    profiles = _profiles(resource)
    if codes.LIVER_METASTASIS.matches(found, text):
        return (LIVER_MET,)
    if codes.EXTRAHEPATIC_METASTASIS.matches(found, text):
        return (EXTRAHEPATIC_MET,)
    generic = (codes.GENERIC_METASTASIS.matches(found)
               or codes.SECONDARY_CANCER_PROFILE in profiles
               or (not any(c.system == codes.ICD10 for c in found)
                   and ("metasta" in text or "secondary malignant" in text) and "history of" not in text))
    if generic:
        sites = concepts(resource, "bodySite")
        if not sites:
            return (UNSITED_MET,)
        in_liver = [codes.LIVER_SITE.matches(codings(site, "bodySite"), concept_text(site)) for site in sites]
        return ((LIVER_MET,) if any(in_liver) else ()) + (() if all(in_liver) else (EXTRAHEPATIC_MET,))
    if codes.PANCREATIC_NON_DUCTAL.matches(found, text):
        return (NON_DUCTAL,)
    if codes.PDAC_SPECIFIC.matches(found, text) or codes.PANCREATIC_MALIGNANCY.matches(found, text):
        return (NON_DUCTAL,) if _histology_non_ductal(resource) else (PDAC,)
    if codes.OTHER_MALIGNANCY.matches(found, text):
        return (OTHER_MALIGNANCY,)
    if codes.PRIMARY_CANCER_PROFILE in profiles and "pancrea" not in text:
        return (OTHER_MALIGNANCY,)
    return ()


def _histology_non_ductal(resource: dict) -> bool:
    for ext in extensions(resource, codes.HISTOLOGY_EXTENSION):
        concept = ext.get("valueCodeableConcept")
        for coding in codings(concept, "histology"):
            if coding.system == codes.ICDO3 and coding.code.split("/")[0] in codes.NON_DUCTAL_HISTOLOGY_ICDO3:
                return True
        words = concept_text(concept)
        if any(k in words for k in codes.NON_DUCTAL_HISTOLOGY_KEYWORDS):
            return True
    return False


_GRADE_IN_TEXT = re.compile(r"grade\s*([0-5])")


def condition_grade(resource: dict) -> int | None:
    """A CTCAE-like grade 0–5: grade extensions first, then ``severity``; None when absent."""
    for ext in extensions(resource, "grade"):
        grade = _grade_value(ext)
        if grade is not None:
            return grade
    severity = resource.get("severity")
    if severity is not None:
        for coding in codings(severity, "severity"):
            if coding.code in codes.SEVERITY_GRADES:
                return codes.SEVERITY_GRADES[coding.code]
            if coding.code in ("mild", "moderate", "severe"):
                return {"mild": 1, "moderate": 2, "severe": 3}[coding.code]
        words = concept_text(severity)
        for word, grade in (("severe", 3), ("moderate", 2), ("mild", 1)):
            if word in words:
                return grade
    return None


def _grade_value(ext: dict) -> int | None:
    if isinstance(ext.get("valueInteger"), int):
        value = ext["valueInteger"]
        # An impossible grade says nothing: the neuropathy stays, ungraded (→ unknown).
        return value if 0 <= value <= 5 else None
    concept = ext.get("valueCodeableConcept")
    if concept is None:
        return None
    for coding in codings(concept, "grade"):
        digits = re.sub(r"\D", "", coding.code)
        if len(digits) == 1 and digits in "012345":
            return int(digits)
    match = _GRADE_IN_TEXT.search(concept_text(concept))
    return int(match.group(1)) if match else None


def read_adverse_events(record: PatientRecord) -> list[Diagnosis]:
    """Neuropathy recorded as an AdverseEvent (an optional source)."""
    return record.read_each("AdverseEvent", _read_adverse_event)


def _read_adverse_event(resource: dict) -> Iterator[Diagnosis]:
    if resource.get("actuality") == "potential":
        return
    event = as_dict(resource.get("event"), "event")
    if not codes.NEUROPATHY.matches(codings(event, "event"), concept_text(event)):
        return
    outcome = status_code(resource, "outcome")
    yield Diagnosis(
        ref=ref_of(resource),
        label=concept_text(event) or "adverse event: neuropathy",
        onset=parse_date(resource.get("date")),
        recorded=parse_date(resource.get("recordedDate")),
        active=outcome not in ("resolved", "recovered"),
        grade=condition_grade(resource),
    )
