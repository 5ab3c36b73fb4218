"""Every code set trialcds matches on, with where each comes from.

Sources (the letters V/C/U follow ``fhir-data-notes.md``: verified / corroborated / unverified):
- ICD-10-CM: CMS 2026 release (checked offline with the PyPI package ``simple-icd-10-cm``).
- SNOMED CT: the HL7 mCODE IG STU1–STU4 value sets and examples, and the protocol's own codes.
- LOINC: mCODE profiles (ECOG 89247-1, Karnofsky 89243-0, tumour size 21889-1 / 33728-7, disease
  status 97509-4 / 88040-1), US Core (pregnancy 82810-3), LOINC itself (CA 19-9, breastfeeding).
- RxNorm ingredients and WHO ATC prefixes: NLM RxNav, WHO ATC/DDD index 2024.
- ICD-O-3 morphology: WHO ICD-O-3.2.
- DICOM modalities: DICOM PS3.16 CID 29.

Where a concept has many codes (other cancers, infections, metastatic sites) a curated code list is
combined with display-text keywords, because real records carry local codes and free text. ICD-10
is treated as authoritative when present: its hierarchy is complete, so a code outside the ranges
does not match even if its display happens to contain a keyword.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

SNOMED = "snomed"
LOINC = "loinc"
ICD10 = "icd10"
ICDO3 = "icdo3"
RXNORM = "rxnorm"
ATC = "atc"
CPT = "cpt"
DICOM = "dicom"
MEDDRA = "meddra"
UCUM = "ucum"
V2_0074 = "v2-0074"  # HL7 v2 table 0074, diagnostic service section (DiagnosticReport.category)

# Every code system we match on, by canonical URI and by HL7 OID (``urn:oid:``), as the spec's general
# rules list them (OIDs from the HL7 OID registry / terminology.hl7.org "identifiers" of each system).
# Keys are compared lower-cased, without a trailing slash. ICD-10-CM and WHO ICD-10 are one system for
# matching: the codes the trial reads are the same in both.
_SYSTEM_NAMES: dict[str, tuple[str, ...]] = {
    SNOMED: ("http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"),
    LOINC: ("http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"),
    ICD10: ("http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90",
            "http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.840.1.113883.6.3"),
    ICDO3: ("http://terminology.hl7.org/CodeSystem/icd-o-3", "urn:oid:2.16.840.1.113883.6.43.1"),
    RXNORM: ("http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"),
    ATC: ("http://www.whocc.no/atc", "urn:oid:2.16.840.1.113883.6.73"),
    CPT: ("http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"),
    # Synthea writes modalities under the URL of the DICOM CID 29 web page (seen in Synthea 3.x output).
    DICOM: ("http://dicom.nema.org/resources/ontology/DCM", "urn:oid:1.2.840.10008.2.16.4",
            "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_29.html"),
    MEDDRA: ("http://terminology.hl7.org/CodeSystem/mdr", "https://www.meddra.org",
             "urn:oid:2.16.840.1.113883.6.163"),
    UCUM: ("http://unitsofmeasure.org", "urn:oid:2.16.840.1.113883.6.8"),
    V2_0074: ("http://terminology.hl7.org/CodeSystem/v2-0074", "urn:oid:2.16.840.1.113883.12.74",
              "http://hl7.org/fhir/v2/0074"),  # the last: its STU3 URI, still sent
}
_SYSTEMS = {name.lower(): short for short, names in _SYSTEM_NAMES.items() for name in names}
# Not URIs, but sent by converters from CDA / v2 / CSV (a bare OID, or the system's common name): each can
# only mean that one system, so it is read as it (decided for H9's audit — never lose a PDAC to spelling).
_SYSTEMS.update({name[len("urn:oid:"):]: short for name, short in list(_SYSTEMS.items()) if name.startswith("urn:oid:")})
_SYSTEMS.update({"snomed": SNOMED, "snomed-ct": SNOMED, "snomed ct": SNOMED, "sct": SNOMED, "loinc": LOINC,
                 "icd-10-cm": ICD10, "icd10cm": ICD10, "icd-10": ICD10, "icd10": ICD10, "rxnorm": RXNORM,
                 "cpt": CPT, "cpt-4": CPT, "cpt4": CPT, "atc": ATC, "dcm": DICOM, "dicom": DICOM})
# SNOMED editions written into the system URI (``http://snomed.info/sct/731000124108``): not how FHIR
# says it (that is ``version``), but sent; still SNOMED CT.
_SNOMED_EDITION_PREFIX = "http://snomed.info/sct/"


class Coding(NamedTuple):
    system: str
    code: str
    display: str


_NORMALISED: dict[str, str] = {}  # raw system string → normalise_system's answer (bounded below)


def normalise_system(uri: object) -> str:
    """Our short name for a code system given by canonical URI or HL7 OID; unknown systems keep their URI.

    The one place a coding's system is interpreted: every reader gets its codings through
    ``fhirjson.codings``, which calls this, so a system written as ``urn:oid:…`` is recognised everywhere.
    """
    if type(uri) is str:
        known = _NORMALISED.get(uri)
        if known is not None:
            return known
    text = str(uri or "").strip().rstrip("/")
    lowered = text.lower()
    result = _SYSTEMS.get(lowered)
    if result is None:
        edition = lowered[len(_SNOMED_EDITION_PREFIX):] if lowered.startswith(_SNOMED_EDITION_PREFIX) else ""
        result = SNOMED if edition.split("/")[0].isdigit() else _national_icd10(lowered) or text
    if type(uri) is str and len(_NORMALISED) < 1024:  # a few dozen systems in practice; never unbounded
        _NORMALISED[uri] = result
    return result


_ICD10_NATIONAL = re.compile(r"icd-?10(?!-?pcs)(?:[-_/](?:se|gm|ca|am|nl|de|fr|no|dk|fi|uk|who))?(?![a-z0-9])")


def _national_icd10(lowered: str) -> str | None:
    """A national ICD-10 edition named in the system (ICD-10-SE at the Swedish site, ICD-10-GM, -CA, -AM …):
    its chapters and the codes the trial reads (C25, C78.7 …) are WHO ICD-10's. ICD-10-PCS (procedures) is not."""
    return ICD10 if _ICD10_NATIONAL.search(lowered) else None


def icd10_key(code: str) -> str:
    """ICD-10 codes compare without the dot and in upper case (``C78.7`` = ``C787``, ``c25.0`` = ``C250``).

    The one normalisation of ICD-10 codes: ``CodeSet`` keys both its entries and every code it is asked
    about with it, so claims-style codes without the dot match wherever a code set is used."""
    return code.replace(".", "").strip().upper()


def icd10_range(first: str, last: str) -> tuple[str, ...]:
    """Three-character categories from ``first`` to ``last`` inclusive, as prefixes (``A00*``)."""
    letter = first[0]
    return tuple(f"{letter}{n:02d}*" for n in range(int(first[1:3]), int(last[1:3]) + 1))


