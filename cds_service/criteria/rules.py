"""Criterion rules: pure functions of (facts, params) → Outcome.

A trial definition names a rule and gives its parameters (windows, thresholds); the rule knows the
clinical logic. Time is ``facts.as_of`` and nothing else. Windows are inclusive: "within 90 days"
means the as-of date minus 90 days or later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fhir_mappings.facts import Diagnosis, MedicationUse, PatientFacts, Reading


@dataclass(frozen=True)
class Outcome:
    status: str  # pass | fail | unknown
    reason: str
    evidence: tuple[str, ...] = ()


Rule = Callable[[PatientFacts, dict[str, Any]], Outcome]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn
    return register


# --- small helpers -----------------------------------------------------------------------------

def within(when: date | None, as_of: date, days: int) -> bool:
    return when is not None and as_of - timedelta(days=days) <= when <= as_of


def refs(items: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item.ref for item in items))


def newest(readings: Sequence[Reading], worst: Callable[[Reading], Any]) -> list[Reading]:
    """The readings of the latest date; the first one is the worst for the patient (ties)."""
    dated = [r for r in readings if r.date is not None]
    if not dated:
        return []
    latest = max(r.date for r in dated)
    return sorted((r for r in dated if r.date == latest), key=worst, reverse=True)


def day(when: date | None) -> str:
    return when.isoformat() if when else "undated"


def chemotherapy_start(facts: PatientFacts) -> tuple[date | None, tuple[str, ...]]:
    """The earliest start of an anticancer drug, with the resources that give it."""
    dated = [m for m in facts.anticancer if m.date is not None]
    if not dated:
        return None, refs(facts.anticancer)
    start = min(m.date for m in dated)
    return start, refs(m for m in dated if m.date == start)


def age_in_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- inclusion ---------------------------------------------------------------------------------

@rule("adult")
def adult(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    minimum = params.get("minimum_years", 18)
    evidence = (facts.patient_ref,) if facts.patient_ref else ()
    if facts.birth_date is None:
        return Outcome("unknown", "no birth date recorded", evidence)
    years = age_in_years(facts.birth_date, facts.as_of)
    status = "pass" if years >= minimum else "fail"
    return Outcome(status, f"age {years} (born {facts.birth_date.isoformat()})", evidence)


@rule("pdac_diagnosis")
def pdac_diagnosis(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    confirmed = [d for d in facts.pdac if d.confirmed]
    if confirmed:
        return Outcome("pass", f"{confirmed[0].label} (since {day(confirmed[0].date)})", refs(confirmed))
    if facts.pdac:
        first = facts.pdac[0]
        return Outcome("unknown", f"{first.label} is {first.verification}, not confirmed: the study team must "
                                  "confirm the diagnosis", refs(facts.pdac))
    if facts.pancreatic_non_ductal:
        first = facts.pancreatic_non_ductal[0]
        return Outcome("fail", f"pancreatic tumour is not ductal: {first.label}", refs(facts.pancreatic_non_ductal))
    return Outcome("fail", "no pancreatic ductal adenocarcinoma recorded")


def metastasis_timing(facts: PatientFacts, synchronous_days: int = 183) -> dict[str, Any]:
    """Synchronous when the liver metastasis appeared ≤ N days after the PDAC, else metachronous."""
    pdac_onset = min((d.date for d in facts.pdac if d.date), default=None)
    liver_onset = min((d.date for d in facts.liver_metastases if d.active and d.date), default=None)
    if pdac_onset is None or liver_onset is None:
        timing = "unknown"
    else:
        timing = "synchronous" if (liver_onset - pdac_onset).days <= synchronous_days else "metachronous"
    return {"timing": timing, "pdacOnset": pdac_onset and pdac_onset.isoformat(),
            "liverMetastasisOnset": liver_onset and liver_onset.isoformat()}


@rule("liver_metastases")
def liver_metastases(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    active = [d for d in facts.liver_metastases if d.active]
    if not active:
        return Outcome("fail", "no liver metastasis recorded")
    timing = metastasis_timing(facts, params.get("synchronous_days", 183))["timing"]
    return Outcome("pass", f"{active[0].label} (since {day(active[0].date)}; {timing})", refs(active))


@rule("liver_lesions_limited")
def liver_lesions_limited(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    lesions = latest_liver_assessment(facts, params)
    if lesions is None:
        return Outcome("unknown", f"no liver lesion measurement in the last {params['window_days']} days")
    count = len(lesions)
    largest = max(m.diameter_mm for m in lesions.values())
    evidence = refs(lesions.values())
    described = f"{count} liver lesion{'s' if count != 1 else ''}, largest {largest:g} mm"
    if count > params["max_lesions"] or largest >= params["max_diameter_mm"]:
        return Outcome("fail", f"{described} (limit: {params['max_lesions']} lesions, < {params['max_diameter_mm']} mm)",
                       evidence)
    resect = sum(1 for m in lesions.values() if m.diameter_mm >= params.get("resection_from_mm", 20))
    hint = f"; {resect} ≥ {params.get('resection_from_mm', 20)} mm need resection, not ablation" if resect else ""
    return Outcome("pass", described + hint, evidence)


def latest_liver_assessment(facts: PatientFacts, params: dict[str, Any]) -> dict | None:
    """Lesion → newest measurement, within ``assessment_days`` of the newest one (itself recent)."""
    dated = [m for m in facts.liver_lesions if m.date is not None]
    if not dated:
        return None
    newest_day = max(m.date for m in dated)
    if not within(newest_day, facts.as_of, params["window_days"]):
        return None
    lesions: dict[str, Any] = {}
    # Date order, so a lesion keeps its newest value; on the same day the largest (worst) comes last.
    for m in sorted(dated, key=lambda m: (m.date, m.diameter_mm)):
        if within(m.date, newest_day, params["assessment_days"]):
            lesions[m.lesion] = m
    return lesions


@rule("performance_status")
def performance_status(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    recent = [r for r in facts.performance if within(r.date, facts.as_of, window)]
    latest = newest(recent, worst=lambda r: r.value)
    if not latest:
        older = bool(facts.performance)
        return Outcome("unknown", f"no performance status in the last {window} days"
                       + (" (only older ones)" if older else ""), refs(facts.performance))
    reading = latest[0]
    reason = f"{reading.label} on {day(reading.date)}"
    if reading.value <= 1:
        return Outcome("pass", reason, (reading.ref,))
    if reading.value == 2:
        return Outcome("unknown", reason + ": the registry text is inconsistent for ECOG 2 (inclusion 0–1, "
                                           "exclusion > 2); the study team decides", (reading.ref,))
    return Outcome("fail", reason, (reading.ref,))


@rule("resectable_primary")
def resectable_primary(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    resected = [p for p in facts.procedures if p.kind == "pancreatic-resection" and p.status == "completed"]
    if resected:
        return Outcome("pass", f"primary already resected: {resected[0].label} ({day(resected[0].date)})",
                       refs(resected))
    if facts.unresectable:
        return Outcome("fail", f"evidence against resectability: {facts.unresectable[0].label}",
                       refs(facts.unresectable))
    return Outcome("unknown", "resectability of the primary is a tumour-board decision")


@rule("clinician_judgement")
def clinician_judgement(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    return Outcome("unknown", params.get("reason", "a clinician confirms this at screening"))


# --- exclusion ---------------------------------------------------------------------------------

PROGRESSION_ORDER = {"progression": 3, "undetermined": 2, "stable": 1, "improved": 0, "remission": 0}


@rule("no_progression_on_chemotherapy")
def no_progression_on_chemotherapy(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    start, start_refs = chemotherapy_start(facts)
    if start is None:
        return Outcome("unknown", "no chemotherapy recorded: response not yet assessable", start_refs)
    since = [r for r in facts.disease_status if r.date is not None and r.date >= start]
    latest = newest(since, worst=lambda r: PROGRESSION_ORDER.get(r.value, 2))
    if not latest:
        return Outcome("unknown", f"no disease status since chemotherapy started on {day(start)}", start_refs)
    reading = latest[0]
    reason = f"{reading.label} on {day(reading.date)} (chemotherapy since {day(start)})"
    evidence = (reading.ref,) + start_refs
    if reading.value == "progression":
        return Outcome("fail", reason, evidence)
    if reading.value == "undetermined":
        return Outcome("unknown", reason, evidence)
    return Outcome("pass", reason, evidence)


@rule("no_extrahepatic_metastases")
def no_extrahepatic_metastases(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    active = [d for d in facts.extrahepatic_metastases if d.active]
    if active:
        return Outcome("fail", f"metastasis outside the liver: {active[0].label}", refs(active))
    window = params["imaging_window_days"]
    recent = [i for i in facts.imaging if within(i.date, facts.as_of, window) and _cross_sectional(i.modalities)]
    if recent:
        latest = max(recent, key=lambda i: i.date)
        return Outcome("pass", f"none recorded; {'/'.join(_cross_sectional(latest.modalities))} on "
                               f"{day(latest.date)}", refs(recent))
    return Outcome("unknown", f"none recorded, but extrahepatic disease is not ruled out by CT, MR or PET in the "
                              f"last {window} days")


def _cross_sectional(modalities: tuple[str, ...]) -> list[str]:
    return [m for m in modalities if m in ("CT", "MR", "PT")]


@rule("no_other_malignancy")
def no_other_malignancy(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    blocking = [d for d in facts.other_malignancies if d.active or within(d.date, facts.as_of, window)]
    if blocking:
        first = blocking[0]
        why = "active" if first.active else f"diagnosed {day(first.date)}, within {window} days"
        return Outcome("fail", f"other malignancy: {first.label} ({why})", refs(blocking))
    if facts.other_malignancies:
        return Outcome("pass", f"only earlier, inactive malignancies (over {window} days)",
                       refs(facts.other_malignancies))
    return Outcome("pass", "no other malignancy recorded")


@rule("no_recent_major_surgery")
def no_recent_major_surgery(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    recent = [p for p in facts.procedures
              if p.kind == "major" and p.status == "completed" and within(p.date, facts.as_of, window)]
    if recent:
        return Outcome("fail", f"{recent[0].label} on {day(recent[0].date)} (within {window} days)", refs(recent))
    return Outcome("pass", f"no major surgery in the last {window} days")


@rule("no_active_condition")
def no_active_condition(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    found: list[Diagnosis] = [d for d in getattr(facts, params["facts"]) if d.active]
    if found:
        labels = "; ".join(dict.fromkeys(d.label for d in found))
        return Outcome("unknown", f"{params['what']}: {labels} — {params['confirm']}", refs(found))
    return Outcome("pass", f"no {params['what']} recorded")


@rule("no_current_immunosuppressant")
def no_current_immunosuppressant(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    current = [m for m in facts.immunosuppressants if _current(m, facts.as_of, window)]
    if current:
        names = ", ".join(dict.fromkeys(d for m in current for d in m.drugs))
        return Outcome("fail", f"current immunosuppressant: {names}", refs(current))
    steroids = ", ".join(dict.fromkeys(d for m in facts.corticosteroids for d in m.drugs))
    allowed = f" (corticosteroids allowed: {steroids})" if steroids else ""
    # Relied on: the earlier (no longer current) immunosuppressants and the corticosteroids it names.
    return Outcome("pass", "no current immunosuppressant" + allowed,
                   refs(facts.immunosuppressants) + refs(facts.corticosteroids))


def _current(use: MedicationUse, as_of: date, window: int) -> bool:
    if use.resource_type != "MedicationAdministration" and use.status in ("active", "intended", "on-hold"):
        return True
    if use.start is not None and use.start <= as_of and (use.ongoing or (use.end is not None and use.end >= as_of)):
        return True
    return within(use.last_date, as_of, window)


@rule("neuropathy_below_grade")
def neuropathy_below_grade(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    failing = params["failing_grade"]
    active = [d for d in facts.neuropathies if d.active]
    if not active:
        return Outcome("pass", "no active peripheral neuropathy recorded")
    graded = [d for d in active if d.grade is not None]
    worst = max(graded, key=lambda d: d.grade, default=None)
    if worst is not None and worst.grade >= failing:
        return Outcome("fail", f"{worst.label}, grade {worst.grade}", refs(active))
    if len(graded) < len(active):
        return Outcome("unknown", "peripheral neuropathy without a recorded grade: grade it at screening",
                       refs(active))
    return Outcome("pass", f"peripheral neuropathy grade {worst.grade}", refs(active))


@rule("not_pregnant_or_breastfeeding")
def not_pregnant_or_breastfeeding(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    if facts.gender == "male":
        return Outcome("pass", "male patient")
    window = params["window_days"]
    status = newest([r for r in facts.pregnancy_status if within(r.date, facts.as_of, window)],
                    worst=lambda r: r.value == "pregnant")
    if status and status[0].value == "pregnant":
        return Outcome("fail", f"pregnant ({day(status[0].date)})", (status[0].ref,))
    conditions = [d for d in facts.pregnancy_conditions if d.active]
    if conditions:
        return Outcome("fail", f"pregnancy: {conditions[0].label}", refs(conditions))
    feeding = newest([r for r in facts.breastfeeding if within(r.date, facts.as_of, window)],
                     worst=lambda r: r.value is True)
    if feeding and feeding[0].value is True:
        return Outcome("fail", f"breastfeeding ({day(feeding[0].date)})", (feeding[0].ref,))
    evidence = tuple(r.ref for r in (status[:1] + feeding[:1]))
    return Outcome("pass", "not pregnant or breastfeeding as far as recorded", evidence)
