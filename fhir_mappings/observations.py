"""Observation → performance status, liver lesions, CA 19-9, disease status, pregnancy, staging hints."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from fhir_mappings import codes
from fhir_mappings.codes import Coding
from fhir_mappings.facts import Diagnosis, LesionMeasurement, Reading
from fhir_mappings.fhirjson import (
    MalformedResource,
    NotUsable,
    absent_reason,
    as_dict,
    as_list,
    codings,
    concept_text,
    concepts,
    effective_date,
    memoised,
    observed_number,
    ref_of,
    reference,
)
from fhir_mappings.record import PatientRecord

T = TypeVar("T")


def _code_set(resource: dict) -> frozenset[tuple[str, str]]:
    return memoised(resource, "code_set", _compute_code_set)


def _compute_code_set(resource: dict) -> frozenset[tuple[str, str]]:
    return frozenset((c.system, c.code) for c in codings(resource.get("code"), "code"))


def _read_coded(record: PatientRecord, wanted: set[tuple[str, str]],
                reader: Callable[[dict], Iterable[T]]) -> list[T]:
    """``record.read_each("Observation", reader)`` for a reader that reads nothing (and notes nothing)
    from an Observation whose code is none of ``wanted``: only the others reach it — those with a
    wanted code, and those whose code cannot be read (so the reader notes them as before)."""
    observations = record.by_type.get("Observation", [])
    indexed = memoised(observations, "code_index", _code_index)
    return record.read_each("Observation", reader,
                            among=[res for res, found in indexed if found is None or not found.isdisjoint(wanted)])


def _code_index(observations: list[dict]) -> list[tuple[dict, frozenset[tuple[str, str]] | None]]:
    indexed = []
    for resource in observations:
        try:
            indexed.append((resource, _code_set(resource)))
        except Exception:  # noqa: BLE001 — the reader meets the same error and notes it
            indexed.append((resource, None))
    return indexed


def _value_codings(resource: dict) -> list[Coding]:
    value = resource.get("valueCodeableConcept")
    return codings(value, "valueCodeableConcept") if value is not None else []


# --- Performance status --------------------------------------------------------------------

ECOG_FINDING_CODES = {(codes.SNOMED, code) for code in codes.ECOG_GRADE_FINDINGS}
PERFORMANCE_CODES = codes.ECOG_CODES | codes.KARNOFSKY_CODES | ECOG_FINDING_CODES
_STANDARD_SYSTEMS = (codes.LOINC, codes.SNOMED)


def karnofsky_to_ecog(score: float) -> int:
    """The protocol's conversion: ≥ 90 → 0, ≥ 70 → 1, ≥ 50 → 2, ≥ 30 → 3, ≥ 10 → 4, else 5."""
    for floor, ecog in ((90, 0), (70, 1), (50, 2), (30, 3), (10, 4)):
        if score >= floor:
            return ecog
    return 5


def read_performance(record: PatientRecord) -> list[Reading]:
    """ECOG and Karnofsky, however written: LOINC 89247-1 / 89262-0 / 89243-0, SNOMED 423740007, an ECOG
    grade finding as the code, or a flowsheet row with only a local code named "ECOG" / "Karnofsky"."""
    indexed = memoised(record.by_type.get("Observation", []), "code_index", _code_index)
    among = [res for res, found in indexed
             if found is None or not found.isdisjoint(PERFORMANCE_CODES) or _local_performance_row(res, found)]
    return record.read_each("Observation", _read_performance, among=among)


def _local_performance_row(resource: dict, found: frozenset[tuple[str, str]]) -> str | None:
    """"ecog" / "karnofsky" for a row with no LOINC or SNOMED code whose name says which scale it is."""
    if any(system in _STANDARD_SYSTEMS for system, _ in found):
        return None
    name = concept_text(resource.get("code"))
    return next((scale for word, scale in codes.PERFORMANCE_NAME_WORDS.items() if word in name), None)


def _performance_scale(resource: dict) -> str | None:
    found = _code_set(resource)
    if found & codes.ECOG_CODES or found & ECOG_FINDING_CODES:
        return "ecog"
    if found & codes.KARNOFSKY_CODES:
        return "karnofsky"
    return _local_performance_row(resource, found)