def _keywords(*phrases: str) -> tuple[tuple[str, ...], ...]:
    """``"pancrea+carcinoma"`` = both words must appear in the text."""
    return tuple(tuple(p.split("+")) for p in phrases)


@dataclass(frozen=True)
class CodeSet:
    """One clinical concept: exact codes, ICD-10 entries (``X00*`` = with descendants) and keywords."""

    name: str
    source: str
    codes: frozenset[tuple[str, str]] = frozenset()
    icd10: tuple[str, ...] = ()
    icd10_excluded: tuple[str, ...] = ()
    keywords: tuple[tuple[str, ...], ...] = ()
    excluded_keywords: tuple[str, ...] = ()
    _icd_exact: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    # Compiled once: the normalised prefixes of ``X00*`` entries, and the exclusions likewise, so that
    # a code is checked with one ``str.startswith(tuple)`` instead of a loop over every entry.
    _icd_prefixes: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _icd_excluded_exact: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _icd_excluded_prefixes: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = frozenset(icd10_key(c) for c in self.icd10 if not c.endswith("*"))
        object.__setattr__(self, "_icd_exact", exact)
        object.__setattr__(self, "_icd_prefixes", tuple(icd10_key(c[:-1]) for c in self.icd10 if c.endswith("*")))
        object.__setattr__(self, "_icd_excluded_exact",
                           frozenset(icd10_key(c) for c in self.icd10_excluded if not c.endswith("*")))
        object.__setattr__(self, "_icd_excluded_prefixes",
                           tuple(icd10_key(c[:-1]) for c in self.icd10_excluded if c.endswith("*")))

    def _icd10_matches(self, code: str) -> bool:
        key = icd10_key(code)
        if key in self._icd_excluded_exact or key.startswith(self._icd_excluded_prefixes):
            return False
        return key in self._icd_exact or key.startswith(self._icd_prefixes)

    def code_matches(self, coding: Coding) -> bool:
        if coding.system == ICD10 and self.icd10:
            return self._icd10_matches(coding.code)
        return (coding.system, coding.code) in self.codes

    def code_matches_any(self, codings: Iterable[Coding]) -> bool:
        """True when one of the codes matches (no text, no ICD-10 precedence)."""
        return any(self.code_matches(c) for c in codings)

    def text_matches(self, text: str) -> bool:
        text = text.lower()
        if not text or any(word in text for word in self.excluded_keywords):
            return False
        return any(all(word in text for word in phrase) for phrase in self.keywords)

    def matches(self, codings: Iterable[Coding], text: str = "") -> bool:
        """True when a code matches; when ICD-10 codes are present they alone decide."""
        codings = list(codings)
        if any(self.code_matches(c) for c in codings):
            return True
        if self.icd10 and any(c.system == ICD10 for c in codings):
            return False
        return self.text_matches(text)


def _icd_hit(key: str, entry: str) -> bool:
    if entry.endswith("*"):
        return key.startswith(icd10_key(entry[:-1]))
    return key == icd10_key(entry)


def _snomed(*codes: str) -> frozenset[tuple[str, str]]:
    return frozenset((SNOMED, c) for c in codes)


# --- Cancer -----------------------------------------------------------------------------------

PDAC_SPECIFIC = CodeSet(
    "pancreatic ductal adenocarcinoma",
    "SNOMED 700423003 (protocol; V); keywords for free text",
    codes=_snomed("700423003"),
    keywords=_keywords("pancrea+ductal adenocarcinoma", "pdac", "adenocarcinoma of pancreas",
                       "pancreatic adenocarcinoma"),
    excluded_keywords=("secondary", "metasta to"),
)

PANCREATIC_MALIGNANCY = CodeSet(
    "malignant neoplasm of pancreas",
    "ICD-10-CM C25 (V); SNOMED 363418001, 372003004 (V)",
    codes=_snomed("363418001", "372003004", "700423003", "94459006", "372142002", "187791002"),
    # Z85.07 personal history of pancreatic cancer: the spec says "history counts" (metachronous
    # patients after a Whipple are often recorded that way).
    icd10=("C25", "C25.0", "C25.1", "C25.2", "C25.3", "C25.7", "C25.8", "C25.9", "Z85.07"),
    keywords=_keywords("pancrea+malignan", "pancrea+carcinoma", "pancrea+cancer"),
    excluded_keywords=("secondary", "benign", "in situ", "metastatic to", "family history"),
)

DUCTAL_HISTOLOGY_WORDS = ("ductal", "adenocarcinoma")

PANCREATIC_NON_DUCTAL = CodeSet(
    "non-ductal pancreatic tumour",
    "ICD-10-CM C25.4 endocrine pancreas (V); keywords for neuroendocrine, acinar, SPN, pancreatoblastoma",
    icd10=("C25.4",),
    keywords=_keywords("pancrea+neuroendocrine", "islet cell", "insulinoma", "gastrinoma", "glucagonoma",
                       "vipoma", "pancrea+acinar cell", "pseudopapillary", "pancreatoblastoma"),
    # "Ductal adenocarcinoma with neuroendocrine differentiation" is a PDAC: wording that names the ductal /
    # adenocarcinoma histology is not "explicitly non-ductal" (the gate must not fail it).
    excluded_keywords=DUCTAL_HISTOLOGY_WORDS,
)

NON_DUCTAL_HISTOLOGY_ICDO3 = ("8240", "8241", "8242", "8243", "8244", "8245", "8246", "8247", "8248",
                              "8249", "8550", "8551", "8452", "8971")
NON_DUCTAL_HISTOLOGY_KEYWORDS = ("neuroendocrine", "carcinoid", "acinar", "pseudopapillary",
                                 "pancreatoblastoma", "islet cell")
# For reference (the protocol's ductal / adenocarcinoma histologies): 8500/3, 8140/3, 8480/3, 8490/3,
# 8560/3; SNOMED morphology 82711006 infiltrating duct carcinoma, 35917007 adenocarcinoma.
DUCTAL_HISTOLOGY_ICDO3 = ("8500", "8140", "8480", "8490", "8560")
DUCTAL_HISTOLOGY_SNOMED = ("82711006", "35917007")

HISTOLOGY_EXTENSION = "mcode-histology-morphology-behavior"
RELATED_PRIMARY_EXTENSIONS = ("condition-related", "mcode-related-primary-cancer-condition")
PRIMARY_CANCER_PROFILE = "primary-cancer-condition"
SECONDARY_CANCER_PROFILE = "secondary-cancer-condition"

LIVER_METASTASIS = CodeSet(
    "secondary malignant neoplasm of liver",
    "ICD-10-CM C78.7 (V); SNOMED 94381002 (V); SNOMED 1098951000119108 history of metastatic cancer to liver "
    "(V, mCODE: an Observation in STU1-2, a Condition from STU3 — history counts for the gate); keywords",
    codes=_snomed("94381002", "1098951000119108"),
    icd10=("C78.7",),
    keywords=_keywords("secondary+liver", "metasta+liver", "secondary+hepatic", "metasta+hepatic"),
    excluded_keywords=("history of", "primary malignant neoplasm of liver", "no evidence"),
)

