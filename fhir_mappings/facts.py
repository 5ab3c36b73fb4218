"""The facts the criteria read: plain, typed values, each with the reference of its source.

Facts hold what the record says, not what a trial makes of it: no windows, no thresholds.
The only time rule applied here is the general one — nothing dated after the as-of date exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A Condition (or an Observation / AdverseEvent that states one)."""

    ref: str
    label: str
    onset: date | None
    recorded: date | None = None
    active: bool = True
    verification: str | None = None
    grade: int | None = None
    body_sites: tuple[str, ...] = ()

    @property
    def date(self) -> date | None:
        return self.onset or self.recorded

    @property
    def confirmed(self) -> bool:
        return self.verification in (None, "confirmed")


@dataclass(frozen=True, slots=True)
class Reading:
    """A dated observation value: an ECOG grade, a CA 19-9 level, a disease status, a T category …"""

    ref: str
    date: date | None
    value: object
    label: str = ""


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


@dataclass(slots=True)
class PatientFacts:
    """Everything the mappings could read of one patient, up to the as-of date."""

    as_of: date
    patient_ref: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    pdac: list[Diagnosis] = field(default_factory=list)
    pancreatic_non_ductal: list[Diagnosis] = field(default_factory=list)
    liver_metastases: list[Diagnosis] = field(default_factory=list)
    extrahepatic_metastases: list[Diagnosis] = field(default_factory=list)
    unsited_metastases: list[Diagnosis] = field(default_factory=list)
    other_malignancies: list[Diagnosis] = field(default_factory=list)
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
