"""MedicationStatement / MedicationRequest / MedicationAdministration → medicine use by class.

mCODE STU1 recorded treatment as MedicationStatement; STU2+ (following US Core) uses
MedicationRequest and MedicationAdministration. All three are read, with the medicine given as a
CodeableConcept or as a Reference to a contained or separately fetched Medication.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhir_mappings import codes
from fhir_mappings.codes import Coding, Drug
from fhir_mappings.facts import MedicationUse
from fhir_mappings.fhirjson import (
    as_dict,
    as_list,
    codings,
    concept_text,
    effective_date,
    parse_date,
    period_bounds,
    ref_of,
    reference,
)
from fhir_mappings.record import PatientRecord

# Matched at the start of a word: "otic" is not "antibiotic", "dermal" not "transdermal".
_LOCAL = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in codes.LOCAL_USE_WORDS) + ")")
_NOT_LOCAL = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in codes.NOT_LOCAL_WORDS) + ")")
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
CLASSES = (
    ("anticancer", codes.ANTICANCER_DRUGS, codes.ANTICANCER_ATC_PREFIX),
    ("immunosuppressants", codes.IMMUNOSUPPRESSANTS, codes.IMMUNOSUPPRESSANT_ATC_PREFIX),
    ("corticosteroids", codes.CORTICOSTEROIDS, codes.CORTICOSTEROID_ATC_PREFIX),
)


def read_medications(record: PatientRecord) -> list[tuple[str, MedicationUse]]:
    """(class, use) for every medicine of a class we know; one resource may fall in several."""
    found: list[tuple[str, MedicationUse]] = []
    for rtype in MEDICATION_TYPES:
        found += record.read_each(rtype, lambda res: _read_medication(res, record))
    return found


def _read_medication(resource: dict, record: PatientRecord) -> Iterator[tuple[str, MedicationUse]]:
    medicine_codings, text, form = _medicine(resource, record)
    start, end, last, open_ended = _dates(resource)
    reasons = tuple(record.canonical(ref, resource) for ref in _reasons(resource))
    reason_cancer = _reason_code_cancer(resource)
    local = local_use(resource, text, form)
    for name, drugs, atc_prefix in CLASSES:
        matched = identify(drugs, atc_prefix, medicine_codings, text)
        if matched and name == "immunosuppressants" and local:
            record.note(ref_of(resource), f"not counted as immunosuppression: {', '.join(matched)} for local use "
                                          f"({local}) does not suppress the immune system")
        if matched and not medicine_codings and "medicationReference" in resource \
                and record.resolve(reference(resource["medicationReference"]), container=resource) is None:
            record.note(ref_of(resource), f"noted: read as {', '.join(matched)} from the reference's display only "
                                          "(the Medication is not in the record)")
        if matched:
            yield name, MedicationUse(
                ref=ref_of(resource),
                resource_type=resource["resourceType"],
                drugs=matched,
                label=_label(text) or ", ".join(matched),
                status=resource.get("status"),
                start=start,
                end=end,
                last_date=last,
                ongoing=open_ended and resource.get("status") not in ("completed", "stopped"),
                reasons=reasons,
                local_route=local,
                reason_cancer=reason_cancer,
            )


def _reasons(resource: dict) -> tuple[str, ...]:
    """``reasonReference`` targets (MedicationStatement / MedicationRequest / MedicationAdministration)."""
    found = (reference(r, "reasonReference") for r in as_list(resource.get("reasonReference"), "reasonReference"))
    return tuple(ref for ref in found if ref)


def _label(text: str) -> str:
    """The medicine's words without the repetition of a text that equals its display (Synthea, Epic)."""
    words = text.split()
    half = len(words) // 2
    if words and len(words) % 2 == 0 and words[:half] == words[half:]:
        words = words[:half]
    return " ".join(words)


def _reason_code_cancer(resource: dict) -> str | None:
    """What a ``reasonCode`` (EHRs often code the indication instead of referencing it) says the drug is for:
    ``this`` (the pancreatic cancer or a liver / secondary metastasis), ``other`` (another malignancy), or
    None (no reason code, or one that names no cancer)."""
    this = other = False
    for concept in as_list(resource.get("reasonCode"), "reasonCode"):
        found, text = codings(concept, "reasonCode"), concept_text(concept)
        if (codes.PDAC_SPECIFIC.matches(found, text) or codes.PANCREATIC_MALIGNANCY.matches(found, text)
                or codes.LIVER_METASTASIS.matches(found, text)):
            this = True
        elif codes.OTHER_MALIGNANCY.matches(found, text):
            other = True
    return "this" if this else "other" if other else None


def _routes(resource: dict) -> list[dict]:
    """The route CodeableConcepts: ``dosage.route`` (Statement: a list; Administration: one) and
    ``dosageInstruction.route`` (Request)."""
    dosages = resource.get("dosage")
    items = as_list(resource.get("dosageInstruction"), "dosageInstruction")
    if isinstance(dosages, list):
        items += dosages
    elif dosages is not None:
        items.append(as_dict(dosages, "dosage"))
    return [as_dict(as_dict(d, "dosage").get("route"), "route") for d in items
            if as_dict(d, "dosage").get("route") is not None]