def _read_performance(resource: dict) -> Iterator[Reading]:
    scale = _performance_scale(resource)
    if scale == "ecog":
        grade = _ecog_grade(resource)
        yield Reading(ref_of(resource), effective_date(resource), grade, f"ECOG {grade}")
    elif scale == "karnofsky":
        measured = observed_number(resource, codes.KARNOFSKY_TEXT_NAMES, "Karnofsky score")
        if measured is None:
            raise NotUsable("no value (a Karnofsky score without one)")
        score, unit = measured
        if unit.lower() not in ("", "%", "{score}", "score", "percent", "{percent}") or not 0 <= score <= 100:
            raise NotUsable(f"unreadable value: Karnofsky {score:g}{unit} (0–100 % expected)")
        grade = karnofsky_to_ecog(score)
        yield Reading(ref_of(resource), effective_date(resource), grade,
                      f"Karnofsky {score:g} (= ECOG {grade})")


def _ecog_grade(resource: dict) -> int:
    """The grade 0–5: a grade finding as the code; a coded answer (LOINC LA…, SNOMED grade finding) in the
    value or the interpretation; else the number (integer, quantity or text)."""
    for system, code in _code_set(resource):
        if system == codes.SNOMED and code in codes.ECOG_GRADE_FINDINGS:
            return codes.ECOG_GRADE_FINDINGS[code]
    answers = _value_codings(resource) + [
        c for concept in concepts(resource, "interpretation") for c in codings(concept, "interpretation")]
    for coding in answers:
        if coding.code in codes.ECOG_ANSWERS:
            return codes.ECOG_ANSWERS[coding.code]
        if coding.system == codes.SNOMED and coding.code in codes.ECOG_GRADE_FINDINGS:
            return codes.ECOG_GRADE_FINDINGS[coding.code]
    for coding in answers:  # a bare "0"–"5" code (local answer lists)
        if coding.code.isdigit() and 0 <= int(coding.code) <= 5:
            return int(coding.code)
    measured = observed_number(resource, codes.ECOG_TEXT_NAMES, "ECOG grade")
    if measured is None:
        raise NotUsable("no value (an ECOG observation without one)")
    number, _unit = measured
    if not 0 <= number <= 5 or number != int(number):
        raise NotUsable(f"unreadable value: ECOG {number:g} is not a grade 0–5")
    return int(number)


# --- Liver lesions -------------------------------------------------------------------------

def read_liver_lesions(record: PatientRecord, liver_conditions: set[str]) -> list[LesionMeasurement]:
    """Longest diameters of lesions located in the liver, in mm.

    ``liver_conditions`` are the references of liver-metastasis Conditions, so that a measurement
    whose ``focus`` is such a Condition counts as a liver lesion.
    """
    return _read_coded(record, codes.TUMOUR_SIZE_CODES | {codes.LONGEST_DIAMETER},
                       lambda res: _read_lesion(res, record, liver_conditions))


def _read_lesion(resource: dict, record: PatientRecord, liver_conditions: set[str]) -> Iterator[LesionMeasurement]:
    found = _code_set(resource)
    if found & codes.TUMOUR_SIZE_CODES:
        measured = None
        for component in as_list(resource.get("component"), "component"):
            component = as_dict(component, "component")
            if codes.LONGEST_DIAMETER in {(c.system, c.code) for c in codings(component.get("code"), "component")}:
                measured = observed_number(component, SIZE_TEXT_NAMES, "longest dimension")
        if measured is None:
            raise NotUsable("no value (a tumour size without a longest-dimension 33728-7 component)")
    elif codes.LONGEST_DIAMETER in found:
        measured = observed_number(resource, SIZE_TEXT_NAMES, "longest dimension")
        if measured is None:
            raise NotUsable("no value (a longest dimension without one)")
    else:
        return
    lesion = _liver_lesion_key(resource, record, liver_conditions)
    if lesion is None:
        return
    value, unit = measured
    factor = codes.LENGTH_UNITS_MM.get(unit.lower())
    if factor is None:
        record.note(ref_of(resource), f"skipped: tumour size in unit {unit!r} (mm or cm expected)")
        return
    yield LesionMeasurement(ref_of(resource), effective_date(resource), value * factor, lesion)


