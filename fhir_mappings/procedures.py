"""Procedure → operations done: pancreatic resections, major surgery, minor and diagnostic procedures.

Major surgery is recognised by a curated code (SNOMED, CPT) or by naming one of the major operations
(``codes.MAJOR_SURGERY_WORDS``). Neither a name ending in "-ectomy" nor Epic's generic "Surgical
procedure" category makes a procedure major; diagnostic and minor procedures (biopsy, endoscopy and what
is done through it, dental, skin and eye procedures) never are; devices and access (stent, port, drain)
are minor unless the name also names a major operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.codes import Coding
from fhir_mappings.facts import ProcedureDone
from fhir_mappings.fhirjson import as_dict, codings, concept_text, effective_date, period_bounds, ref_of
from fhir_mappings.record import PatientRecord


def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Words matched at the start of a word; short ones (≤ 4 letters: "eye", "port", "peg") as whole words,
    so that "port" finds neither "report" nor "portal" and "eye" not "eyebrow"."""
    parts = [re.escape(w) + (r"\b" if len(w) <= 4 else "") for w in sorted(words, key=len, reverse=True)]
    return re.compile(r"\b(?:" + "|".join(parts) + ")")


_MAJOR = _word_pattern(codes.MAJOR_SURGERY_WORDS)
_MINOR = _word_pattern(codes.MINOR_PROCEDURE_WORDS)
_DEVICE = _word_pattern(codes.DEVICE_PROCEDURE_WORDS)
_NOT_AN_OPERATION = _word_pattern(codes.NOT_AN_OPERATION_WORDS)


def read_procedures(record: PatientRecord) -> list[ProcedureDone]:
    return record.read_each("Procedure", _read_procedure)


def _read_procedure(resource: dict) -> Iterator[ProcedureDone]:
    code = as_dict(resource.get("code"), "code")
    found = codings(code, "code")
    text = concept_text(code)
    yield ProcedureDone(
        ref=ref_of(resource),
        date=performed(resource),
        label=str(code.get("text") or next((c.display for c in found if c.display), "procedure")),
        kind=procedure_kind(found, text),
        status=resource.get("status"),
    )


def procedure_kind(found: list[Coding], text: str) -> str:
    """``pancreatic-resection`` | ``major`` | ``minor`` | ``other`` (what the criteria need to know)."""
    if codes.PANCREATIC_RESECTION.matches(found, text):
        return "pancreatic-resection"
    if _NOT_AN_OPERATION.search(text):
        return "other"
    if any(codes.MAJOR_SURGERY.code_matches(c) for c in found):  # a curated code is the surest sign
        return "major"
    if _MINOR.search(text):
        return "minor"
    if _MAJOR.search(text):
        return "major"
    if _DEVICE.search(text):
        return "minor"
    return "other"


def performed(resource: dict):
    """The day the procedure ended (a period's end, else its start, else the dateTime)."""
    if "performedPeriod" in resource:
        start, end = period_bounds(resource["performedPeriod"], "performedPeriod")
        return end or start
    return effective_date(resource, "performed")