def local_use(resource: dict, product_text: str, form_text: str) -> str | None:
    """The words saying this medicine is used locally (topical, ophthalmic, otic, nasal, vaginal …): from the
    route when one is given, else the dose form or the product's name. None = systemic (no route stated
    counts as systemic: the safe reading for an exclusion is that the drug reaches the blood)."""
    routes = _routes(resource)
    for route in routes:
        coded = next((c for c in codings(route, "route") if c.code in codes.LOCAL_ROUTE_CODES), None)
        if coded is not None:
            return str(route.get("text") or coded.display or coded.code)
        words = concept_text(route)
        if _LOCAL.search(words) and not _NOT_LOCAL.search(words):
            return str(route.get("text") or next((c.display for c in codings(route, "route") if c.display), words))
    if routes:
        return None  # a route is given and it is not local (oral, intravenous …)
    for words in (form_text, product_text):
        hit = _LOCAL.search(words)
        if hit and not _NOT_LOCAL.search(words):
            return hit.group(0)
    return None


_NAME_PATTERNS: dict[str, re.Pattern[str]] = {}


def _names(name: str, text: str) -> bool:
    """The drug's name as a word of its own, not the tail of another one: "sirolimus" is not in
    "temsirolimus" (an anticancer mTOR inhibitor), nor "tacrolimus" in "pimecrolimus"."""
    if name not in text:
        return False
    pattern = _NAME_PATTERNS.get(name)
    if pattern is None:
        pattern = _NAME_PATTERNS.setdefault(name, re.compile(r"(?<![a-z])" + re.escape(name)))
    return pattern.search(text) is not None


def identify(drugs: tuple[Drug, ...], atc_prefix: str, found: list[Coding], text: str) -> tuple[str, ...]:
    """Names of the drugs of a class that the codings or text name (RxNorm, ATC, or the name)."""
    rxnorm = {c.code for c in found if c.system == codes.RXNORM}
    named = [d.name for d in drugs if d.rxnorm & rxnorm or any(_names(n, text) for n in d.names)]
    # nab-paclitaxel's names contain "paclitaxel": report the more specific drug only.
    if "nab-paclitaxel" in named and "paclitaxel" in named:
        named.remove("paclitaxel")
    if not named and any(c.system == codes.ATC and c.code.upper().startswith(atc_prefix) for c in found):
        named = [next((c.display for c in found if c.display), None) or f"ATC {atc_prefix}"]
    return tuple(dict.fromkeys(named))


def _medicine(resource: dict, record: PatientRecord) -> tuple[list[Coding], str, str]:
    """The codings and lower-cased text naming the medicine, whichever way it is given, and its dose form's
    words (``Medication.form``; "" when none)."""
    if "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
        return codings(concept, "medicationCodeableConcept"), concept_text(concept), ""
    ref = reference(resource.get("medicationReference"), "medicationReference")
    medication = record.resolve(ref, container=resource)
    if medication is None:
        display = str(as_dict(resource.get("medicationReference"), "medicationReference").get("display") or "")
        if ref and not display:
            # Nothing names the medicine at all. (One read from its display is noted only when it matters:
            # below, when the display names a drug the trial looks for — Epic sends every order this way.)
            record.note(ref_of(resource), f"not used: medication {ref} is not in the record and the reference "
                                          "has no display")
        return [], display.lower(), ""
    found = codings(medication.get("code"), "Medication.code")
    words = [concept_text(medication.get("code"))]
    for ingredient in as_list(medication.get("ingredient"), "Medication.ingredient"):
        item = as_dict(ingredient, "ingredient").get("itemCodeableConcept")
        if item is not None:
            found += codings(item, "ingredient")
            words.append(concept_text(item))
    form = concept_text(medication["form"]) if medication.get("form") is not None else ""
    return found, " ".join(w for w in words if w), form


def _dates(resource: dict) -> tuple:
    """(start, end, newest date, open-ended period?) as each resource type records them."""
    rtype = resource["resourceType"]
    if rtype == "MedicationRequest":
        authored = parse_date(resource.get("authoredOn"))
        start = end = None
        for dosage in as_list(resource.get("dosageInstruction"), "dosageInstruction"):
            repeat = as_dict(as_dict(as_dict(dosage, "dosage").get("timing"), "timing").get("repeat"), "repeat")
            if "boundsPeriod" in repeat:
                start, end = period_bounds(repeat["boundsPeriod"], "boundsPeriod")
                break
        return start or authored, end, end or authored, start is not None and end is None
    if "effectivePeriod" in resource:
        start, end = period_bounds(resource["effectivePeriod"], "effectivePeriod")
        return start, end, end or start, start is not None and end is None
    when = effective_date(resource)
    if rtype == "MedicationStatement":
        asserted = parse_date(resource.get("dateAsserted"))
        return when, None, when or asserted, False
    return when, when, when, False
