"""The facts the criteria read: plain, typed values, each with the reference of its source.

Facts hold what the record says, not what a trial makes of it: no windows, no thresholds.
The only time rule applied here is the general one — nothing dated after the as-of date exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


# What a Condition is, when it has no clinicalStatus (the spec's general rule "Is a Condition active?").
PROBLEM_LIST = "problem-list"  # category problem-list-item, or no category at all: status-less = active
ENCOUNTER_DIAGNOSIS = "encounter-diagnosis"  # a visit diagnosis: status-less = active only when recent
OTHER_KIND = "other"  # another category (health-concern, a local one): read like a visit diagnosis

ACTIVE_STATUSES = frozenset({"active", "recurrence", "relapse"})
INACTIVE_STATUSES = frozenset({"inactive", "remission", "resolved"})


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A Condition (or an Observation / AdverseEvent that states one).

    ``clinical_status`` is the clinicalStatus code as written (None when absent); ``kind`` says what the
    Condition is. How recent a status-less visit diagnosis must be is each criterion's business (its
    window is a parameter of the trial definition), so the facts hold no windows.
    """

    ref: str
    label: str
    onset: date | None
    recorded: date | None = None
    clinical_status: str | None = None
    kind: str = PROBLEM_LIST
    verification: str | None = None
    grade: int | None = None
    body_sites: tuple[str, ...] = ()
    abated: date | None = None
    history: bool = False  # a personal-history code (Z85.x, "history of malignant neoplasm of …")

    @property
    def date(self) -> date | None:
        return self.onset or self.recorded

    @property
    def confirmed(self) -> bool:
        return self.verification in (None, "confirmed")

    @property
    def status_says(self) -> bool | None:
        """True / False when clinicalStatus decides; None when absent or not a code we know."""
        if self.clinical_status in ACTIVE_STATUSES:
            return True
        if self.clinical_status in INACTIVE_STATUSES:
            return False
        return None

    @property
    def visit_only(self) -> bool:
        """A status-less visit diagnosis (or other non-problem-list Condition): active only when recent."""
        return self.status_says is None and self.kind != PROBLEM_LIST

    @property
    def active(self) -> bool:
        """Active whatever its age: by clinicalStatus, or a status-less problem-list item."""
        status = self.status_says
        return status if status is not None else self.kind == PROBLEM_LIST


@dataclass(frozen=True, slots=True)
class Reading:
    """A dated observation value: an ECOG grade, a CA 19-9 level, a disease status, a T category …"""

    ref: str
    date: date | None
    value: object
    label: str = ""
    focus: tuple[str, ...] = ()  # what the Observation is about (``focus`` references: a Condition, a lesion …)


@dataclass(frozen=True, slots=True)
class LesionMeasurement:
    ref: str
    date: date | None
    diameter_mm: float
    lesion: str  # the BodyStructure measured, else the Observation itself


@dataclass(frozen=True, slots=True)
class MedicationUse:
    ref: str
    resource_type: str
    drugs: tuple[str, ...]
    label: str
    status: str | None
    start: date | None
    end: date | None
    last_date: date | None  # end, administration or authoredOn: the newest date the record gives
    ongoing: bool = False  # a period with a start and no end, on a use not completed or stopped
    reasons: tuple[str, ...] = ()  # ``reasonReference`` targets (e.g. the Condition the drug is given for)
    local_route: str | None = None  # a local (topical, ophthalmic …) route or dose form, as written
    reason_cancer: str | None = None  # a ``reasonCode`` naming "this" cancer (PDAC / its metastases) or an "other"

    @property
    def date(self) -> date | None:
        return self.start or self.last_date


@dataclass(frozen=True, slots=True)
class ProcedureDone:
    ref: str
    date: date | None
    label: str
    kind: str  # "pancreatic-resection" | "major" | "minor" | "other"
    status: str | None


@dataclass(frozen=True, slots=True)
class ImagingDone:
    ref: str
    date: date | None
    modalities: tuple[str, ...]
    source: str = "ImagingStudy"  # or "DiagnosticReport" / "Procedure": where the record says it was done


@dataclass(slots=True)
class PatientFacts:
    """Everything the mappings could read of one patient, up to the as-of date."""

    as_of: date
    patient_ref: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    deceased: bool = False  # Patient.deceasedBoolean true, or a deceasedDateTime (any date: the rule decides)
    deceased_on: date | None = None  # Patient.deceasedDateTime's calendar date
    deceased_unreadable: bool = False  # a deceasedDateTime that is not a date
    pdac: list[Diagnosis] = field(default_factory=list)
    pancreatic_non_ductal: list[Diagnosis] = field(default_factory=list)
    liver_metastases: list[Diagnosis] = field(default_factory=list)
    extrahepatic_metastases: list[Diagnosis] = field(default_factory=list)
    unsited_metastases: list[Diagnosis] = field(default_factory=list)
    other_malignancies: list[Diagnosis] = field(default_factory=list)
    malignancy_history: list[Diagnosis] = field(default_factory=list)  # personal-history codes (Z85.x …)
    infections: list[Diagnosis] = field(default_factory=list)
    cardiac: list[Diagnosis] = field(default_factory=list)
    neuropathies: list[Diagnosis] = field(default_factory=list)
    pregnancy_conditions: list[Diagnosis] = field(default_factory=list)
    performance: list[Reading] = field(default_factory=list)  # value: ECOG grade 0–5
    liver_lesions: list[LesionMeasurement] = field(default_factory=list)
    ca19_9: list[Reading] = field(default_factory=list)  # value: U/mL
    disease_status: list[Reading] = field(default_factory=list)  # value: progression|stable|…
    pregnancy_status: list[Reading] = field(default_factory=list)  # value: pregnant|not-pregnant|unknown
    breastfeeding: list[Reading] = field(default_factory=list)  # value: True / False
    unresectable: list[Reading] = field(default_factory=list)  # value: why (T4, arterial …)
    anticancer: list[MedicationUse] = field(default_factory=list)
    immunosuppressants: list[MedicationUse] = field(default_factory=list)
    corticosteroids: list[MedicationUse] = field(default_factory=list)
    procedures: list[ProcedureDone] = field(default_factory=list)
    imaging: list[ImagingDone] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
