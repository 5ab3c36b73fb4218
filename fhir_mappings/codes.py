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

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

SNOMED = "snomed"
LOINC = "loinc"
ICD10 = "icd10"
ICDO3 = "icdo3"
RXNORM = "rxnorm"
ATC = "atc"
DICOM = "dicom"
MEDDRA = "meddra"
UCUM = "ucum"

_SYSTEMS = {
    "http://snomed.info/sct": SNOMED,
    "http://loinc.org": LOINC,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10,
    "http://hl7.org/fhir/sid/icd-10": ICD10,
    "urn:oid:2.16.840.1.113883.6.90": ICD10,
    "urn:oid:2.16.840.1.113883.6.3": ICD10,
    "http://terminology.hl7.org/CodeSystem/icd-o-3": ICDO3,
    "urn:oid:2.16.840.1.113883.6.43.1": ICDO3,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "http://www.whocc.no/atc": ATC,
    "http://dicom.nema.org/resources/ontology/DCM": DICOM,
    "http://terminology.hl7.org/CodeSystem/mdr": MEDDRA,
    "https://www.meddra.org": MEDDRA,
    "http://unitsofmeasure.org": UCUM,
}


class Coding(NamedTuple):
    system: str
    code: str
    display: str


_NORMALISED: dict[str, str] = {}  # raw system string → normalise_system's answer (bounded below)


def normalise_system(uri: object) -> str:
    """Our short name for a code system URI; unknown systems keep their URI."""
    if type(uri) is str:
        known = _NORMALISED.get(uri)
        if known is not None:
            return known
    text = str(uri or "").strip().rstrip("/")
    result = _SYSTEMS.get(text, text)
    if type(uri) is str and len(_NORMALISED) < 1024:  # a few dozen systems in practice; never unbounded
        _NORMALISED[uri] = result
    return result


def icd10_key(code: str) -> str:
    """ICD-10 codes compare without the dot and in upper case (``C78.7`` = ``C787``)."""
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

PANCREATIC_NON_DUCTAL = CodeSet(
    "non-ductal pancreatic tumour",
    "ICD-10-CM C25.4 endocrine pancreas (V); keywords for neuroendocrine, acinar, SPN, pancreatoblastoma",
    icd10=("C25.4",),
    keywords=_keywords("pancrea+neuroendocrine", "islet cell", "insulinoma", "gastrinoma", "glucagonoma",
                       "vipoma", "pancrea+acinar cell", "pseudopapillary", "pancreatoblastoma"),
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
    "ICD-10-CM C78.7 (V); SNOMED 94381002 (V); keywords",
    codes=_snomed("94381002"),
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
    "ICD-10-CM C78.0–C78.6, C78.8x, C79.x, C77.x except C77.2 (V); SNOMED secondary neoplasm of "
    "brain 94225005 (V, mCODE example), lung 94391008, bone 94222008, peritoneum 94297009, "
    "adrenal 94168008 (C); keywords naming a site",
    codes=_snomed("94225005", "94391008", "94222008", "94297009", "94168008", "94313002"),
    icd10=("C78.0*", "C78.1*", "C78.2*", "C78.3*", "C78.4*", "C78.5*", "C78.6*", "C78.8*", "C79*", "C77*"),
    icd10_excluded=("C77.2*", "C79.9"),
    keywords=tuple((marker, site) for marker in ("secondary", "metasta")
                   for site in ("lung", "pulmonary", "brain", "bone", "peritone", "pleura", "adrenal",
                                "omentum", "ovar", "skin", "distant lymph", "mediastin", "supraclavicular",
                                "cerebr", "spine", "vertebra")),
    excluded_keywords=("history of", "liver", "hepatic", "no evidence"),
)

OTHER_MALIGNANCY = CodeSet(
    "another primary malignancy",
    "ICD-10-CM C00–C96 and C7A except C25, C44, C77–C80, C7B (V); SNOMED primary malignant neoplasms "
    "(mCODE examples 353431000119107 breast, 254637007 NSCLC, 92814006 CLL) and keywords",
    codes=_snomed("353431000119107", "254637007", "92814006", "254837009", "363358000", "399068003",
                  "363406005", "93143009", "372064008", "363346000"),
    icd10=icd10_range("C00", "C96") + ("C7A*",),
    icd10_excluded=("C25*", "C44*", "C77*", "C78*", "C79*", "C80*", "C7B*"),
    keywords=_keywords("malignan", "carcinoma", "cancer", "lymphoma", "leukemia", "leukaemia", "melanoma",
                       "sarcoma", "myeloma"),
    excluded_keywords=("pancrea", "secondary", "metasta", "basal cell", "in situ", "benign", "history of",
                       "of skin", "family history", "screening", "suspected"),
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
    excluded_keywords=("not pregnant", "history of", "no pregnancy"),
)

