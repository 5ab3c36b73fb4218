"""The facts shown beside the criteria (informational: they never change the verdict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cds_service.criteria.rules import chemotherapy_start, day, latest_liver_assessment, metastasis_timing
from fhir_mappings import codes
from fhir_mappings.facts import PatientFacts

CA19_9_UPPER_NORMAL = 37.0  # U/mL

Summary = Callable[[PatientFacts], dict[str, Any] | None]


def ca19_9(facts: PatientFacts) -> dict[str, Any] | None:
    series = sorted((r for r in facts.ca19_9 if r.date is not None), key=lambda r: r.date)
    if not series:
        return None
    latest = max(series, key=lambda r: (r.date, r.value))
    start, _ = chemotherapy_start(facts)
    earlier = [r for r in series if r.date < latest.date]
    before_chemo = [r for r in series if start is not None and r.date <= start and r is not latest]
    baseline = before_chemo[-1] if before_chemo else max(earlier, key=lambda r: r.value, default=None)
    change = None
    if baseline is not None and baseline.value:
        change = round((latest.value - baseline.value) / baseline.value * 100, 1)
    return {
        "latest": {"value": latest.value, "unit": "U/mL", "date": day(latest.date), "ref": latest.ref},
        "baseline": baseline and {"value": baseline.value, "unit": "U/mL", "date": day(baseline.date),
                                  "ref": baseline.ref},
        "changePercent": change,
        "elevated": latest.value > CA19_9_UPPER_NORMAL,
        "upperNormal": CA19_9_UPPER_NORMAL,
    }


def chemotherapy(facts: PatientFacts) -> dict[str, Any] | None:
    if not facts.anticancer:
        return None
    drugs = list(dict.fromkeys(d for m in facts.anticancer for d in m.drugs))
    start, _ = chemotherapy_start(facts)
    regimen = next((name for name, needed in codes.REGIMENS if needed <= set(drugs)), None)
    return {"drugs": drugs, "start": start and start.isoformat(), "regimen": regimen,
            "evidence": sorted({m.ref for m in facts.anticancer})}


def staging_imaging(facts: PatientFacts) -> dict[str, Any] | None:
    studies = [i for i in facts.imaging if i.date is not None and set(i.modalities) & codes.CROSS_SECTIONAL_MODALITIES]
    if not studies:
        return None
    latest = max(studies, key=lambda i: i.date)
    # The newest CT / MR / PET, whichever resource says it was done (ImagingStudy, report or procedure).
    return {"date": day(latest.date), "modalities": list(latest.modalities), "ref": latest.ref,
            "source": latest.source}


def liver_lesions(facts: PatientFacts) -> dict[str, Any] | None:
    lesions = latest_liver_assessment(facts, {"window_days": 100_000, "assessment_days": 30})
    if not lesions:
        return None
    sizes = sorted((m.diameter_mm for m in lesions.values()), reverse=True)
    return {"count": len(sizes), "largestMm": sizes[0], "diametersMm": sizes,
            "needResection": sum(1 for s in sizes if s >= 20),
            "assessed": day(max(m.date for m in lesions.values()))}


def metastasis(facts: PatientFacts) -> dict[str, Any] | None:
    return metastasis_timing(facts)


SUMMARIES: dict[str, tuple[str, Summary]] = {
    "ca19_9": ("ca19_9", ca19_9),
    "metastasis_timing": ("metastasisTiming", metastasis),
    "chemotherapy": ("chemotherapy", chemotherapy),
    "staging_imaging": ("stagingImaging", staging_imaging),
    "liver_lesions": ("liverLesions", liver_lesions),
}