SIZE_TEXT_NAMES = ("longest diameter", "longest dimension", "diameter", "size")


def _liver_lesion_key(resource: dict, record: PatientRecord, liver_conditions: set[str]) -> str | None:
    """The lesion's identity when the measurement is located in the liver, else None.

    The identity is the ``focus`` BodyStructure when there is one (however the liver is named: the
    Observation's ``bodySite``, the structure's location, a liver-metastasis Condition), so that one
    lesion measured twice counts once; else the Observation itself.
    """
    in_liver = any(_is_liver(site) for site in concepts(resource, "bodySite"))
    structure = None
    for focus in as_list(resource.get("focus"), "focus"):
        target_ref = reference(focus, "focus")
        target = record.resolve(target_ref)
        if target is None:
            in_liver = in_liver or target_ref in liver_conditions
            continue
        if target.get("resourceType") == "BodyStructure":
            structure = structure or ref_of(target)
            in_liver = in_liver or _body_structure_in_liver(target)
        in_liver = in_liver or ref_of(target) in liver_conditions
    if not in_liver:
        return None
    return structure or ref_of(resource)


def _is_liver(concept: dict) -> bool:
    return codes.LIVER_SITE.matches(codings(concept, "site"), concept_text(concept))


def _body_structure_in_liver(structure: dict) -> bool:
    places = concepts(structure, "location") + concepts(structure, "locationQualifier")
    for included in as_list(structure.get("includedStructure"), "includedStructure"):
        places += concepts(as_dict(included, "includedStructure"), "structure")
    return any(_is_liver(place) for place in places)


# --- CA 19-9 -------------------------------------------------------------------------------

def read_ca19_9(record: PatientRecord) -> list[Reading]:
    return _read_coded(record, codes.CA19_9_CODES, lambda res: _read_ca19_9(res, record))


def _read_ca19_9(resource: dict, record: PatientRecord) -> Iterator[Reading]:
    if not _code_set(resource) & codes.CA19_9_CODES:
        return
    measured = observed_number(resource, codes.CA19_9_TEXT_NAMES, "CA 19-9")
    if measured is None:
        raise NotUsable("no value (a CA 19-9 result without one)")
    value, unit = measured
    if unit and unit.lower() not in codes.CA19_9_UNITS:
        record.note(ref_of(resource), f"skipped: CA 19-9 in unit {unit!r} (U/mL expected)")
        return
    yield Reading(ref_of(resource), effective_date(resource), value, f"CA 19-9 {value:g} U/mL")


# --- Disease status ------------------------------------------------------------------------

_STATUS_WORDS = (("progress", "progression"), ("worse", "progression"), ("stable", "stable"),
                 ("improv", "improved"), ("remission", "remission"), ("undetermined", "undetermined"))
# "no progression", "not worse", "non-progressive", "without evidence of progression": not a progression.
_NEGATED_PROGRESSION = re.compile(r"\b(?:no|not|non|without)[\s-]+(?:(?:evidence|signs?) of\s+)?(?:disease\s+)?"
                                  r"(?:progress|worse)\w*")


def read_disease_status(record: PatientRecord) -> list[Reading]:
    return _with_canonical_focus(record, _read_coded(record, codes.DISEASE_STATUS_CODES, _read_disease_status))


def _with_canonical_focus(record: PatientRecord, readings: list[Reading]) -> list[Reading]:
    """The readings with their ``focus`` references as the facts name resources (``Type/id``), so that a
    Synthea-style ``urn:uuid:`` focus compares equal to the Condition it names."""
    return [Reading(r.ref, r.date, r.value, r.label, focus=tuple(record.canonical(f) for f in r.focus))
            if r.focus else r for r in readings]