# --- Sites, observations, imaging --------------------------------------------------------------

LIVER_SITE = CodeSet(
    "liver",
    "SNOMED 10200004 liver structure (V); liver parts by display",
    codes=_snomed("10200004", "181268008", "39400004"),
    keywords=_keywords("liver", "hepatic"),
)

ECOG_CODES = {(LOINC, "89247-1"), (SNOMED, "423740007")}
KARNOFSKY_CODES = {(LOINC, "89243-0")}
ECOG_ANSWERS = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4, "LA9627-6": 5}
CA19_9_CODES = {(LOINC, "24108-3"), (LOINC, "83084-4")}
CA19_9_UNITS = {"u/ml", "[u]/ml", "ku/l", "k[u]/l", "[iu]/ml", "iu/ml", "k[iu]/l"}
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
}
PREGNANCY_STATUS_CODES = {(LOINC, "82810-3")}
PREGNANCY_STATUS_VALUES = {"77386006": "pregnant", "60001007": "not-pregnant", "261665006": "unknown"}
BREASTFEEDING_CODES = {(LOINC, "63895-7")}
BREASTFEEDING_YES = {(SNOMED, "169750002"), (LOINC, "LA29253-4")}
BREASTFEEDING_NO = {(SNOMED, "169741004"), (LOINC, "LA29252-6")}
METASTASIS_HISTORY_LIVER = {(SNOMED, "1098951000119108")}
T_CATEGORY_CODES = {(LOINC, "21905-5"), (LOINC, "21899-0"), (SNOMED, "399504009"), (SNOMED, "384625004"),
                    (SNOMED, "399537006")}
UNRESECTABLE_KEYWORDS = ("arterial reconstruction", "arterial involvement", "arterial encasement",
                         "locally advanced", "unresectable")
CROSS_SECTIONAL_MODALITIES = frozenset({"CT", "MR", "PT"})
LENGTH_UNITS_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "cm": 10.0, "centimeter": 10.0,
                   "centimeters": 10.0}

# Severity → CTCAE-like grade (SNOMED, C).
SEVERITY_GRADES = {"255604002": 1, "6736007": 2, "1255665007": 2, "24484000": 3, "442452003": 4}
GRADE_EXTENSIONS = ("ae-grade", "ctcae-grade", "ctcae", "grade")

# --- Procedures --------------------------------------------------------------------------------

SURGICAL_CATEGORY = {(SNOMED, "387713003")}
PANCREATIC_RESECTION = CodeSet(
    "pancreatic resection",
    "SNOMED pancreaticoduodenectomy 173422009 / 30549001 Whipple, distal pancreatectomy 45420004, "
    "total pancreatectomy 82661006 (C); keywords",
    codes=_snomed("173422009", "30549001", "45420004", "82661006", "116142003"),
    keywords=_keywords("pancreatectomy", "pancreaticoduodenectomy", "pancreatoduodenectomy", "whipple",
                       "pancreas+resection", "pancreatic resection"),
)
MAJOR_SURGERY = CodeSet(
    "major surgery",
    "curated SNOMED: colectomy 23968004, hepatectomy/partial 18286008, gastrectomy 53442002, "
    "laparotomy 86481000, cholecystectomy 38102005, nephrectomy 108022006, hip replacement 52734007, "
    "CABG 232717009 (C); keywords",
    codes=_snomed("23968004", "18286008", "53442002", "86481000", "38102005", "108022006", "52734007",
                  "232717009", "387713003"),
    keywords=_keywords("ectomy", "laparotomy", "thoracotomy", "resection", "arthroplasty", "bypass",
                       "replacement", "transplant", "laparoscop"),
)
MINOR_PROCEDURE_KEYWORDS = ("biopsy", "endoscop", "eus", "ultrasound", "stent", "port", "drain", "catheter",
                            "needle", "aspiration", "ercp", "injection", "infusion", "colonoscopy",
                            "gastroscopy", "paracentesis", "imaging", "scan")

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