GENERIC_METASTASIS = CodeSet(
    "metastatic malignant neoplasm, site in bodySite",
    "SNOMED 128462008 secondary malignant neoplastic disease (V; mCODE secondary-cancer-condition); "
    "ICD-10-CM C79.9 secondary malignant neoplasm of unspecified site (V) — the spec lists C79.x as "
    "extrahepatic, but an unspecified site is not known to be outside the liver, so C79.9 is read like "
    "the generic code: its bodySite decides",
    codes=_snomed("128462008", "14799000"),
    icd10=("C79.9",),
)

EXTRAHEPATIC_METASTASIS = CodeSet(
    "distant metastasis outside the liver",
    "ICD-10-CM C78.0–C78.6, C78.8x, C79.x, C77.x except C77.2 (V); SNOMED 'secondary malignant neoplasm "
    "of <site>' disorders of non-liver sites: brain 94225005 (V, mCODE example), colon 94260004 (C, "
    "Synthea colorectal module), skin 94579000 (C), lung 94391008, bone 94222008, peritoneum 94297009, "
    "adrenal 94168008, 94313002 (C). Codes are only the minimum: any display of the form 'secondary "
    "malignant neoplasm of <site>' / 'metastasis to <site>' naming a non-liver site counts too "
    "(METASTASIS_SITE_PATTERNS, read in conditions.py)",
    codes=_snomed("94225005", "94391008", "94222008", "94297009", "94168008", "94313002", "94260004",
                  "94579000"),
    icd10=("C78.0*", "C78.1*", "C78.2*", "C78.3*", "C78.4*", "C78.5*", "C78.6*", "C78.8*", "C79*", "C77*"),
    icd10_excluded=("C77.2*", "C79.9"),
)

# Where a metastasis is, read from its display / text. Each pattern's ``site`` group names the organ the
# metastasis is IN ("secondary malignant neoplasm of colon", "metastasis to bone", "metastatic
# adenocarcinoma to the lung"); "metastatic X of <organ>" names the primary, not the site, so it is not read.
METASTASIS_SITE_PATTERNS = (
    r"secondary\s+(?:malignant\s+)?(?:neoplasms?|tumou?rs?|cancers?|carcinomas?|malignancy|malignancies|"
    r"deposits?|disease)\s+(?:of|to|involving|in\s+the)\s+(?:the\s+)?(?P<site>[a-z][a-z ,/-]*)",
    r"metasta\w*(?:\s+[a-z-]+){0,4}?\s+(?:to|into|involving|in\s+the)\s+(?:the\s+)?(?P<site>[a-z][a-z ,/-]*)",
)
# A metastasis that names its primary: "metastasis from malignant tumor of prostate" (SNOMED 314994000,
# Synthea prostate module), "secondary malignant neoplasm from breast cancer".
METASTASIS_PRIMARY_PATTERN = (
    r"(?:metasta\w*|secondary)[a-z ,-]*?\s+from\s+(?:a\s+|the\s+)?(?:primary\s+)?"
    r"(?:malignant\s+(?:tumou?r|neoplasm)\s+of\s+(?:the\s+)?|(?:carcinoma|cancer|tumou?r)\s+of\s+(?:the\s+)?)?"
    r"(?P<primary>[a-z][a-z -]*)"
)
# "<site> metastases" (the site before the word): only these site words, so that "distant" or "multiple"
# are not read as organs.
_SITE_WORDS_BEFORE = (r"(?:liver|hepatic|lung|pulmonary|brain|cerebral|bone|osseous|skeletal|peritoneal|pleural|"
                      r"adrenal|omental|ovarian|skin|cutaneous|mediastinal|supraclavicular|spinal|vertebral|nodal|"
                      r"lymph node)")
SITE_BEFORE_METASTASIS_PATTERN = (
    rf"\b(?P<site>{_SITE_WORDS_BEFORE}(?:\s*(?:,|and|&|/)\s*{_SITE_WORDS_BEFORE})*)\s+"
    r"(?:metastas[ie]s|metastatic\s+(?:disease|deposits?|lesions?)|secondar(?:y|ies))"
)
# A metastasis Condition whose wording also names a pancreatic primary ("metastatic pancreatic
# adenocarcinoma", "adenocarcinoma of pancreas with liver metastases", "pancreatic cancer metastatic to
# liver"): it states the PDAC too. "Secondary malignant neoplasm of pancreas" (a metastasis TO the
# pancreas) does not match.
METASTATIC_PANCREATIC_PATTERN = (
    r"\bmetastatic\b[a-z ,-]*\bpancrea|pancrea[a-z ]*\b(?:metastatic|with\b[a-z ,-]*metasta)"
)
# A metastasis Condition whose wording names another primary right before a cancer word ("breast cancer
# metastatic to liver", "metastatic prostate adenocarcinoma to bone"): that cancer is another malignancy.
# Organ and cancer word must be adjacent (one word between at most), so "lung metastases of pancreatic
# adenocarcinoma" does not match.
OTHER_PRIMARY_NAMED_PATTERN = (
    r"\b(?:breast|prostate|prostatic|lung|colon|colorectal|rectal|rectum|gastric|stomach|ovarian|ovary|renal|kidney|"
    r"bladder|esophageal|oesophageal|thyroid|cervical|endometrial|uterine|melanoma)\s+(?:[a-z-]+\s+)?"
    r"(?:cancer|carcinoma|adenocarcinoma|malignancy|tumou?r|neoplasm)\b|\b(?:melanoma|lymphoma|myeloma|sarcoma)\b"
)
METASTASIS_FROM_OTHER_PRIMARY = {(SNOMED, "314994000"): "prostate"}
LIVER_SITE_WORDS = ("liver", "hepat")
# "Hepatic" in the name of a place that is not the liver: the hepatic flexure of the colon.
NOT_LIVER_WORDS = ("flexure",)
# Regional nodes of a pancreatic cancer are not distant disease (ICD-10 C77.2 and its wording).
REGIONAL_NODE_WORDS = ("intra-abdominal lymph", "intraabdominal lymph", "intra abdominal lymph",
                       "abdominal lymph", "peripancreatic lymph", "regional lymph")
UNSPECIFIED_SITE_WORDS = ("unspecified", "unknown", "other site", "other specified site", "multiple site",
                          "other and unspecified", "ill-defined")
# A display that denies a metastasis is not one ("no evidence of metastasis to bone").
NEGATION_WORDS = ("no evidence", "negative for", "ruled out", "free of", "no metasta", "without metasta",
                  "not metasta")
# Words after "metastatic … in/to" that are not a place ("metastatic disease in remission").
NOT_A_SITE_WORDS = ("remission", "situ", "treatment", "patient", "setting", "response", "progress", "segment")
# Nodes named by an intra-abdominal region are the display equivalent of C77.2 (regional for a pancreatic
# cancer): "celiac nodes", "peripancreatic nodes", "portal lymph nodes", "mesenteric lymphadenopathy".
INTRA_ABDOMINAL_NODE_REGIONS = ("intra-abdominal", "intraabdominal", "intra abdominal", "abdominal", "celiac",
                                "coeliac", "peripancreatic", "pancreaticoduodenal", "portal", "periportal",
                                "porta hepatis", "hepatoduodenal", "hepatic hilar", "mesenteric", "retroperitoneal",
                                "para-aortic", "paraaortic", "peri-aortic", "regional", "local")
