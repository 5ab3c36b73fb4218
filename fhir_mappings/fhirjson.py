"""Small readers for FHIR R4 resources held as plain JSON (dicts).

The hot path never builds pydantic models of incoming resources: these helpers read only the
elements we need and tolerate the shapes real servers send. Anything structurally wrong raises
``MalformedResource`` so that the caller can skip that one resource and note why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar

from fhir_mappings.codes import Coding, normalise_system

T = TypeVar("T")


class MalformedResource(ValueError):
    """A resource whose structure does not fit FHIR R4 where we read it."""


class NotUsable(Exception):
    """A legal resource that says nothing a criterion can use (no value, an unreadable text value, a report
    of the wrong kind): skipped and noted with this reason, never called malformed."""


def ref_of(resource: dict) -> str:
    """``Type/id`` of a resource (``Type/?`` when it has no id)."""
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


def as_list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedResource(f"{where} should be a list")
    return value


def as_dict(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedResource(f"{where} should be an object")
    return value


# While one record is read (``extract_facts``), what is derived from a concept or a resource (its
# codings, an Observation's code set) is worked out once: every Observation passes through eight
# readers, each of which looks at its codes. The memo keeps the object itself next to the result,
# so an id cannot be reused while the memo lives, and it is dropped when the reading ends. Outside
# ``memoised_codings()`` nothing is cached. Exceptions are never cached: they recur as before.
_MEMO: ContextVar[dict[tuple[int, str], tuple[Any, Any]] | None] = ContextVar("fhirjson_memo", default=None)


@contextmanager
def memoised_codings() -> Iterator[None]:
    """Within this block, derived values of a given dict or list are computed once (neither is mutated)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memoised(obj: Any, kind: str, compute: Callable[[Any], T]) -> T:
    """``compute(obj)``, computed once per object within ``memoised_codings()``; callers must not mutate it."""
    memo = _MEMO.get()
    if memo is None or (type(obj) is not dict and type(obj) is not list):
        return compute(obj)
    key = (id(obj), kind)
    hit = memo.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    value = compute(obj)
    memo[key] = (obj, value)
    return value


def codings(concept: Any, where: str = "CodeableConcept") -> list[Coding]:
    """The codings of a CodeableConcept (or of a bare Coding), systems normalised."""
    memo = _MEMO.get()
    if memo is None or type(concept) is not dict:
        return _codings(concept, where)
    key = (id(concept), "codings")
    hit = memo.get(key)
    if hit is not None and hit[0] is concept:
        return list(hit[1])
    result = _codings(concept, where)
    memo[key] = (concept, tuple(result))
    return result


def _codings(concept: Any, where: str) -> list[Coding]:
    # Plain dicts and lists (what JSON parsing gives) skip the checks' calls; anything else gets them.
    if type(concept) is not dict:
        concept = as_dict(concept, where)
    raw = concept.get("coding")
    if raw is None:
        items = [concept] if "code" in concept else []
    else:
        items = raw if type(raw) is list else as_list(raw, f"{where}.coding")
    result = []
    for item in items:
        if type(item) is not dict:
            item = as_dict(item, f"{where}.coding")
        code = item.get("code")
        if code is None:
            continue
        result.append(Coding(normalise_system(item.get("system")), str(code).strip(), str(item.get("display") or "")))
    return result


def concept_text(concept: Any) -> str:
    """Every human-readable word of a concept (text and displays), lower-cased, for keyword rules."""
    concept = as_dict(concept, "CodeableConcept")
    parts = [str(concept.get("text") or "")]
    parts += [c.display for c in codings(concept)]
    return " ".join(p for p in parts if p).lower()


def concepts(resource: dict, element: str) -> list[dict]:
    """One or many CodeableConcepts at ``element`` (FHIR repeats some, not others)."""
    value = resource.get(element)
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [as_dict(v, element) for v in as_list(value, element)]


def parse_date(value: Any) -> date | None:
    """A FHIR date/dateTime/instant → its calendar date. Partial dates mean their first day."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 4:
        raise MalformedResource(f"not a FHIR date: {value!r}")
    try:
        year = int(value[0:4])
        month = int(value[5:7]) if len(value) >= 7 else 1
        day = int(value[8:10]) if len(value) >= 10 else 1
        return date(year, month, day)
    except ValueError as exc:
        raise MalformedResource(f"not a FHIR date: {value!r}") from exc


def period_bounds(period: Any, where: str = "Period") -> tuple[date | None, date | None]:
    period = as_dict(period, where)
    return parse_date(period.get("start")), parse_date(period.get("end"))


def effective_date(resource: dict, prefix: str = "effective") -> date | None:
    """``effective[x]`` (or ``performed[x]``, ``onset[x]`` …): the dateTime, or the Period's start."""
    if f"{prefix}DateTime" in resource:
        return parse_date(resource[f"{prefix}DateTime"])
    if f"{prefix}Instant" in resource:
        return parse_date(resource[f"{prefix}Instant"])
    if f"{prefix}Period" in resource:
        start, end = period_bounds(resource[f"{prefix}Period"], f"{prefix}Period")
        return start or end
    return None


def reference(value: Any, where: str = "reference") -> str | None:
    value = as_dict(value, where)
    ref = value.get("reference")
    if ref is not None and not isinstance(ref, str):
        raise MalformedResource(f"{where}.reference should be a string")
    return ref


