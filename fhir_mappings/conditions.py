"""Condition (and AdverseEvent) → diagnoses: cancers by kind, infections, cardiac, neuropathy, pregnancy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

from fhir_mappings import codes
from fhir_mappings.codes import Coding
from fhir_mappings.facts import ENCOUNTER_DIAGNOSIS, OTHER_KIND, PROBLEM_LIST, Diagnosis
from fhir_mappings.fhirjson import (
    MalformedResource,
    as_dict,
    codings,
    concept_text,
    concepts,
    effective_date,
    extensions,
    parse_date,
    ref_of,
    status_code,
)
from fhir_mappings.record import PatientRecord

# Buckets a Condition can fall into; a cancer falls into one of the first seven (a metastasis sited both in
# the liver and elsewhere into the liver and the extrahepatic ones).
PDAC = "pdac"
NON_DUCTAL = "pancreatic_non_ductal"
LIVER_MET = "liver_metastases"
EXTRAHEPATIC_MET = "extrahepatic_metastases"
UNSITED_MET = "unsited_metastases"
OTHER_MALIGNANCY = "other_malignancies"
MALIGNANCY_HISTORY = "malignancy_history"
OTHER_BUCKETS = (
    ("infections", codes.INFECTION),
    ("cardiac", codes.CARDIAC_DISEASE),
    ("neuropathies", codes.NEUROPATHY),
    ("pregnancy_conditions", codes.PREGNANCY_CONDITION),
)


def read_conditions(record: PatientRecord) -> list[tuple[str, Diagnosis]]:
    return record.read_each("Condition", lambda res: _read_condition(res, record))


def _read_condition(resource: dict, record: PatientRecord) -> Iterator[tuple[str, Diagnosis]]:
    code = as_dict(resource.get("code"), "code")
    found = codings(code, "code")
    text = expand_abbreviations(concept_text(code))
    sites = [concept_text(site) for site in concepts(resource, "bodySite")]
    clinical = status_code(resource, "clinicalStatus")
    diagnosis = Diagnosis(
        ref=ref_of(resource),
        label=_label(code, found),
        onset=effective_date(resource, "onset"),
        recorded=parse_date(resource.get("recordedDate")),
        clinical_status=clinical.lower() if clinical else None,
        kind=condition_kind(resource),
        verification=status_code(resource, "verificationStatus"),
        grade=condition_grade(resource),
        body_sites=tuple(s for s in sites if s),
        abated=_abatement(resource),
    )
    buckets = _buckets(resource, found, text)
    if UNSITED_MET in buckets:
        record.note(diagnosis.ref, "noted: metastatic disease without a body site counts as neither liver nor "
                                   "extrahepatic")
    if OTHER_MALIGNANCY in buckets and diagnosis.confirmed and codes.LIVER_PRIMARY_OR_SECONDARY.matches(found, text):
        # C22.9 / "malignant neoplasm of liver" does not say primary: it may be the liver metastases. The
        # other-malignancy rule asks about an unconfirmed cancer instead of excluding on it.
        diagnosis = replace(diagnosis, verification="may be the liver metastases")
    if OTHER_MALIGNANCY in buckets and diagnosis.status_says is None and _medical_history(resource):
        # A status-less past-medical-history entry states a cancer the patient had, like a Z85 code: it asks
        # (or passes when its onset is old), it never shows an active cancer.
        buckets = tuple(MALIGNANCY_HISTORY if b == OTHER_MALIGNANCY else b for b in buckets)
    for bucket in buckets:
        yield bucket, (replace(diagnosis, history=True) if bucket == MALIGNANCY_HISTORY else diagnosis)


def _medical_history(resource: dict) -> bool:
    """Is the Condition a past-medical-history entry (an EHR's "medical-history" category)?"""
    try:
        categories = concepts(resource, "category")
        words = " ".join(concept_text(c) + " " + " ".join(x.code.lower() for x in codings(c, "category"))
                         for c in categories).replace("-", " ").replace("_", " ")
    except MalformedResource:
        return False
    return any(w in words for w in codes.MEDICAL_HISTORY_CATEGORY_WORDS)


# What a Condition's code, body site, extensions and profiles make of it, by their written form: EHRs repeat
# the same diagnosis on visit after visit, and classifying one costs far more than writing its key.
_BUCKETS_SEEN: dict[str, tuple[str, ...]] = {}
_BUCKETS_SEEN_MAX = 4096


def _buckets(resource: dict, found: list[Coding], text: str) -> tuple[str, ...]:
    """The fact lists a Condition goes to: its cancer buckets, else every other concept it matches."""
    meta = resource.get("meta")
    key = repr((resource.get("code"), resource.get("bodySite"), resource.get("extension"),
                meta.get("profile") if isinstance(meta, dict) else meta))
    known = _BUCKETS_SEEN.get(key)
    if known is not None:
        return known
    buckets = _cancer_buckets(resource, found, text)
    if not buckets:
        buckets = tuple(bucket for bucket, code_set in OTHER_BUCKETS if code_set.matches(found, text))
    if len(_BUCKETS_SEEN) < _BUCKETS_SEEN_MAX:  # bounded: a few thousand distinct diagnoses at most
        _BUCKETS_SEEN[key] = buckets
    return buckets


def condition_kind(resource: dict) -> str:
    """Problem-list item, encounter (visit) diagnosis, or another kind — what decides a status-less Condition.

    Any visit-diagnosis category wins (the reading that never turns an old visit into an active
    disease); then a problem-list category; no category at all is a problem-list item (FHIR's and the
    spec's default); any other category (health-concern, an unrecognised local one) is ``other``.
    """
    if codes.ENCOUNTER_DIAGNOSIS_PROFILE in _profiles(resource):
        return ENCOUNTER_DIAGNOSIS
    try:
        return _kind_from_categories(resource)
    except MalformedResource:
        return OTHER_KIND  # a broken category must not lose the Condition; read it the cautious way


def _kind_from_categories(resource: dict) -> str:
    categories = concepts(resource, "category")
    if not categories:
        return PROBLEM_LIST
    problem_list = False
    for category in categories:
        found = codings(category, "category")
        words = " ".join([concept_text(category)] + [c.code.lower() for c in found]).replace("-", " ").replace("_", " ")
        if any(c.code == codes.ENCOUNTER_DIAGNOSIS_CATEGORY for c in found) or any(
                w in words for w in codes.VISIT_DIAGNOSIS_CATEGORY_WORDS):
            return ENCOUNTER_DIAGNOSIS
        if any(c.code == codes.PROBLEM_LIST_CATEGORY for c in found) or any(
                w in words for w in codes.PROBLEM_LIST_CATEGORY_WORDS):
            problem_list = True
    return PROBLEM_LIST if problem_list else OTHER_KIND


def _abatement(resource: dict) -> date | None:
    """When the Condition was recorded as over (abatementDateTime / Period); None when not dated."""
    try:
        return effective_date(resource, "abatement")
    except MalformedResource:
        return None  # a broken abatement date only loses the date shown in a reason


def _label(code: dict, found: list[Coding]) -> str:
    if code.get("text"):
        return str(code["text"])
    for coding in found:
        if coding.display:
            return coding.display
    return found[0].code if found else "(uncoded condition)"


def _profiles(resource: dict) -> str:
    meta = as_dict(resource.get("meta"), "meta")
    return " ".join(str(p) for p in meta.get("profile") or ())


def _cancer_buckets(resource: dict, found: list[Coding], text: str) -> tuple[str, ...]:
    """The cancer buckets of a Condition: a metastasis (liver, extrahepatic — both when sited in both —
    or unsited), plus the pancreatic primary when the same Condition names it ("metastatic pancreatic
    adenocarcinoma", or C25.9 and C78.7 on one Condition); else one primary bucket."""
    has_icd10 = any(c.system == codes.ICD10 for c in found)
    # The wording is read only when it speaks of a metastasis (and does not deny one).
    worded = ("metasta" in text or "secondar" in text) and not any(w in text for w in codes.NEGATION_WORDS)
    primary = metastasis_primary(found, text if worded else "")
    if primary is not None and "pancrea" not in primary:
        return (OTHER_MALIGNANCY,)  # a metastasis of another cancer: that cancer is another malignancy
    metastasis = _metastasis_buckets(resource, found, text, has_icd10, worded, primary)
    if metastasis:
        named = _pancreatic_primary(resource, found, text, has_icd10, worded, primary)
        if not named and (codes.OTHER_MALIGNANCY.code_matches_any(found)
                          or (worded and _OTHER_PRIMARY_NAMED.search(text) is not None)):
            named = (OTHER_MALIGNANCY,)  # "breast cancer metastatic to liver", or C50.9 beside C78.7
        return metastasis + named
    return _primary_buckets(resource, found, text)


def _metastasis_buckets(resource: dict, found: list[Coding], text: str, has_icd10: bool, worded: bool,
                        primary: str | None) -> tuple[str, ...]:
    if codes.LIVER_METASTASIS.code_matches_any(found):
        return (LIVER_MET,)
    if codes.EXTRAHEPATIC_METASTASIS.code_matches_any(found):
        return (EXTRAHEPATIC_MET,)
    sites = metastasis_sites(_texts(resource, found)) if worded else ()
    if has_icd10:
        # ICD-10 decides, except that wording naming the liver still counts for the gate (an IMO display
        # "pancreatic cancer metastatic to liver" on a lone C25.9): the reading that never fails a candidate.
        sites = tuple(site for site in sites if site == "liver")
    if worded and "liver" not in sites and _liver_named(text):
        # Free text that speaks of a metastasis and names the liver in any phrasing ("metastatic pancreatic
        # cancer (liver)", "secondary liver cancer", "liver lesions consistent with metastases"): the gate
        # must not fail a candidate over word order.
        sites = sites + ("liver",)
    named = [site for site in sites if site not in ("liver", "regional", "unspecified")]
    if "liver" in sites or named:
        return ((LIVER_MET,) if "liver" in sites else ()) + ((EXTRAHEPATIC_MET,) if named else ())
    if sites and all(site == "regional" for site in sites):
        return ()
    generic = (codes.GENERIC_METASTASIS.matches(found)
               or codes.SECONDARY_CANCER_PROFILE in _profiles(resource)
               or bool(sites)
               or primary is not None
               or (not has_icd10 and ("metasta" in text or "secondary malignant" in text) and "history of" not in text))
    if not generic:
        return ()
    body_sites = concepts(resource, "bodySite")
    if not body_sites:
        return (UNSITED_MET,)
    in_liver = [codes.LIVER_SITE.matches(codings(site, "bodySite"), concept_text(site)) for site in body_sites]
    return ((LIVER_MET,) if any(in_liver) else ()) + (() if all(in_liver) else (EXTRAHEPATIC_MET,))


_METASTATIC_PANCREATIC = re.compile(codes.METASTATIC_PANCREATIC_PATTERN)
_OTHER_PRIMARY_NAMED = re.compile(codes.OTHER_PRIMARY_NAMED_PATTERN)


def _pancreatic_primary(resource: dict, found: list[Coding], text: str, has_icd10: bool, worded: bool,
                        primary: str | None) -> tuple[str, ...]:
    """The pancreatic primary a metastasis Condition also names, by code or wording; () when it names none."""
    if codes.PANCREATIC_NON_DUCTAL.code_matches_any(found):
        return (NON_DUCTAL,)
    named = (codes.PDAC_SPECIFIC.code_matches_any(found) or codes.PANCREATIC_MALIGNANCY.code_matches_any(found)
             or (not has_icd10 and worded and (primary is not None or _METASTATIC_PANCREATIC.search(text) is not None)))
    if not named:
        return ()
    if _histology_non_ductal(resource) or (not has_icd10 and codes.PANCREATIC_NON_DUCTAL.text_matches(text)):
        return (NON_DUCTAL,)
    return (PDAC,)


def _primary_buckets(resource: dict, found: list[Coding], text: str) -> tuple[str, ...]:
    if codes.PANCREATIC_NON_DUCTAL.matches(found, text):
        return (NON_DUCTAL,)
    if codes.PDAC_SPECIFIC.matches(found, text) or codes.PANCREATIC_MALIGNANCY.matches(found, text):
        return (NON_DUCTAL,) if _histology_non_ductal(resource) else (PDAC,)
    if codes.MALIGNANCY_HISTORY.matches(found, text):
        return (MALIGNANCY_HISTORY,)
    if not codes.OTHER_MALIGNANCY.code_matches_any(found) and _names_no_site(resource, found):
        # "Malignant neoplastic disease" names no site: mCODE puts the site in bodySite. Pancreas → the PDAC
        # (unless its histology is non-ductal); another site → another primary; no site → like C80, neither.
        sites = concepts(resource, "bodySite")
        if not sites:
            return ()
        if any(codes.PANCREAS_SITE.matches(codings(site, "bodySite"), concept_text(site)) for site in sites):
            return (NON_DUCTAL,) if _histology_non_ductal(resource) else (PDAC,)
        return (OTHER_MALIGNANCY,)
    if codes.OTHER_MALIGNANCY.matches(found, text):
        return (OTHER_MALIGNANCY,)
    if codes.PRIMARY_CANCER_PROFILE in _profiles(resource) and "pancrea" not in text:
        return (OTHER_MALIGNANCY,)
    return ()


_PARENTHESES = re.compile(r"\([^)]*\)")
_UNSPECIFIED_TAIL = re.compile(r"[,;]?\s*\b(?:nos|unspecified|not otherwise specified)\b\.?")


def _names_no_site(resource: dict, found: list[Coding]) -> bool:
    """Does every wording of the Condition (text and displays) name a cancer without any site?"""
    texts = _texts(resource, found)
    if not texts:
        return False
    for text in texts:
        bare = _UNSPECIFIED_TAIL.sub("", _PARENTHESES.sub("", text)).strip(" .,;-")
        if bare not in codes.GENERIC_MALIGNANCY_NAMES:
            return False
    return True


_SITE_PATTERNS = tuple(re.compile(p) for p in codes.METASTASIS_SITE_PATTERNS)
_SITE_BEFORE_PATTERN = re.compile(codes.SITE_BEFORE_METASTASIS_PATTERN)
_PRIMARY_PATTERN = re.compile(codes.METASTASIS_PRIMARY_PATTERN)
_SITE_SEPARATORS = re.compile(r",|/|&|\band\b|\bor\b")


_METS = re.compile(r"\bmets\b")


def _liver_named(text: str) -> bool:
    return (any(w in text for w in codes.LIVER_SITE_WORDS) and not any(w in text for w in codes.NOT_LIVER_WORDS)
            and "primary" not in text)


_PANCREATIC_CA = re.compile(r"\b(adeno)?ca\b(?![\s-]*19)")


def expand_abbreviations(text: str) -> str:
    """Problem lists write "liver mets", "pancreatic ca", "ca head of pancreas", "pancreatic adenoca": read
    them as "liver metastases", "pancreatic cancer", "pancreatic adenocarcinoma" (lower-cased text). "Ca" is
    read so only beside "pancrea" (elsewhere it may be calcium) and never in "CA 19-9"."""
    if "mets" in text:
        text = _METS.sub("metastases", text)
    if "ca" in text and "pancrea" in text:
        text = _PANCREATIC_CA.sub(lambda m: "adenocarcinoma" if m.group(1) else "cancer", text)
    return text


def _texts(resource: dict, found: list[Coding]) -> list[str]:
    """The code's text and each display, apart: one display's site must not run into the next one's."""
    code = as_dict(resource.get("code"), "code")
    return [expand_abbreviations(str(t).lower()) for t in [code.get("text")] + [c.display for c in found] if t]


def metastasis_sites(texts: list[str]) -> tuple[str, ...]:
    """Where a metastasis is, from its wording: each site is "liver", "regional" (nodes that are not
    distant), "unspecified" or another site's name; empty when the text names no metastasis site."""
    found: list[str] = []
    for text in texts:
        here: list[str] = []
        for pattern in _SITE_PATTERNS:
            for match in pattern.finditer(text):
                phrase = match.group("site").split(" from ")[0]
                here += [_site_class(part.strip(" -")) for part in _SITE_SEPARATORS.split(phrase)]
        for match in _SITE_BEFORE_PATTERN.finditer(text):
            here += [_site_class(part) for part in _SITE_SEPARATORS.split(match.group("site"))]
        if "history of" in text:
            # "History of metastasis to liver" still passes the gate (history counts); a history of bone
            # metastases says nothing about today's bone, so it does not exclude.
            here = [site for site in here if site == "liver"]
        found += here
    return tuple(dict.fromkeys(site for site in found if site))


_ROMAN_OR_NUMBER = re.compile(r"^(?:[ivx]+|\d+)$")


def _site_class(site: str) -> str:
    site = site.strip()
    # "…of liver, primary site pancreas" / "…to liver, pancreatic primary": the primary is not a site.
    if not site or site.startswith(codes.NOT_A_SITE_WORDS) or "primary" in site or _ROMAN_OR_NUMBER.match(site):
        return ""  # "…liver, segment VII and VIII": a part of the site already named, not a new one
    if any(w in site for w in codes.UNCERTAIN_SITE_WORDS):
        return ""
    if any(w in site for w in codes.LIVER_SITE_WORDS) and not any(w in site for w in codes.NOT_LIVER_WORDS):
        return "liver"
    if any(w in site for w in codes.REGIONAL_NODE_WORDS) or (
            any(w in site for w in codes.NODE_WORDS) and any(w in site for w in codes.INTRA_ABDOMINAL_NODE_REGIONS)):
        return "regional"
    if any(w in site for w in codes.UNSPECIFIED_SITE_WORDS) or site in ("site", "sites", "nodal", "node", "nodes", "lymph node", "lymph nodes"):
        # Lymph nodes without a region are not known to be distant: the site stays open (bodySite decides).
        return "unspecified"
    return site


def metastasis_primary(found: list[Coding], text: str) -> str | None:
    """The primary a metastasis code names ("metastasis from malignant tumor of prostate"), else None."""
    for coding in found:
        named = codes.METASTASIS_FROM_OTHER_PRIMARY.get((coding.system, coding.code))
        if named:
            return named
    match = _PRIMARY_PATTERN.search(text)
    if match is None:
        return None
    primary = match.group("primary").strip()
    if not primary or any(w in primary for w in codes.UNSPECIFIED_SITE_WORDS):
        return None
    return primary


def _histology_non_ductal(resource: dict) -> bool:
    for ext in extensions(resource, codes.HISTOLOGY_EXTENSION):
        concept = ext.get("valueCodeableConcept")
        found = codings(concept, "histology")
        if any(c.system == codes.ICDO3 and c.code.split("/")[0] in codes.NON_DUCTAL_HISTOLOGY_ICDO3 for c in found):
            return True
        if any((c.system == codes.ICDO3 and c.code.split("/")[0] in codes.DUCTAL_HISTOLOGY_ICDO3)
               or (c.system == codes.SNOMED and c.code in codes.DUCTAL_HISTOLOGY_SNOMED) for c in found):
            continue  # coded ductal / adenocarcinoma: its wording ("… with neuroendocrine differentiation") is not
        words = concept_text(concept)
        if any(k in words for k in codes.NON_DUCTAL_HISTOLOGY_KEYWORDS) and not any(
                w in words for w in codes.DUCTAL_HISTOLOGY_WORDS):
            return True
    return False


_GRADE_IN_TEXT = re.compile(r"grade\s*([0-5])")


def condition_grade(resource: dict) -> int | None:
    """A CTCAE-like grade 0–5: grade extensions first, then ``severity``; None when absent."""
    for ext in extensions(resource, "grade"):
        grade = _grade_value(ext)
        if grade is not None:
            return grade
    severity = resource.get("severity")
    if severity is not None:
        for coding in codings(severity, "severity"):
            if coding.code in codes.SEVERITY_GRADES:
                return codes.SEVERITY_GRADES[coding.code]
            if coding.code in ("mild", "moderate", "severe"):
                return {"mild": 1, "moderate": 2, "severe": 3}[coding.code]
        words = concept_text(severity)
        for word, grade in (("severe", 3), ("moderate", 2), ("mild", 1)):
            if word in words:
                return grade
    return None


def _grade_value(ext: dict) -> int | None:
    if isinstance(ext.get("valueInteger"), int):
        value = ext["valueInteger"]
        # An impossible grade says nothing: the neuropathy stays, ungraded (→ unknown).
        return value if 0 <= value <= 5 else None
    concept = ext.get("valueCodeableConcept")
    if concept is None:
        return None
    for coding in codings(concept, "grade"):
        digits = re.sub(r"\D", "", coding.code)
        if len(digits) == 1 and digits in "012345":
            return int(digits)
    match = _GRADE_IN_TEXT.search(concept_text(concept))
    return int(match.group(1)) if match else None


def read_adverse_events(record: PatientRecord) -> list[Diagnosis]:
    """Neuropathy recorded as an AdverseEvent (an optional source)."""
    return record.read_each("AdverseEvent", _read_adverse_event)


def _read_adverse_event(resource: dict) -> Iterator[Diagnosis]:
    if resource.get("actuality") == "potential":
        return
    event = as_dict(resource.get("event"), "event")
    if not codes.NEUROPATHY.matches(codings(event, "event"), concept_text(event)):
        return
    outcome = status_code(resource, "outcome")
    yield Diagnosis(
        ref=ref_of(resource),
        label=concept_text(event) or "adverse event: neuropathy",
        onset=parse_date(resource.get("date")),
        recorded=parse_date(resource.get("recordedDate")),
        # An adverse event is a dated report, not a visit diagnosis: active until its outcome says otherwise.
        clinical_status="resolved" if outcome in ("resolved", "recovered") else "active",
        grade=condition_grade(resource),
    )