def _read_disease_status(resource: dict) -> Iterator[Reading]:
    if not _code_set(resource) & codes.DISEASE_STATUS_CODES:
        return
    reason = absent_reason(resource)
    if reason is not None:
        raise NotUsable(f"no value (dataAbsentReason: {reason})")
    status = None
    for coding in _value_codings(resource):
        status = codes.DISEASE_STATUS_VALUES.get(coding.code)
        if status:
            break
    if status is None:
        words = _NEGATED_PROGRESSION.sub(" ", concept_text(resource.get("valueCodeableConcept")))
        status = next((s for word, s in _STATUS_WORDS if word in words), None)
    if status is None:
        raise NotUsable("disease status without a recognised value")
    yield Reading(ref_of(resource), effective_date(resource), status, f"disease status: {status}",
                  focus=focus_refs(resource))


def focus_refs(resource: dict) -> tuple[str, ...]:
    """The ``focus`` references of an Observation, as written (the criteria compare them with facts' refs)."""
    return tuple(ref for ref in (reference(f, "focus") for f in as_list(resource.get("focus"), "focus")) if ref)


# --- Pregnancy and breastfeeding -----------------------------------------------------------

def read_pregnancy_status(record: PatientRecord) -> list[Reading]:
    return _read_coded(record, codes.PREGNANCY_STATUS_CODES, _read_pregnancy_status)


def _read_pregnancy_status(resource: dict) -> Iterator[Reading]:
    if not _code_set(resource) & codes.PREGNANCY_STATUS_CODES:
        return
    reason = absent_reason(resource)
    if reason is not None:
        raise NotUsable(f"no value (dataAbsentReason: {reason})")
    for coding in _value_codings(resource):
        if coding.code in codes.PREGNANCY_STATUS_VALUES:
            status = codes.PREGNANCY_STATUS_VALUES[coding.code]
            yield Reading(ref_of(resource), effective_date(resource), status, f"pregnancy status: {status}")
            return
    status = _pregnancy_status_text(resource)
    if status is not None:
        yield Reading(ref_of(resource), effective_date(resource), status, f"pregnancy status: {status}")
        return
    raise NotUsable("unreadable value (pregnancy status not pregnant / pregnant / unknown)")


def _pregnancy_status_text(resource: dict) -> str | None:
    """A status written as words (a text-only value, a local code's display, or valueString)."""
    value = resource.get("valueCodeableConcept")
    words = concept_text(value) if value is not None else str(resource.get("valueString") or "").lower()
    for word, status in codes.PREGNANCY_STATUS_TEXT:
        if re.search(rf"\b{word}", words):
            return status
    return None


def read_breastfeeding(record: PatientRecord) -> list[Reading]:
    return _read_coded(record, codes.BREASTFEEDING_CODES, _read_breastfeeding)


def _read_breastfeeding(resource: dict) -> Iterator[Reading]:
    if not _code_set(resource) & codes.BREASTFEEDING_CODES:
        return
    reason = absent_reason(resource)
    if reason is not None:
        raise NotUsable(f"no value (dataAbsentReason: {reason})")
    value_codes = {(c.system, c.code) for c in _value_codings(resource)}
    words = concept_text(resource.get("valueCodeableConcept")) if "valueCodeableConcept" in resource else ""
    if resource.get("valueBoolean") is True or value_codes & codes.BREASTFEEDING_YES:
        feeding = True
    elif resource.get("valueBoolean") is False or value_codes & codes.BREASTFEEDING_NO:
        feeding = False
    elif words:
        feeding = ("breast" in words or "lactat" in words) and not re.search(r"\bnot\b|\bno\b|stopped", words)
    else:
        raise NotUsable("no value (a breastfeeding status without one)")
    yield Reading(ref_of(resource), effective_date(resource), feeding,
                  "breastfeeding" if feeding else "not breastfeeding")


# --- Metastasis history and staging --------------------------------------------------------

def read_liver_metastasis_history(record: PatientRecord) -> list[Diagnosis]:
    """mCODE history-of-metastatic-cancer Observations that place a metastasis in the liver."""
    return _read_coded(record, codes.METASTASIS_HISTORY_LIVER | {(codes.SNOMED, "1287652008")},
                       _read_metastasis_history)