NODE_WORDS = ("node", "nodal", "lymph")
# A site only suspected ("…, suspected lung", "possible peritoneal involvement") never excludes on its own.
UNCERTAIN_SITE_WORDS = ("suspect", "possibl", "probabl", "indeterminate", "questionabl", "equivocal", "?")

# "Malignant" that is not a cancer (malignant hypertension / hyperthermia, neuroleptic malignant syndrome,
# malignant otitis externa), or a sign of spread that names no primary (malignant pleural effusion,
# malignant ascites): never another primary. A cancer of unknown primary is C80 (set aside by the spec).
MALIGNANT_NOT_CANCER_WORDS = ("hypertension", "hyperthermia", "neuroleptic", "otitis", "effusion", "ascites")
UNKNOWN_PRIMARY_WORDS = ("unknown primary", "primary unknown", "unspecified site", "without specification of site")
# Problem lists abbreviate or paraphrase "history of": "Hx of breast cancer", "H/O breast cancer", "Personal
# hx of …", "Breast cancer survivor", "… in remission", "s/p …": a past cancer (asks), not an active one.
HISTORY_ABBREVIATIONS = ("hx of", "h/o", "personal hx", "survivor", "in remission", "status post", "s/p")
# A problem about the cancer, not a cancer: "cancer pain", "cancer-related fatigue", "at risk for cancer",
# "fear of cancer recurrence", "malignancy-associated hypercalcaemia".
CANCER_CONTEXT_WORDS = ("pain", "fatigue", "risk", "fear", "anxiety", "worry", "related", "associated", "concern")

OTHER_MALIGNANCY = CodeSet(
    "another primary malignancy",
    "ICD-10-CM C00–C96 and C7A except C25, C44, C77–C80, C7B (V); SNOMED primary malignant neoplasms "
    "(mCODE examples 353431000119107 breast, 254637007 NSCLC, 92814006 CLL) and keywords",
    # 363346000 "Malignant neoplastic disease" is not listed: it names no site (see GENERIC_MALIGNANCY_NAMES).
    codes=_snomed("353431000119107", "254637007", "92814006", "254837009", "363358000", "399068003",
                  "363406005", "93143009", "372064008"),
    icd10=icd10_range("C00", "C96") + ("C7A*",),
    icd10_excluded=("C25*", "C44*", "C77*", "C78*", "C79*", "C80*", "C7B*"),
    keywords=_keywords("malignan", "carcinoma", "cancer", "lymphoma", "leukemia", "leukaemia", "melanoma",
                       "sarcoma", "myeloma"),
    # Skin cancers of C44 (basal / squamous cell, "malignant neoplasm of skin") are set aside; a melanoma of
    # the skin is C43 and counts, so "of skin" alone must not exclude.
    excluded_keywords=("pancrea", "secondary", "metasta", "basal cell", "in situ", "benign", "history of",
                       "carcinoma of skin", "neoplasm of skin", "tumor of skin", "tumour of skin", "skin cancer",
                       "cutaneous squamous", "keratinocyte", "family history", "screening", "suspected")
    + HISTORY_ABBREVIATIONS + MALIGNANT_NOT_CANCER_WORDS + UNKNOWN_PRIMARY_WORDS + CANCER_CONTEXT_WORDS,
)

# A cancer named with no site at all ("Cancer", "Malignant neoplastic disease (disorder)", "Adenocarcinoma"):
# in this patient most likely the PDAC itself, and like C80 (unspecified site) never another primary.
# Compared after parentheses ("(disorder)", Epic's "(HCC)"), "NOS" and "unspecified" are removed.
GENERIC_MALIGNANCY_NAMES = frozenset({
    "cancer", "malignancy", "malignant neoplasm", "malignant neoplastic disease", "malignant tumor",
    "malignant tumour", "neoplasm, malignant", "malignant disease", "carcinoma", "adenocarcinoma",
    "primary malignant neoplasm", "active cancer", "cancer, active", "tumor, malignant", "malignant",
})

# "Malignant neoplasm of liver, not specified as primary or secondary" (ICD-10 C22.9, SNOMED 93870000
# "Malignant neoplasm of liver"): in a patient with liver metastases it may well be them. It asks (unknown)
# instead of excluding; a named primary liver cancer (hepatocellular, cholangiocarcinoma …) still counts.
LIVER_PRIMARY_OR_SECONDARY = CodeSet(
    "malignant neoplasm of liver, primary or secondary not stated",
    "ICD-10-CM C22.9 (V); SNOMED 93870000 Malignant neoplasm of liver (C, public SNOMED-based code lists)",
    codes=_snomed("93870000"),
    icd10=("C22.9",),
    keywords=_keywords("malignant neoplasm of liver", "malignant tumor of liver", "malignant tumour of liver",
                       "liver cancer", "cancer of liver", "cancer of the liver", "malignancy of liver",
                       "malignancy of the liver", "hepatic malignancy"),
    excluded_keywords=("primary", "hepatocellular", "cholangio", "hepatoblastoma", "angiosarcoma", "bile duct",
                       "hcc,", "secondary", "metasta"),
)

MALIGNANCY_HISTORY = CodeSet(
    "personal history of another malignancy",
    "ICD-10-CM Z85.x except Z85.07 pancreas (V; Z85.07 is read as the PDAC itself); SNOMED 'history of "
    "malignant neoplasm of <site>' situations: prostate 428262008 (C, several public code lists), "
    "colon/rectum 1286880003 (C, a published FSH value set), 429699009 (C). Display pattern 'history of … "
    "malignant / cancer / carcinoma …' for the rest. 429740004 is NOT listed: its SNOMED FSN is 'Family "
    "history of malignant neoplasm of breast' (a relative's cancer says nothing about the patient)",
    codes=_snomed("428262008", "1286880003", "429699009"),
    icd10=("Z85*",),
    icd10_excluded=("Z85.07",),
    keywords=tuple((history, word) for history in ("history of",) + HISTORY_ABBREVIATIONS
                   for word in ("malignan", "cancer", "carcinoma", "lymphoma", "leukemia", "leukaemia", "melanoma",
                                "sarcoma", "myeloma")),
    excluded_keywords=("family history", "fh:", "no history", "pancrea", "basal cell", "in situ", "benign",
                       "metasta", "secondary") + MALIGNANT_NOT_CANCER_WORDS,
)

# --- Other conditions -------------------------------------------------------------------------

