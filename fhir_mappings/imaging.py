"""ImagingStudy → which cross-sectional imaging was done, and when (R4 ImagingStudy carries no findings)."""

from __future__ import annotations

from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.facts import ImagingDone
from fhir_mappings.fhirjson import as_dict, as_list, codings, parse_date, ref_of
from fhir_mappings.record import PatientRecord


def read_imaging(record: PatientRecord) -> list[ImagingDone]:
    return record.read_each("ImagingStudy", _read_study)


def _read_study(resource: dict) -> Iterator[ImagingDone]:
    modalities = [c.code.upper() for c in _modality_codings(resource.get("modality"), "modality")]
    for series in as_list(resource.get("series"), "series"):
        modalities += [c.code.upper() for c in _modality_codings(as_dict(series, "series").get("modality"),
                                                                 "series.modality")]
    yield ImagingDone(ref_of(resource), parse_date(resource.get("started")), tuple(dict.fromkeys(modalities)))


def _modality_codings(value, where: str):
    """R4 has ``modality`` as a list of Codings and ``series.modality`` as one Coding; accept both."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [c for item in items for c in codings(item, where) if c.system in (codes.DICOM, "")]
