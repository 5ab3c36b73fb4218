"""Patient → birth date and administrative gender."""

from __future__ import annotations

from datetime import date

from fhir_mappings.fhirjson import MalformedResource, parse_date


def birth_date(patient: dict | None) -> date | None:
    if not patient:
        return None
    try:
        return parse_date(patient.get("birthDate"))
    except MalformedResource:
        return None


def gender(patient: dict | None) -> str | None:
    value = (patient or {}).get("gender")
    return value if isinstance(value, str) else None