INFECTION = CodeSet(
    "active bacterial or fungal infection",
    "ICD-10-CM A00–A79, B35–B49, B95–B96, J13–J18, K65.x, K75.0, K81.0, K83.0, K83.09, N10, N39.0, "
    "R65.2x, T81.4x (V); SNOMED sepsis 91302008, septic shock 76571007, cholangitis 82403002, "
    "abscess 128477000, liver abscess 27916005, pneumonia 233604007, UTI 68566005, bacterial "
    "infection 87628006, mycosis 3218000, pyelonephritis 45816000 (C)",
    codes=_snomed("91302008", "76571007", "82403002", "128477000", "27916005", "233604007", "68566005",
                  "87628006", "3218000", "45816000"),
    icd10=icd10_range("A00", "A79") + icd10_range("B35", "B49") + ("B95*", "B96*") + icd10_range("J13", "J18")
    + ("K65*", "K75.0", "K81.0", "K83.0", "K83.09", "N10", "N39.0", "R65.2*", "T81.4*"),
    keywords=_keywords("sepsis", "septic", "cholangitis", "abscess", "bacterial", "fungal", "candid",
                       "aspergill", "pneumonia", "pyelonephritis", "peritonitis", "urinary tract infection",
                       "bacteremia", "bacteraemia", "empyema", "cholecystitis"),
    excluded_keywords=("viral", "virus", "hepatitis", "herpes", "covid", "influenza", "hiv", "sclerosing",
                       "history of", "resolved"),
)

CARDIAC_DISEASE = CodeSet(
    "angina, heart failure or arrhythmia",
    "ICD-10-CM I20.x, I47–I49, I50.x (V); SNOMED angina 194828000, heart failure 84114007, congestive "
    "heart failure 42343007, atrial fibrillation 49436004, arrhythmia 698247007, atrial flutter "
    "5370000, ventricular tachycardia 25569003 (C)",
    codes=_snomed("194828000", "84114007", "42343007", "49436004", "698247007", "5370000", "25569003"),
    icd10=("I20*", "I47*", "I48*", "I49*", "I50*"),
    keywords=_keywords("angina", "heart failure", "cardiac failure", "arrhythmia", "dysrhythmia",
                       "atrial fibrillation", "atrial flutter", "ventricular tachycardia",
                       "supraventricular tachycardia"),
    excluded_keywords=("history of", "family history", "without heart failure", "without congestive heart failure"),
)

NEUROPATHY = CodeSet(
    "peripheral neuropathy",
    "ICD-10-CM G60–G64 (V); SNOMED 302226006 peripheral neuropathy, 42345000 polyneuropathy, "
    "386033004 neuropathy (C); MedDRA 10034620 peripheral sensory neuropathy (C)",
    codes=_snomed("302226006", "42345000", "386033004") | {(MEDDRA, "10034620"), (MEDDRA, "10029331")},
    icd10=icd10_range("G60", "G64"),
    keywords=_keywords("neuropathy"),
    excluded_keywords=("optic", "history of", "autonomic"),
)

PREGNANCY_CONDITION = CodeSet(
    "pregnancy",
    "ICD-10-CM Z33.1, Z34.x, O09.x, O00–O9A (V); SNOMED 77386006 pregnant (V)",
    codes=_snomed("77386006"),
    icd10=("Z33.1",) + icd10_range("Z34", "Z34") + icd10_range("O00", "O99") + ("O9A*",),
    keywords=_keywords("pregnan"),
    # "Pregnancy test negative", "pregnancy ruled out", "not currently pregnant" deny a pregnancy.
    excluded_keywords=("not pregnant", "not currently pregnant", "history of", "no pregnancy", "negative",
                       "ruled out"),
)

# --- What a Condition is (problem list vs visit diagnosis) ------------------------------------

CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PROBLEM_LIST_CATEGORY = "problem-list-item"
ENCOUNTER_DIAGNOSIS_CATEGORY = "encounter-diagnosis"
# EHRs' own visit-diagnosis categories, recognised by code or display (Epic and Oracle Health send a
# local category whose display is "Encounter Diagnosis" / "Visit Diagnosis"; admission and discharge
# diagnoses are visit-level too). Words are compared on lower-cased text with '-' and '_' as spaces.
VISIT_DIAGNOSIS_CATEGORY_WORDS = ("encounter diagnosis", "visit diagnosis", "encounter dx", "visit dx",
                                  "admission diagnosis", "admitting diagnosis", "discharge diagnosis",
                                  "billing diagnosis", "encounterdiagnosis", "visitdiagnosis")
PROBLEM_LIST_CATEGORY_WORDS = ("problem list", "problemlist", "problem")
# Past medical history (Epic's "medical-history" Condition category; "Past Medical History" sections):
# a status-less cancer there is a history, not an active cancer.
MEDICAL_HISTORY_CATEGORY_WORDS = ("medical history", "medicalhistory", "past history")
ENCOUNTER_DIAGNOSIS_PROFILE = "us-core-condition-encounter-diagnosis"

# --- Sites, observations, imaging --------------------------------------------------------------

PANCREAS_SITE = CodeSet(
    "pancreas",
    "SNOMED 15776009 pancreatic structure (V, mCODE examples); pancreas parts by display",
    codes=_snomed("15776009", "181277001"),
    keywords=_keywords("pancrea"),
)

LIVER_SITE = CodeSet(
    "liver",
    "SNOMED 10200004 liver structure (V); liver parts by display",
    codes=_snomed("10200004", "181268008", "39400004"),
    keywords=_keywords("liver", "hepatic"),
    excluded_keywords=NOT_LIVER_WORDS,
)

# Performance status. ECOG: LOINC 89247-1 (mCODE, V), the pre-mCODE 89262-0 (V, LOINC), SNOMED 423740007
# "ECOG performance status" observable (C). Karnofsky: LOINC 89243-0 (V). Flowsheet rows carry a local
# code (Epic: urn:oid:1.2.840.114350…) and usually LOINC; with no LOINC/SNOMED code at all, the row's name
# ("ECOG", "Karnofsky", "KPS") identifies the scale (PERFORMANCE_NAME_WORDS).
ECOG_CODES = {(LOINC, "89247-1"), (LOINC, "89262-0"), (SNOMED, "423740007")}
KARNOFSKY_CODES = {(LOINC, "89243-0")}
# LOINC answer list LL529-9 (V): in valueCodeableConcept or interpretation.
ECOG_ANSWERS = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4, "LA9627-6": 5}
# SNOMED ECOG grade findings (spec revision 2; C): as the value, or as the Observation's own code.
ECOG_GRADE_FINDINGS = {"425389002": 0, "422512005": 1, "422894000": 2, "423053003": 3, "423237006": 4,
                       "423409001": 5}
PERFORMANCE_NAME_WORDS = {"ecog": "ecog", "zubrod": "ecog", "who performance": "ecog",
                          "karnofsky": "karnofsky", "kps": "karnofsky"}
# What may stand around a number written as text (general rules, "values written as text"): the scale's
# name before it, a unit after it. Anything else makes the text unreadable.
# WHO performance status is the same 0–5 scale (and the one Swedish records name: the trial's site).
ECOG_TEXT_NAMES = ("ecog performance status", "ecog performance score", "ecog ps", "ecog score", "ecog grade",
                   "ecog", "who performance status", "who ps", "who", "zubrod", "performance status", "ps",
                   "grade")