def quantity(value: Any, where: str = "valueQuantity") -> tuple[float, str] | None:
    """(value, unit code) of a Quantity; the UCUM code wins over the free-text unit."""
    value = as_dict(value, where)
    if not value:
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise MalformedResource(f"{where}.value should be a number")
    unit = value.get("code") or value.get("unit") or ""
    if not isinstance(unit, str):
        raise MalformedResource(f"{where}.unit should be a string")
    return float(number), unit.strip()


def extensions(resource: dict, url_fragment: str) -> Iterator[dict]:
    """Extensions whose url contains ``url_fragment`` (mCODE moved URLs between versions)."""
    for ext in as_list(resource.get("extension"), "extension"):
        ext = as_dict(ext, "extension")
        if url_fragment in str(ext.get("url", "")):
            yield ext


def status_code(resource: dict, element: str) -> str | None:
    """A plain code (``status``) or the first code of a CodeableConcept (``clinicalStatus``)."""
    value = resource.get(element)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    found = codings(value, element)
    # FHIR's own status code decides when an EHR lists its local code first ("3" = Resolved, then
    # condition-clinical "resolved"): reading the local one would make a resolved cancer status-less.
    for coding in found:
        if coding.system.startswith(_FHIR_STATUS_SYSTEMS):
            return coding.code
    return found[0].code if found else None


_FHIR_STATUS_SYSTEMS = ("http://terminology.hl7.org/CodeSystem/", "http://hl7.org/fhir/")


# --- Values written as text, and values that are absent -------------------------------------------

VALUE_ELEMENTS = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
                  "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")

_NUMBER_WITH_UNIT = re.compile(r"^(?P<number>\d+(?:[.,]\d+)?)\s*(?P<unit>%|[a-zµ\[\]{}/.\d]*[a-zµ%\]}])?$")


def has_value(element: dict) -> bool:
    return any(key in element for key in VALUE_ELEMENTS)


def absent_reason(element: dict) -> str | None:
    """``dataAbsentReason`` of an Observation (or component) that has no value: its code, else its text."""
    if has_value(element) or element.get("dataAbsentReason") is None:
        return None
    reason = as_dict(element["dataAbsentReason"], "dataAbsentReason")
    found = codings(reason, "dataAbsentReason")
    return found[0].code if found else str(reason.get("text") or "unknown")


def number_in_text(text: str, names: tuple[str, ...] = ()) -> tuple[float, str] | None:
    """One number, optionally after one of the scale's ``names`` and before a unit: ``"1"``, ``"ECOG 1"``,
    ``"ECOG: 1"``, ``"80%"``, ``"2.3 cm"``, ``"2,3 cm"`` → (value, unit); anything else → None."""
    words = " ".join(text.lower().split())
    for name in sorted(names, key=len, reverse=True):
        if words.startswith(name) and not words[len(name):len(name) + 1].isalpha():
            words = words[len(name):].lstrip(" :=-").strip()
            break
    match = _NUMBER_WITH_UNIT.match(words)
    if match is None:
        return None
    return float(match["number"].replace(",", ".")), match["unit"] or ""


def observed_number(element: dict, names: tuple[str, ...] = (), what: str = "value") -> tuple[float, str] | None:
    """The one numeric reader every numeric fact uses (ECOG, Karnofsky, CA 19-9, lesion size).

    ``element`` is an Observation or one of its components. The number may be a ``valueInteger``, a
    ``valueQuantity``, a ``valueString`` or a ``valueCodeableConcept`` that has only text (see
    ``number_in_text``). Returns (value, unit) — the unit as written, "" when none — or None when the
    element has no value at all. ``dataAbsentReason`` and unreadable text raise ``NotUsable`` (noted
    "no value (dataAbsentReason: …)" / "unreadable value …"), never ``MalformedResource``.
    """
    reason = absent_reason(element)
    if reason is not None:
        raise NotUsable(f"no value (dataAbsentReason: {reason})")
    if "valueInteger" in element:
        value = element["valueInteger"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedResource("valueInteger should be an integer")
        return float(value), ""
    if "valueQuantity" in element:
        return quantity(element["valueQuantity"])
    text = None
    if "valueString" in element:
        text = element["valueString"]
        if not isinstance(text, str):
            raise MalformedResource("valueString should be a string")
    elif "valueCodeableConcept" in element:
        concept = as_dict(element["valueCodeableConcept"], "valueCodeableConcept")
        text = concept.get("text")
        if text is None:  # a coded answer we do not know: its one display may still be "1" or "ECOG 1"
            displays = [c.display for c in codings(concept, "valueCodeableConcept") if c.display]
            text = displays[0] if len(displays) == 1 else None
            if text is None:
                raise NotUsable(f"unreadable value (a coded answer, {what}: one number expected)")
        if not isinstance(text, str):
            raise MalformedResource("valueCodeableConcept.text should be a string")
    elif has_value(element):  # valueBoolean, valueRange …: legal FHIR, but not one number
        kind = next(key for key in VALUE_ELEMENTS if key in element)
        raise NotUsable(f"unreadable value ({kind}; {what}: one number expected)")
    if text is None:
        return None
    found = number_in_text(text, names)
    if found is None:
        raise NotUsable(f"unreadable value {text.strip()[:60]!r} ({what}: one number expected)")
    return found
