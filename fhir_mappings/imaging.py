"""Which cross-sectional imaging was done, and when — from every place a record says so.

- ImagingStudy: ``modality`` or any ``series.modality`` (DICOM CT, MR, PT, under the DICOM URI or OID);
  ``started``. R4 ImagingStudy carries no findings.
- DiagnosticReport of imaging (category RAD / CT / MR / NMS of v2-0074, or LOINC LP29684-5, or a code
  naming CT / MR(I) / PET): its code or display names the modality; ``effective[x]``, else ``issued``;
  only final / amended / corrected / appended / preliminary reports. US Core has no ImagingStudy
  profile: many EHRs send only the report.
- Procedure that is a CT / MR / PET study (curated SNOMED and CPT codes, or a CPT radiology code /
  SNOMED code whose display names one), completed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.codes import Coding
from fhir_mappings.facts import ImagingDone
from fhir_mappings.fhirjson import (NotUsable, as_dict, as_list, codings, concept_text, concepts, effective_date,
                                    parse_date, ref_of)
from fhir_mappings.procedures import performed
from fhir_mappings.record import PatientRecord

# A CT-guided biopsy or drain uses the scanner to guide a needle: it is not staging imaging.
_GUIDED = re.compile(r"\bguided\b|\bguidance\b|\bbiopsy|\bdrain|\baspiration")
_MODALITY_WORDS = tuple((modality, re.compile(pattern)) for modality, pattern in codes.IMAGING_MODALITY_WORDS)


def read_imaging(record: PatientRecord) -> list[ImagingDone]:
    found = record.read_each("ImagingStudy", _read_study)
    found += record.read_each("DiagnosticReport", _read_report)
    found += record.read_each("Procedure", _read_procedure)
    return found


# --- ImagingStudy ----------------------------------------------------------------------------------

def _read_study(resource: dict) -> Iterator[ImagingDone]:
    modalities = [c.code.upper() for c in _modality_codings(resource.get("modality"), "modality")]
    for series in as_list(resource.get("series"), "series"):
        modalities += [c.code.upper() for c in _modality_codings(as_dict(series, "series").get("modality"),
                                                                 "series.modality")]
    if not set(modalities) & codes.CROSS_SECTIONAL_MODALITIES:
        # No CT / MR / PT modality coding: the study's procedure code may still name one (Synthea, some PACS).
        for concept in concepts(resource, "procedureCode"):
            modalities += modalities_named(codings(concept, "procedureCode"), concept_text(concept))
    yield ImagingDone(ref_of(resource), _study_date(resource), tuple(dict.fromkeys(modalities)))


def _study_date(resource: dict):
    """``started``, else the earliest ``series.started`` (some PACS bridges date only the series)."""
    started = parse_date(resource.get("started"))
    if started is not None:
        return started
    series_dates = [parse_date(as_dict(series, "series").get("started"))
                    for series in as_list(resource.get("series"), "series")]
    return min((d for d in series_dates if d is not None), default=None)


def _modality_codings(value, where: str) -> list[Coding]:
    """R4 has ``modality`` as a list of Codings and ``series.modality`` as one Coding; accept both.
    A modality without a system is read as DICOM (the only system R4 binds it to)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [c for item in items for c in codings(item, where) if c.system in (codes.DICOM, "")]


# --- DiagnosticReport ------------------------------------------------------------------------------

def _read_report(resource: dict) -> Iterator[ImagingDone]:
    category_concepts = concepts(resource, "category")
    categories = [c for concept in category_concepts for c in codings(concept, "category")]
    category_words = " ".join(concept_text(concept) for concept in category_concepts)
    imaging_category = (any((c.system, c.code.upper() if c.system == codes.V2_0074 else c.code)
                            in codes.IMAGING_REPORT_CATEGORIES for c in categories)
                        or any(w in category_words for w in codes.IMAGING_CATEGORY_WORDS))
    other_section = (any(c.system == codes.V2_0074 for c in categories)
                     or any(w in category_words for w in codes.NON_IMAGING_CATEGORY_WORDS))
    if not imaging_category and other_section:
        return  # a laboratory, pathology … report: "(CT)" there is Chlamydia trachomatis
    code = as_dict(resource.get("code"), "code")
    modalities = modalities_named(codings(code, "code"), concept_text(code))
    if not modalities and imaging_category:
        # A CT / MR category names the modality itself; RAD and NMS need the code to say which.
        modalities = tuple(dict.fromkeys(codes.IMAGING_CATEGORY_MODALITY[c.code.upper()] for c in categories
                                         if c.system == codes.V2_0074
                                         and c.code.upper() in codes.IMAGING_CATEGORY_MODALITY))
    if not modalities:
        # An X-ray or ultrasound report, or not an imaging report at all: read, and simply not staging
        # imaging (noting each one would bury the notes a person needs under every chest X-ray).
        return
    status = resource.get("status")
    if status not in codes.IMAGING_REPORT_STATUSES:
        raise NotUsable(f"imaging report with status {status!r}: not a finished report")
    when = effective_date(resource) or parse_date(resource.get("issued"))
    yield ImagingDone(ref_of(resource), when, modalities, source="DiagnosticReport")


def modalities_named(found: list[Coding], text: str) -> tuple[str, ...]:
    """The cross-sectional modalities (CT, MR, PT) a study's codes or words name, in that order."""
    named: list[str] = []
    for coding in found:
        if coding.system == codes.SNOMED:
            named += codes.IMAGING_PROCEDURE_SNOMED.get(coding.code, ())
        elif coding.system == codes.CPT:
            named += codes.IMAGING_PROCEDURE_CPT.get(coding.code, ())
    named += [modality for modality, words in _MODALITY_WORDS if words.search(text)]
    return tuple(m for m in ("CT", "MR", "PT") if m in named)


# --- Procedure -------------------------------------------------------------------------------------

def _read_procedure(resource: dict) -> Iterator[ImagingDone]:
    if resource.get("status") != "completed":
        return
    code = as_dict(resource.get("code"), "code")
    found = codings(code, "code")
    curated = [m for c in found for m in (codes.IMAGING_PROCEDURE_SNOMED.get(c.code, ()) if c.system == codes.SNOMED
                                          else codes.IMAGING_PROCEDURE_CPT.get(c.code, ())
                                          if c.system == codes.CPT else ())]
    if curated:
        modalities = tuple(m for m in ("CT", "MR", "PT") if m in curated)
    elif (_is_imaging_code(found) or not found) and not _GUIDED.search(concept_text(code)):
        # A standard code's display, or a free-text procedure ("CT chest abdomen pelvis"), naming the study.
        modalities = modalities_named([], concept_text(code))
    else:
        return
    if modalities:
        yield ImagingDone(ref_of(resource), performed(resource), modalities, source="Procedure")


def _is_imaging_code(found: list[Coding]) -> bool:
    """A CPT code in the radiology section (70010–79999), or a SNOMED / LOINC code: their displays are
    trusted to name the study (a local code's display is not: it may name anything)."""
    low, high = codes.CPT_RADIOLOGY_RANGE
    for coding in found:
        if coding.system == codes.CPT and coding.code.isdigit() and low <= int(coding.code) <= high:
            return True
        if coding.system in (codes.SNOMED, codes.LOINC) and coding.display:
            return True
    return False