KARNOFSKY_TEXT_NAMES = ("karnofsky performance status", "karnofsky performance score", "karnofsky score",
                        "karnofsky", "kps", "performance status")
CA19_9_TEXT_NAMES = ("ca 19-9", "ca19-9", "ca 19.9", "ca19.9", "ca 199", "ca199")
CA19_9_CODES = {(LOINC, "24108-3"), (LOINC, "83084-4")}
CA19_9_UNITS = {"u/ml", "[u]/ml", "ku/l", "k[u]/l", "[iu]/ml", "iu/ml", "k[iu]/l", "units/ml", "unit/ml",
                "kunits/l"}
TUMOUR_SIZE_CODES = {(LOINC, "21889-1")}
LONGEST_DIAMETER = (LOINC, "33728-7")
DISEASE_STATUS_CODES = {(LOINC, "97509-4"), (LOINC, "88040-1")}
DISEASE_STATUS_VALUES = {
    "271299001": "progression",
    "359746009": "stable",
    "268910001": "improved",
    "550991000124107": "remission",
    "551001000124108": "remission",
    "709137006": "undetermined",
    # Synthea's cancer modules write these clinical findings as the status value (spec revision 2; C).
    "230993007": "progression",  # worsening
    "385633008": "improved",  # improving
}
PREGNANCY_STATUS_CODES = {(LOINC, "82810-3")}
PREGNANCY_STATUS_VALUES = {"77386006": "pregnant", "60001007": "not-pregnant", "261665006": "unknown",
                           # LOINC's own answers for 82810-3 (C): what a LOINC-coded flowsheet row sends.
                           "LA15173-0": "pregnant", "LA26683-5": "not-pregnant", "LA4489-6": "unknown"}
# A pregnancy status written as text ("Not pregnant", "Pregnant", "Unknown"), read in this order.
PREGNANCY_STATUS_TEXT = (("unknown", "unknown"), ("unsure", "unknown"), ("possibl", "unknown"),
                         ("not", "not-pregnant"), ("no", "not-pregnant"), ("negative", "not-pregnant"),
                         ("pregnan", "pregnant"), ("yes", "pregnant"), ("positive", "pregnant"))
BREASTFEEDING_CODES = {(LOINC, "63895-7")}
BREASTFEEDING_YES = {(SNOMED, "169750002"), (LOINC, "LA29253-4")}
BREASTFEEDING_NO = {(SNOMED, "169741004"), (LOINC, "LA29252-6")}
METASTASIS_HISTORY_LIVER = {(SNOMED, "1098951000119108")}
T_CATEGORY_CODES = {(LOINC, "21905-5"), (LOINC, "21899-0"), (SNOMED, "399504009"), (SNOMED, "384625004"),
                    (SNOMED, "399537006")}
UNRESECTABLE_KEYWORDS = ("arterial reconstruction", "arterial involvement", "arterial encasement",
                         "locally advanced", "unresectable")
CROSS_SECTIONAL_MODALITIES = frozenset({"CT", "MR", "PT"})

# --- Staging imaging (ImagingStudy, imaging DiagnosticReports, imaging Procedures) ----------------
# DICOM modality codes CT, MR, PT (DICOM PS3.16 CID 29, V). An imaging DiagnosticReport is recognised by
# category: HL7 v2 table 0074 RAD radiology, CT CAT scan, NMR / MR magnetic resonance, NMS nuclear
# medicine scan (V, v2-0074; "MR" is not in the table but is sent), or LOINC part LP29684-5 "Radiology"
# (V, US Core DiagnosticReport for report and note exchange) — or, with no such category, by a code or
# display that names CT / MR(I) / PET (IMAGING_MODALITY_WORDS).
IMAGING_REPORT_CATEGORIES = {(V2_0074, "RAD"), (V2_0074, "CT"), (V2_0074, "NMR"), (V2_0074, "MR"),
                             (V2_0074, "NMS"), (LOINC, "LP29684-5")}
# The modality a v2-0074 category itself implies (RAD and NMS say only "imaging": the code must name it).
IMAGING_CATEGORY_MODALITY = {"CT": "CT", "NMR": "MR", "MR": "MR"}
# A category an EHR names in its own words (Epic's local "Imaging" category, Oracle Health's "Radiology").
IMAGING_CATEGORY_WORDS = ("radiolog", "imaging", "diagnostic imaging")
# Categories that are certainly not imaging: their reports are never read as imaging, whatever their words.
NON_IMAGING_CATEGORY_WORDS = ("laborator", "patholog", "microbiolog", "chemistry", "hematolog", "haematolog",
                              "serolog", "blood bank", "toxicolog", "genetic", "cytolog")
IMAGING_REPORT_STATUSES = frozenset({"final", "amended", "corrected", "appended", "preliminary"})
# Words (regular expressions on lower-cased text) naming a cross-sectional modality in a code's display.
IMAGING_MODALITY_WORDS = (
    ("CT", r"\bct\b|\bcta\b|computed tomograph|\bcat scan|\bcomputerized tomograph|\bpet[/ -]?ct\b"),
    ("MR", r"\bmri?\b|\bmra\b|\bmrcp\b|magnetic resonance|\bnmr\b"),
    ("PT", r"\bpet\b|\bpet[/ -]?ct\b|positron emission"),
)
# Imaging procedures by SNOMED (C, SNOMED CT browser): 77477000 computed tomography, 113091000 magnetic
# resonance imaging, 82918005 positron emission tomography, 450436003 PET with CT.
IMAGING_PROCEDURE_SNOMED = {"77477000": ("CT",), "113091000": ("MR",), "82918005": ("PT",),
                            "450436003": ("PT", "CT")}
# CPT radiology codes of cross-sectional studies of the trunk and head (C: AMA CPT descriptors as published
# in the CMS Physician Fee Schedule code lists; not checked against the licensed CPT file here). Any other
# CPT code in the radiology section 70010–79999 whose display names CT / MRI / PET counts too.
IMAGING_PROCEDURE_CPT = {
    # CT: head 70450–70470, chest 71250–71270, CTA chest 71275, pelvis 72192–72194, abdomen 74150–74170,
    # CTA abdomen 74174–74175, abdomen + pelvis 74176–74178.
    **{c: ("CT",) for c in ("70450", "70460", "70470", "71250", "71260", "71270", "71275", "72192", "72193",
                            "72194", "74150", "74160", "74170", "74174", "74175", "74176", "74177", "74178")},
    # MRI: brain 70551–70553, chest 71550–71552, pelvis 72195–72197, abdomen (incl. MRCP) 74181–74183.
    **{c: ("MR",) for c in ("70551", "70552", "70553", "71550", "71551", "71552", "72195", "72196", "72197",
                            "74181", "74182", "74183")},
    # PET 78811–78813; PET with concurrent CT 78814–78816.
    **{c: ("PT",) for c in ("78811", "78812", "78813")},
    **{c: ("PT", "CT") for c in ("78814", "78815", "78816")},
}
CPT_RADIOLOGY_RANGE = (70010, 79999)
LENGTH_UNITS_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "cm": 10.0, "centimeter": 10.0,
                   "centimeters": 10.0}

