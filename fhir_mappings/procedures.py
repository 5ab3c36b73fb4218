"""Procedure → operations done: pancreatic resections, major surgery, minor and diagnostic procedures."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.facts import ProcedureDone
from fhir_mappings.fhirjson import as_dict, codings, concept_text, concepts, effective_date, period_bounds, ref_of
from fhir_mappings.record import PatientRecord

# Matched at the start of a word, so that "port" does not find "report" nor "eus" "pneumonectomy";
# nor words that merely begin with "port": portal (vein), porto(caval …), portion (of liver).
_MINOR = re.compile(r"\b(?!portal|porto|portion)(" + "|".join(re.escape(k) for k in codes.MINOR_PROCEDURE_KEYWORDS)
                    + ")")


def read_procedures(record: PatientRecord) -> list[ProcedureDone]:
    return record.read_each("Procedure", _read_procedure)


def _read_procedure(resource: dict) -> Iterator[ProcedureDone]:
    code = as_dict(resource.get("code"), "code")
    found = codings(code, "code")
    text = concept_text(code)
    categories = {(c.system, c.code) for cat in concepts(resource, "category") for c in codings(cat, "category")}
    yield ProcedureDone(
        ref=ref_of(resource),
        date=_performed(resource),
        label=str(code.get("text") or next((c.display for c in found if c.display), "procedure")),
        kind=_kind(found, text, categories),
        status=resource.get("status"),
    )


def _kind(found, text: str, categories: set) -> str:
    if codes.PANCREATIC_RESECTION.matches(found, text):
        return "pancreatic-resection"
    if _MINOR.search(text):
        return "minor"
    if categories & codes.SURGICAL_CATEGORY or codes.MAJOR_SURGERY.matches(found, text):
        return "major"
    return "other"


def _performed(resource: dict):
    """The day the procedure ended (a period's end, else its start, else the dateTime)."""
    if "performedPeriod" in resource:
        start, end = period_bounds(resource["performedPeriod"], "performedPeriod")
        return end or start
    return effective_date(resource, "performed")