def _read_metastasis_history(resource: dict) -> Iterator[Diagnosis]:
    found = _code_set(resource)
    to_liver = bool(found & codes.METASTASIS_HISTORY_LIVER) or (
        (codes.SNOMED, "1287652008") in found and any(_is_liver(s) for s in concepts(resource, "bodySite")))
    if not to_liver or resource.get("valueBoolean") is False:
        return
    yield Diagnosis(ref_of(resource), "history of cancer metastatic to liver", effective_date(resource))


_T4 = re.compile(r"(?<![a-z0-9])[cpy]{0,2}t4[a-d]?(?![0-9])", re.IGNORECASE)


def read_unresectable(record: PatientRecord) -> list[Reading]:
    """Evidence against a resectable primary: a T4 category, arterial involvement, locally advanced."""
    return _with_canonical_focus(record, record.read_each("Observation", _read_unresectable))


def _read_unresectable(resource: dict) -> Iterator[Reading]:
    found = _code_set(resource)
    value = resource.get("valueCodeableConcept")
    words = concept_text(value) if value is not None else ""
    if found & codes.T_CATEGORY_CODES:
        value_codes = " ".join(c.code for c in _value_codings(resource))
        if _T4.search(words) or _T4.search(value_codes):
            yield Reading(ref_of(resource), effective_date(resource), "T4 primary tumour", "clinical T4",
                          focus=focus_refs(resource))
    elif words and _affirms_unresectable(words):
        yield Reading(ref_of(resource), effective_date(resource), words, words, focus=focus_refs(resource))


# A finding that denies what it names is no evidence against resectability: "no arterial involvement",
# "borderline resectable without arterial reconstruction" (the trial's own inclusion wording), "arterial
# involvement: none". Only a keyword that its clause (up to , ; .) does not negate counts.
_NEGATED_BEFORE = re.compile(r"\b(?:no|not|without|negative for|free of|absence of|absent|ruled out)\b")
_NEGATED_AFTER = re.compile(r"\s*[:=-]?\s*(?:none|absent|no\b|not\b|negative)")
_CLAUSE_BREAK = re.compile(r"[,;.]")


def _affirms_unresectable(words: str) -> bool:
    for keyword in codes.UNRESECTABLE_KEYWORDS:
        for match in re.finditer(re.escape(keyword), words):
            clause_before = _CLAUSE_BREAK.split(words[:match.start()])[-1]
            if not _NEGATED_BEFORE.search(clause_before) and not _NEGATED_AFTER.match(words[match.end():]):
                return True
    return False


def read_condition_stages(record: PatientRecord, pdac_refs: set[str]) -> list[Reading]:
    """A T4 written on the PDAC Condition itself (``stage.summary`` / ``stage.type``), and the staging
    Observations its ``stage.assessment`` names: both are about the pancreatic primary (focus = the PDAC)."""
    found: list[Reading] = []
    for condition in record.resources("Condition"):
        ref = ref_of(condition)
        if ref not in pdac_refs:
            continue
        try:
            for stage in as_list(condition.get("stage"), "stage"):
                stage = as_dict(stage, "stage")
                words = " ".join(concept_text(stage.get(k)) for k in ("summary", "type") if stage.get(k) is not None)
                value_codes = " ".join(c.code for k in ("summary",) if stage.get(k) is not None
                                       for c in codings(stage[k], "stage.summary"))
                if _T4.search(words) or _T4.search(value_codes):
                    found.append(Reading(ref, None, "T4 primary tumour", "T4 on the pancreatic cancer's stage",
                                         focus=(ref,)))
                for assessment in as_list(stage.get("assessment"), "stage.assessment"):
                    target = record.resolve(reference(assessment, "stage.assessment"))
                    if target is not None and target.get("resourceType") == "Observation":
                        found += [Reading(r.ref, r.date, r.value, r.label, focus=(ref,))
                                  for r in _read_unresectable(target)]
        except MalformedResource:
            continue  # the Condition reader notes a broken Condition; its stage is simply not read
    return found