# Severity → CTCAE-like grade (SNOMED, C).
SEVERITY_GRADES = {"255604002": 1, "6736007": 2, "1255665007": 2, "24484000": 3, "442452003": 4}
GRADE_EXTENSIONS = ("ae-grade", "ctcae-grade", "ctcae", "grade")

# --- Procedures --------------------------------------------------------------------------------

# Epic puts its generic "Surgical procedure" category (SNOMED 387713003) even on stents and ports: the
# category says a procedure is surgical, never that it is major (spec revision 2).
SURGICAL_CATEGORY = {(SNOMED, "387713003")}
PANCREATIC_RESECTION = CodeSet(
    "pancreatic resection",
    "SNOMED pancreaticoduodenectomy 173422009 / 30549001 Whipple, distal pancreatectomy 45420004, "
    "total pancreatectomy 82661006 (C); CPT 48140 distal, 48145, 48146, 48150 / 48152 Whipple, 48153 / 48154 "
    "pylorus-preserving, 48155 total pancreatectomy (C, CMS PFS descriptors); keywords",
    codes=_snomed("173422009", "30549001", "45420004", "82661006", "116142003")
    | frozenset((CPT, c) for c in ("48140", "48145", "48146", "48150", "48152", "48153", "48154", "48155")),
    keywords=_keywords("pancreatectomy", "pancreaticoduodenectomy", "pancreatoduodenectomy", "whipple",
                       "pancreas+resection", "pancreatic resection"),
)
# Major surgery (spec revision 2): operations that open a body cavity, organ resections, major joint
# replacement, major vascular surgery, amputation. A name ending in "-ectomy" is NOT enough (a
# gingivectomy is dental); only the operations below count.
MAJOR_SURGERY = CodeSet(
    "major surgery",
    "curated SNOMED (C, SNOMED CT browser): colectomy 23968004, gastrectomy "
    "53442002, laparotomy 86481000, cholecystectomy 38102005, nephrectomy 108022006, hip replacement "
    "52734007, knee replacement 609588000, CABG 232717009, appendectomy 80146002, splenectomy 234319005, "
    "lobectomy of lung 173171007, hysterectomy 236886002, kidney transplant 70536003, craniotomy 25353009, "
    "amputation 81723002; curated CPT (C, CMS PFS "
    "descriptors): hepatectomy 47120 / 47122 / 47125 / 47130, colectomy 44140–44160 and laparoscopic "
    "44204–44212, gastrectomy 43620–43634, esophagectomy 43107–43124, nephrectomy 50220–50240 / 50545 / "
    "50546, cholecystectomy 47562 / 47563 / 47600 / 47605 / 47610, appendectomy 44950 / 44960 / 44970, "
    "splenectomy 38100 / 38120, lung lobectomy / pneumonectomy 32440 / 32480 / 32484 / 32663, hysterectomy "
    "58150 / 58180 / 58200 / 58210 / 58570–58573, hip / knee arthroplasty 27130 / 27447, exploratory "
    "laparotomy 49000, thoracotomy 32100, craniotomy 61510, CABG 33510–33536, aortic aneurysm repair "
    "34701–34708 / 35081 / 35102, amputation 27590–27598 / 27880–27889; keywords (MAJOR_SURGERY_WORDS)",
    # 18286008 is NOT a hepatectomy: it is "Catheter ablation of tissue of heart" (Synthea's atrial
    # fibrillation module) — a catheter procedure that must not exclude anyone.
    codes=_snomed("23968004", "53442002", "86481000", "38102005", "108022006", "52734007",
                  "609588000", "232717009", "80146002", "234319005", "173171007", "236886002", "70536003",
                  "25353009", "81723002")
    | frozenset((CPT, c) for c in (
        "47120", "47122", "47125", "47130", "44140", "44141", "44143", "44144", "44145", "44146", "44147",
        "44150", "44151", "44155", "44156", "44157", "44158", "44160", "44204", "44205", "44206", "44207",
        "44208", "44210", "44211", "44212", "43620", "43621", "43622", "43631", "43632", "43633", "43634",
        "43107", "43108", "43112", "43113", "43116", "43117", "43118", "43121", "43122", "43123", "43124",
        "50220", "50225", "50230", "50234", "50236", "50240", "50545", "50546", "47562", "47563", "47600",
        "47605", "47610", "44950", "44960", "44970", "38100", "38120", "32440", "32480", "32484", "32663",
        "58150", "58180", "58200", "58210", "58570", "58571", "58572", "58573", "27130", "27447", "49000",
        "32100", "61510", "33510", "33511", "33512", "33513", "33514", "33516", "33533", "33534", "33535",
        "33536", "34701", "34702", "34703", "34704", "34705", "34706", "34707", "34708", "35081", "35102",
        "27590", "27591", "27592", "27594", "27596", "27598", "27880", "27881", "27882", "27886", "27888",
        "27889")),
)
# Words (matched at the start of a word, lower-cased; words of four letters or fewer as whole words) that
# make an operation major. Organ resections are
# named one by one: "-ectomy" alone is not enough.
MAJOR_SURGERY_WORDS = (
    "laparotomy", "laparoscop", "thoracotomy", "thoracoscop", "video-assisted thoracoscopic", "vats",
    "craniotomy", "craniectomy", "sternotomy", "hepatectomy", "liver resection", "hepatic resection",
    "resection of liver", "partial resection of liver", "colectomy", "hemicolectomy", "proctocolectomy",
    "proctectomy", "bowel resection", "resection of colon", "resection of large intestine",
    "resection of small intestine", "small bowel resection", "anterior resection", "abdominoperineal",
    "gastrectomy", "oesophagectomy", "esophagectomy", "oesophagogastrectomy", "esophagogastrectomy",
    "nephrectomy", "cholecystectomy", "appendectomy", "appendicectomy", "splenectomy", "lobectomy of lung",
    "pulmonary lobectomy", "lung lobectomy", "lobectomy", "pneumonectomy", "lung resection",
    "resection of lung", "wedge resection of lung", "segmentectomy", "hysterectomy", "cystectomy",
    "prostatectomy", "adrenalectomy", "hip replacement", "knee replacement", "shoulder replacement",
    "total hip", "total knee", "replacement of hip", "replacement of knee", "hip arthroplasty",
    "knee arthroplasty", "shoulder arthroplasty", "arthroplasty of hip", "arthroplasty of knee",
    "coronary artery bypass", "cabg", "aortic aneurysm", "aneurysm repair", "aortic valve replacement",
    "valve replacement", "endarterectomy", "vascular bypass", "femoropopliteal bypass", "aortobifemoral",
    "amputation", "transplant", "portocaval", "portacaval", "portosystemic shunt", "splenorenal shunt",
    "resection of portion of liver",
    # The same operations in plain words ("Open Removal of Gall Bladder", Synthea; "excision of …" SNOMED FSNs).
    "removal of gall bladder", "removal of gallbladder", "gallbladder removal", "excision of gallbladder",
    "excision of appendix", "excision of colon", "excision of stomach", "excision of kidney", "excision of liver",
    "excision of lung", "excision of uterus", "excision of spleen", "excision of esophagus",
    "excision of oesophagus", "removal of appendix", "removal of spleen", "removal of kidney", "removal of uterus",
)
# Diagnostic and minor procedures: never major, whatever else the name says (a laparoscopic biopsy is a
# biopsy) — the safe reading, which never excludes an eligible patient. Matched at the start of a word.
MINOR_PROCEDURE_WORDS = (
    "biopsy", "endoscop", "eus", "endosonograph", "ercp", "colonoscop", "gastroscop", "sigmoidoscop",
    "bronchoscop", "cystoscop", "hysteroscop", "esophagogastroduodenoscop", "oesophagogastroduodenoscop",
    "egd", "through endoscope", "polyp", "transurethral", "ultrasound", "imaging", "scan", "dental",
    "tooth", "teeth", "gingiv", "periodont", "dentoalveolar", "skin", "mole", "cutaneous", "subcutaneous",
    "cataract", "phacoemulsification", "intraocular", "eye", "lens", "retina", "vitrectom", "conjunctiv",
    "eyelid", "nail", "wart",
)
# Not an operation at all, whatever operation it names: a referral, a care regime, an assessment
# (Synthea writes "Referral to transplant surgeon" and "Transplantation of kidney regime (regime/therapy)"
# as Procedures), or a procedure done through a catheter (transcatheter aortic valve replacement).
NOT_AN_OPERATION_WORDS = ("referral", "regime/therapy", "regime", "assessment", "consultation", "evaluation",
                          "counseling", "counselling", "education", "screening", "planning", "transcatheter",
                          "percutaneous coronary")
