"""Patient → birth date, administrative gender and whether (and when) the patient died."""

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


def deceased(patient: dict | None) -> tuple[bool, date | None, bool]:
    """(deceased?, the date written in deceasedDateTime, that date unreadable?).

    ``deceasedBoolean`` true says the patient died without a date; a ``deceasedDateTime`` says when
    (its own calendar date, never converted). Whether a date after the as-of date counts is the
    ``alive`` rule's call, not the reader's.
    """
    if not patient:
        return False, None, False
    if patient.get("deceasedBoolean") is True:
        return True, None, False
    if "deceasedDateTime" not in patient:
        return False, None, False
    try:
        when = parse_date(patient.get("deceasedDateTime"))
    except MalformedResource:
        return True, None, True
    return when is not None, when, False
