"""One entry point: a PatientRecord and an as-of date → PatientFacts."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from fhir_mappings import conditions, imaging, medications, observations, patient, procedures
from fhir_mappings.facts import PatientFacts
from fhir_mappings.fhirjson import memoised_codings
from fhir_mappings.record import PatientRecord


def extract_facts(record: PatientRecord, as_of: date) -> PatientFacts:
    with memoised_codings():
        return _extract_facts(record, as_of)


def _extract_facts(record: PatientRecord, as_of: date) -> PatientFacts:
    facts = PatientFacts(as_of=as_of, patient_ref=record.patient_ref)
    facts.birth_date = patient.birth_date(record.patient)
    facts.gender = patient.gender(record.patient)
    facts.deceased, facts.deceased_on, facts.deceased_unreadable = patient.deceased(record.patient)
    if facts.deceased_unreadable:
        record.note(record.patient_ref or "Patient", "noted: deceasedDateTime unreadable")
    if record.patient and record.patient.get("birthDate") is not None and facts.birth_date is None:
        record.note(record.patient_ref or "Patient", "noted: birthDate unreadable")

    for bucket, diagnosis in conditions.read_conditions(record):
        getattr(facts, bucket).append(diagnosis)
    facts.neuropathies += conditions.read_adverse_events(record)
    facts.liver_metastases += observations.read_liver_metastasis_history(record)

    liver_refs = {d.ref for d in facts.liver_metastases}
    facts.liver_lesions = observations.read_liver_lesions(record, liver_refs)
    facts.performance = observations.read_performance(record)
    facts.ca19_9 = observations.read_ca19_9(record)
    facts.disease_status = observations.read_disease_status(record)
    facts.pregnancy_status = observations.read_pregnancy_status(record)
    facts.breastfeeding = observations.read_breastfeeding(record)
    facts.unresectable = observations.read_unresectable(record)
    facts.unresectable += observations.read_condition_stages(record, {d.ref for d in facts.pdac})

    for drug_class, use in medications.read_medications(record):
        getattr(facts, drug_class).append(use)
    facts.procedures = procedures.read_procedures(record)
    facts.imaging = imaging.read_imaging(record)

    _drop_future(facts, record)
    facts.notes = record.notes
    return facts


def _drop_future(facts: PatientFacts, record: PatientRecord) -> None:
    """The general rule: anything dated after the as-of date does not exist yet."""
    for f in fields(facts):
        items = getattr(facts, f.name)
        if not isinstance(items, list) or f.name == "notes":
            continue
        kept = []
        for item in items:
            when = getattr(item, "date", None)
            if when is not None and when > facts.as_of:
                record.note(item.ref, f"ignored: dated {when.isoformat()}, after the as-of date")
            else:
                kept.append(item)
        setattr(facts, f.name, kept)