# Devices and access procedures: minor on their own, but an organ resection "with drain placement" stays
# major (so these lose to a major word, unlike the diagnostic words above).
DEVICE_PROCEDURE_WORDS = ("stent", "port", "drain", "catheter", "needle", "aspiration", "injection", "infusion",
                          "paracentesis", "thoracentesis", "picc", "central line", "central venous",
                          "feeding tube", "gastrostomy tube", "peg")

# --- Medicines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drug:
    name: str
    rxnorm: frozenset[str]
    names: tuple[str, ...]


ANTICANCER_DRUGS = (
    Drug("gemcitabine", frozenset({"12574"}), ("gemcitabine", "gemzar")),
    Drug("nab-paclitaxel", frozenset({"486610"}), ("nab-paclitaxel", "protein-bound paclitaxel",
                                                   "paclitaxel protein-bound", "abraxane",
                                                   "albumin-bound paclitaxel")),
    Drug("paclitaxel", frozenset({"56946"}), ("paclitaxel", "taxol")),
    Drug("fluorouracil", frozenset({"4492"}), ("fluorouracil", "5-fu", "5fu")),
    Drug("oxaliplatin", frozenset({"32592"}), ("oxaliplatin",)),
    Drug("irinotecan", frozenset({"51499", "1726319"}), ("irinotecan", "onivyde")),
    Drug("leucovorin", frozenset({"6313", "259312"}), ("leucovorin", "levoleucovorin", "folinic acid",
                                                        "calcium folinate", "folinate")),
    Drug("capecitabine", frozenset({"194000"}), ("capecitabine", "xeloda")),
    Drug("cisplatin", frozenset({"2555"}), ("cisplatin",)),
    Drug("S-1 (tegafur)", frozenset({"10302"}), ("tegafur", "s-1", "teysuno")),
)
ANTICANCER_ATC_PREFIX = "L01"

IMMUNOSUPPRESSANTS = (
    Drug("tacrolimus", frozenset({"42316"}), ("tacrolimus",)),
    Drug("ciclosporin", frozenset({"3008"}), ("ciclosporin", "cyclosporin")),
    Drug("mycophenolate", frozenset({"68149", "7145"}), ("mycophenol",)),
    Drug("azathioprine", frozenset({"1256"}), ("azathioprine",)),
    Drug("sirolimus", frozenset({"35302"}), ("sirolimus",)),
    Drug("everolimus", frozenset({"141704"}), ("everolimus",)),
    Drug("belatacept", frozenset(), ("belatacept",)),
    Drug("basiliximab", frozenset(), ("basiliximab",)),
    Drug("leflunomide", frozenset(), ("leflunomide",)),
)
IMMUNOSUPPRESSANT_ATC_PREFIX = "L04"

# Local use does not suppress the immune system (spec revision 2): a route or dose form that is topical,
# cutaneous, ophthalmic, otic, nasal or vaginal. Routes: SNOMED route of administration (C, SNOMED CT
# browser / FHIR R4 route value set): 6064005 topical, 448598008 cutaneous, 54485002 ophthalmic,
# 10547007 otic, 46713006 nasal, 16857009 vaginal; HL7 v3 RouteOfAdministration TOPICAL, OPTHALTA, OTIC,
# NASAL, VAGINSI, DERMAL… (C). Words in the route's display or in the dose form / product name.
# (Transdermal is not local: a patch delivers the drug systemically.)
LOCAL_ROUTE_CODES = frozenset({"6064005", "448598008", "54485002", "10547007", "46713006", "16857009",
                               "TOPICAL", "OPTHALTA", "OTIC", "NASAL", "VAGINSI", "DERMAL", "CONJUNC",
                               "OPTHALINSTL"})
# Epic writes the route of eye / ear / nose drops as where they go ("Both Eyes", "Left Ear", "Each Nostril").
LOCAL_USE_WORDS = ("topical", "cutaneous", "dermal", "ophthalmic", "ophthalmological", "eye drop",
                   "eye ointment", "eye gel", "ocular", "conjunctival", "otic", "ear drop", "auricular",
                   "nasal", "intranasal", "vaginal", "ointment", "cream", "lotion", "emulsion, ophthalmic",
                   "both eyes", "left eye", "right eye", "each eye", "affected eye", "eye(s)", "both ears",
                   "left ear", "right ear", "each ear", "affected ear", "each nostril", "nostril", "external",
                   "apply to skin", "to skin", "affected area", "skin")
NOT_LOCAL_WORDS = ("transdermal", "oral", "intravenous", "subcutaneous")

CORTICOSTEROIDS = (
    Drug("prednisone", frozenset({"8640"}), ("prednisone",)),
    Drug("prednisolone", frozenset({"8638"}), ("prednisolone",)),
    Drug("dexamethasone", frozenset({"3264"}), ("dexamethasone",)),
    Drug("hydrocortisone", frozenset({"5492"}), ("hydrocortisone",)),
    Drug("methylprednisolone", frozenset({"6902"}), ("methylprednisolone",)),
    Drug("betamethasone", frozenset({"1514"}), ("betamethasone",)),
)
CORTICOSTEROID_ATC_PREFIX = "H02"

REGIMENS = (
    ("FOLFIRINOX", frozenset({"fluorouracil", "oxaliplatin", "irinotecan"})),
    ("gemcitabine + nab-paclitaxel", frozenset({"gemcitabine", "nab-paclitaxel"})),
)
